"""Query panel: instrument → product → a form generated from the declared parameters."""

from __future__ import annotations

import html
from collections.abc import Callable

import ipywidgets as w
from traitlets import link

from ..state import FieldState, QueryState

__all__ = ["QueryPanel"]

ERR = "color:#b00020;font-size:90%"


class Shared:
    """One style and one layout model per kind, shared by a panel's widgets: ipywidgets makes a
    Layout and a Style model for every widget otherwise, and each model is a message and an
    object for the browser to build before the panel shows."""

    def __init__(self) -> None:
        self._models: dict[tuple, w.Widget] = {}

    def _one(self, klass: type, kw: dict) -> w.Widget:
        key = (klass, tuple(sorted(kw.items())))
        if key not in self._models:
            self._models[key] = klass(**kw)
        return self._models[key]

    def style(self, cls: type, **kw: str) -> w.Widget:
        return self._one(cls.style.klass, kw)  # the Style class this widget class takes

    def layout(self, **kw: str) -> w.Layout:
        return self._one(w.Layout, kw)

    def make(self, cls: type, layout: dict | None = None, style: dict | None = None, **kw: object) -> w.Widget:
        """``cls(**kw)`` with the shared style and layout."""
        return cls(layout=self.layout(**(layout or {})), style=self.style(cls, **(style or {})), **kw)


def field_widget(f: FieldState, shared: Shared | None = None) -> w.Widget:
    """One input for one parameter (bounds and unit from the spec), linked to its state."""
    shared = shared or Shared()
    kw = dict(description=f.label, description_allow_html=False, disabled=f.disabled,
              tooltip=f"{f.help} — {f.allowed}")

    def make(cls: type, **extra: object) -> w.Widget:
        return shared.make(cls, layout={"width": "370px"}, style={"description_width": "180px"}, **kw, **extra)

    if f.kind == "select" or f.choices:
        box = make(w.Dropdown, options=f.choices, value=f.value if f.value in f.choices else f.choices[0])
    elif f.value is None:
        box = make(w.Text, value="", placeholder=f.allowed[:60])
    elif f.kind == "float" and f.minimum is not None and f.maximum is not None:
        box = make(w.BoundedFloatText, value=f.value, min=f.minimum, max=f.maximum)
    elif f.kind == "float":
        box = make(w.FloatText, value=f.value or 0.0)
    elif f.kind == "integer":
        box = make(w.BoundedIntText, value=f.value, min=int(f.minimum if f.minimum is not None else -2**31),
                   max=int(f.maximum if f.maximum is not None else 2**31 - 1))
    else:
        box = make(w.Text, value="" if f.value is None else str(f.value), placeholder=f.allowed[:60])
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
        self.shared = sh = Shared()
        self.instrument = sh.make(w.Dropdown, description="instrument", options=state.instruments,
                                  value=state.instrument)
        self.product = sh.make(w.Dropdown, description="product", options=state.products, value=state.product)
        self.form = w.VBox(layout=sh.layout())
        self.resolve_btn = sh.make(w.Button, description="resolve name", icon="search")
        self.check_btn = sh.make(w.Button, description="count windows", icon="check")
        self.submit_btn = sh.make(w.Button, description="Submit", button_style="primary", icon="play")
        self.code_btn = sh.make(w.Button, description="show the code", icon="code")
        self.message = sh.make(w.HTML)
        self.code = sh.make(w.HTML)
        self.instrument.observe(lambda c: self._select(c["new"], None), names="value")
        self.product.observe(lambda c: c["new"] and self._select(self.instrument.value, c["new"]), names="value")
        self.resolve_btn.on_click(lambda _: self._run(state.resolve))
        self.check_btn.on_click(lambda _: self._run(state.check))
        self.submit_btn.on_click(lambda _: self.submit())
        self.code_btn.on_click(lambda _: self._show_code())
        state.observe(lambda _: self._draw_messages(), names=["message", "error"])
        self._draw_form()
        buttons = w.HBox([self.resolve_btn, self.check_btn, self.submit_btn, self.code_btn], layout=sh.layout())
        super().__init__([w.HBox([self.instrument, self.product], layout=sh.layout()), self.form, buttons,
                          self.message, self.code], layout=sh.layout())
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
        rows, sh = [], self.shared
        for f in self.state.fields:
            info = sh.make(w.HTML, layout={"margin": "0 0 0 8px"})
            info.add_class(f"mmoda-field-{f.name}")
            note = f"<span style='color:#666;font-size:85%'>{html.escape(f.note or f.help)}</span>"

            def show(_=None, f=f, info=info, note=note) -> None:
                err = f"<span style='{ERR}'>{html.escape(f.error)}</span><br>" if f.error else ""
                info.value = err + note

            show()
            f.observe(show, names="error")
            rows.append(w.HBox([field_widget(f, sh), info], layout=sh.layout()))
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
