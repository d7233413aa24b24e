"""Products panel: mosaic in the sky view, selectable sources → spectrum / light curve, plots."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as w

from ..state import ProductsState

if TYPE_CHECKING:
    from .skyview import SkyView

__all__ = ["ProductsPanel"]


class ProductsPanel(w.VBox):
    """Shows one job's products; follow-up requests go to ``on_submit`` (the jobs panel)."""

    def __init__(self, state: ProductsState, on_submit: Callable[[dict], None] | None = None,
                 sky_timeout: float = 30.0) -> None:
        self.state, self.on_submit, self.sky_timeout = state, on_submit or (lambda job: None), sky_timeout
        self.header = w.HTML("<i>no products yet: submit a request, then 'show products'</i>")
        self.body = w.VBox()
        self.error = w.HTML()
        self.skyview: SkyView | None = None  # made once (prepare_view), reused by every mosaic
        self.timings: dict[str, float] = {}
        super().__init__([self.header, self.error, self.body])
        self.add_class("mmoda-products")

    def show(self, job: dict) -> None:
        # astropy, bqplot and ipyaladin: imported here, not for the first render
        from .. import data
        from .plots import curve_figure, spectrum_view

        t0 = time.perf_counter()
        self.header.value = (f"<i>loading the products of {html.escape(job['instrument'])} "
                             f"{html.escape(job['product'])}…</i>")
        if self.skyview is not None:  # an image's view resizes (seconds without a GPU) meanwhile
            self.skyview.layout.display = None if job["product"].endswith("_image") else "none"
        prods = self.state.load(job)
        t1 = time.perf_counter()
        p = job.get("params") or {}
        self.header.value = (f"<b>{html.escape(job['instrument'])} {html.escape(job['product'])}</b> "
                             f"{html.escape(str(p.get('src_name', '')))} · {len(prods)} products · "
                             f"<span style='color:#888'>{job['job_id'][:10]}</span>")
        self.error.value = html.escape(self.state.error)
        parts: list[w.Widget] = []
        mosaics = self.state.of_kind("_mosaic")
        if mosaics:
            parts += self._sky(mosaics[0])
        elif self.skyview is not None:  # a spectrum or light curve: no sky view
            self.skyview.layout.display = "none"
        for prod in self.state.of_kind("_lc")[:6]:
            fig = curve_figure(data.light_curve(prod), f"{prod.meta.get('src_name', prod.name)} light curve")
            parts.append(fig)
        rmfs = {x.meta.get("src_name"): x for x in self.state.of_kind("_rmf")}
        for prod in self.state.of_kind("_spectrum")[:6]:
            name = prod.meta.get("src_name")
            if name in rmfs:
                fit = w.Button(description=f"fit {name}", icon="line-chart")
                fit.on_click(lambda _, n=name: self._submit(self.state.fit(n)))
                parts += [spectrum_view(data.spectrum(prod, rmfs[name]), f"{name} spectrum"), fit]
        for prod in self.state.of_kind("spectral_fit"):
            curve, pars = data.spectral_fit(prod)
            text = ", ".join(f"{k} = {v:.4g} ± {e:.2g} {u}" for k, (v, e, u) in pars.items())
            parts.append(spectrum_view(curve, f"{curve.name}: {prod.meta.get('xspec_model', '')} fit", text))
        save = w.Button(description="download FITS", icon="download")
        saved = w.HTML()
        save.on_click(lambda _: setattr(saved, "value", "<br>".join(
            f"<a href='{html.escape(x)}' download>{html.escape(x)}</a>" for x in self.state.save())))
        parts += [w.HBox([save]), saved]
        self.body.children = parts
        #: seconds spent fetching the products and building their widgets (for the benchmarks)
        self.timings = {"fetch": t1 - t0, "build": time.perf_counter() - t1}

    def prepare_view(self) -> None:
        """Make the sky view before there is a mosaic, while the user fills the form: the first
        mosaic then only adds its layers (see :class:`SkyView`). It waits, hidden, here."""
        from .skyview import SkyView

        if self.skyview is None:
            self.skyview = SkyView(timeout=self.sky_timeout)
            self.skyview.layout.display = "none"
            self.skyview.prime()
            self.children = [self.header, self.error, self.skyview, self.body]

    def _sky(self, mosaic) -> list[w.Widget]:
        from .. import data

        cat = self.state.catalog
        self.prepare_view()
        self.skyview.show_mosaic(data.significance_hdu(mosaic), cat, title=mosaic.name)
        self.skyview.layout.display = None
        if cat is None or not len(cat):
            return [w.HTML("no source detected")]
        options = [(f"{str(r['src_names']).strip():18s} {r['significance']:7.1f} σ", str(r["src_names"]).strip())
                   for r in cat]
        table = w.SelectMultiple(options=options, rows=min(8, max(3, len(options))), description="sources",
                                 layout=w.Layout(width="420px"), style={"description_width": "70px"})
        table.add_class("mmoda-sources")
        table.observe(lambda c: setattr(self.state, "selected", list(c["new"])), names="value")
        spec = w.Button(description="spectrum", icon="bar-chart", button_style="info")
        lc = w.Button(description="light curve", icon="line-chart", button_style="info")
        spec.on_click(lambda _: self._submit(self.state.follow_up(self._product("spectrum"))))
        lc.on_click(lambda _: self._submit(self.state.follow_up(self._product("lc"))))
        note = w.HTML("<span style='color:#666'>select sources, then ask for their spectrum or light curve</span>")
        return [w.HBox([table, w.VBox([spec, lc, note])])]

    def _product(self, kind: str) -> str:
        return f"{self.state.job['instrument']}_{kind}"

    def _submit(self, job: dict | None) -> None:
        self.error.value = html.escape(self.state.error) if job is None else html.escape(self.state.message)
        if job is not None:
            self.on_submit(job)
