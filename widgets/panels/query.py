"""Query panel: instrument → product → a form generated from the declared parameters."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w
from traitlets import link

from ..state import FieldState, QueryState

__all__ = ["QueryPanel"]

ERR = "color:#b00020;font-size:90%"


_FIELD_STYLE = {"description_width": "150px"}


def field_widget(f: FieldState, layout: w.Layout | None = None) -> w.Widget:
    """One input for one parameter (bounds and unit from the spec), linked to its state."""
    kw = dict(description=f.label, description_allow_html=False, style=_FIELD_STYLE,
              layout=layout or w.Layout(width="340px"), disabled=f.disabled, tooltip=f"{f.help} — {f.allowed}")
    if f.kind == "select" or f.choices:
        box = w.Dropdown(options=f.choices, value=f.value if f.value in f.choices else f.choices[0], **kw)
    elif f.value is None:
        box = w.Text(value="", placeholder=f.allowed[:60], **kw)
    elif f.kind == "float" and f.minimum is not None and f.maximum is not None:
        box = w.BoundedFloatText(value=f.value, min=f.minimum, max=f.maximum, **kw)
    elif f.kind == "float":
        box = w.FloatText(value=f.value or 0.0, **kw)
    elif f.kind == "integer":
        box = w.BoundedIntText(value=f.value, min=int(f.minimum if f.minimum is not None else -2**31),
                               max=int(f.maximum if f.maximum is not None else 2**31 - 1), **kw)
    else:
        box = w.Text(value="" if f.value is None else str(f.value), placeholder=f.allowed[:60], **kw)
    if isinstance(box, (w.BoundedFloatText, w.BoundedIntText)):
        box.continuous_update = False  # out-of-bounds typing is clamped by the box itself
    if isinstance(box, w.Text):  # an empty text is an unset (None) optional value
        link((f, "value"), (box, "value"), transform=(lambda v: "" if v is None else str(v),
                                                      lambda v: None if v == "" else v))
    else:
        link((f, "value"), (box, "value"))
    return box


class QueryPanel(w.VBox):
    """The form, a science-window count, submit, and the equivalent code."""

    def __init__(self, state: QueryState, on_submit: Callable[[dict], None] | None = None) -> None:
        self.state, self.on_submit, self._busy = state, on_submit, False
        self.instrument = w.Dropdown(description="instrument", options=state.instruments, value=state.instrument)
        self.product = w.Dropdown(description="product", options=state.products, value=state.product)
        self.form = w.VBox()
        self.resolve_btn = w.Button(description="resolve name", icon="search")
        self.check_btn = w.Button(description="count windows", icon="check")
        self.submit_btn = w.Button(description="Submit", button_style="primary", icon="play")
        self.code_btn = w.Button(description="show the code", icon="code")
        self.message = w.HTML()
        self.code = w.HTML()
        self.instrument.observe(lambda c: self._select(c["new"], None), names="value")
        self.product.observe(lambda c: c["new"] and self._select(self.instrument.value, c["new"]), names="value")
        self.resolve_btn.on_click(lambda _: self._run(state.resolve))
        self.check_btn.on_click(lambda _: self._run(state.check))
        self.submit_btn.on_click(lambda _: self.submit())
        self.code_btn.on_click(lambda _: self._show_code())
        state.observe(lambda _: self._draw_messages(), names=["message", "error"])
        self._draw_form()
        buttons = w.HBox([self.resolve_btn, self.check_btn, self.submit_btn, self.code_btn])
        super().__init__([w.HBox([self.instrument, self.product]), self.form, buttons, self.message, self.code])
        self.add_class("mmoda-query")

    def _select(self, instrument: str, product: str | None) -> None:
        if self._busy:
            return
        self.state.select(instrument, product)
        self._busy = True
        try:
            self.product.options = self.state.products
            self.product.value = self.state.product
        finally:
            self._busy = False
        self._draw_form()

    def _draw_form(self) -> None:
        """One row per field: the input, and beside it the field's error (red) over its note.

        Three widget models a row, layouts shared: every model is a message and a view in the
        browser, and the form is most of the panel's first render.
        """
        rows = []
        box_layout, info_layout, row_layout = w.Layout(width="340px"), w.Layout(margin="0 0 0 8px"), w.Layout()
        for f in self.state.fields:
            info = w.HTML(layout=info_layout)
            info.add_class(f"mmoda-field-{f.name}")
            note = f"<span style='color:#666;font-size:85%'>{html.escape(f.note or f.help)}</span>"

            def show(_=None, f=f, info=info, note=note) -> None:
                err = f"<span style='{ERR}'>{html.escape(f.error)}</span><br>" if f.error else ""
                info.value = err + note

            show()
            f.observe(show, names="error")
            rows.append(w.HBox([field_widget(f, box_layout), info], layout=row_layout))
        self.form.children = rows

    def _draw_messages(self) -> None:
        s = self.state
        text = f"<span style='{ERR}'>{html.escape(s.error)}</span>" if s.error else html.escape(s.message)
        self.message.value = text

    def _run(self, action: Callable) -> None:
        self.message.value = "<i>asking the server…</i>"
        action()
        self._draw_messages()

    def submit(self) -> dict | None:
        job = self.state.submit()
        self._draw_messages()
        if job is not None and self.on_submit is not None:
            self.on_submit(job)
        return job

    def _show_code(self) -> None:
        self.code.value = "" if self.code.value else f"<pre class='mmoda-code'>{html.escape(self.state.code())}</pre>"
