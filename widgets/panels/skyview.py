"""The mosaic in a sky view that works with no internet, with a WCSAxes picture as fallback.

:class:`OfflineAladin` is ipyaladin's widget whose front end is loaded from the Jupyter
server (``<base_url>mmoda/skyview/widget.js``, served by :mod:`mmoda_ext.server.skyview` with
aladin-lite beside it) instead of esm.sh, over a local blank HiPS instead of CDS surveys.
:class:`SkyView` shows the significance map as an image overlay and the detected sources as a
labelled table layer (a click shows name, significance and flux); if the view has not loaded
after ``timeout`` seconds (no WebGL2, no extension) it shows a matplotlib/WCSAxes picture.
"""

from __future__ import annotations

import html
import io
import threading
from typing import Any

import ipywidgets as w
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from ipyaladin import Aladin
from ipyaladin.utils.call_store import CallStore
from traitlets import Dict

from .preload import ASSETS_JS

__all__ = ["OfflineAladin", "SkyView", "significance_cuts", "wcsaxes_png"]

_LOADER = ASSETS_JS + r"""
function localSurvey(model) {
  const o = { ...model.get("_init_options") };
  if (typeof o.survey === "string" && o.survey.startsWith("mmoda:")) {
    o.survey = url("skyview/" + o.survey.slice(6));
    model.set("_init_options", o);
  }
  const s = model.get("survey");
  if (typeof s === "string" && s.startsWith("mmoda:")) model.set("survey", url("skyview/" + s.slice(6)));
}
// A view made while hidden (a tab not shown) has no size: aladin-lite then zooms out to the
// whole sky and keeps that scale when shown. For two seconds after it gets a size, the view
// Python asked for (_mmoda_view: ra, dec, fov) is set again whenever aladin-lite moves away
// from it, through ipyaladin's own trait handlers (a model change).
function repointWhenShown({ model, el }) {
  let hidden = el.clientWidth < 2, until = 0;
  const apply = () => {
    const v = model.get("_mmoda_view");
    if (!v || !v.fov || performance.now() > until || el.clientWidth < 2) return;
    if (Math.abs(model.get("_fov") - v.fov) > 0.01 * v.fov) model.set("_fov", v.fov);
    const [ra, dec] = String(model.get("_target")).split(" ").map(Number);
    if (Math.abs(ra - v.ra) > 1e-3 || Math.abs(dec - v.dec) > 1e-3) model.set("_target", `${v.ra} ${v.dec}`);
  };
  model.on("change:_fov", () => setTimeout(apply, 0));
  new ResizeObserver(() => {
    const now = el.clientWidth < 2;
    if (hidden && !now) {
      until = performance.now() + 2000;
      requestAnimationFrame(apply);
    }
    hidden = now;
  }).observe(el);
}
export default {
  async initialize(ctx) { const m = await load(); if (m.initialize) return m.initialize(ctx); },
  async render(ctx) {
    localSurvey(ctx.model);
    const m = await load();
    performance.mark("mmoda-view-render");  // the benchmark reads how long Aladin's start takes
    const cleanup = m.render(ctx);
    performance.mark("mmoda-view-rendered");
    repointWhenShown(ctx);
    return cleanup;
  },
};
"""


class OfflineAladin(Aladin):
    """ipyaladin with aladin-lite and a blank base survey served by the Jupyter server."""

    _esm = _LOADER
    #: where the view should point (ra, dec, fov in degrees), applied again when a view made
    #: hidden is first shown
    _mmoda_view = Dict().tag(sync=True)

    def __init__(self, **options: Any) -> None:
        options.setdefault("survey", "mmoda:hips/blank")
        options.setdefault("background_color", "black")
        options.setdefault("show_simbad_pointer_control", False)  # Sesame/SIMBAD are online
        options.setdefault("show_reticle", False)  # it would hide the source at the centre
        super().__init__(**options)
        self._call_store = CallStore()  # ipyaladin's is shared by every instance


def significance_cuts(data: np.ndarray) -> tuple[float, float]:
    """Display cuts of a significance map: −3 σ (noise stays dark) to a third of the peak, at
    least 10 σ (a bright source stands out; a map without one still shows its 5 σ spots)."""
    finite = np.isfinite(data)
    peak = float(np.max(data[finite])) if finite.any() else 10.0
    return -3.0, max(10.0, peak / 3.0)


def finite_part(hdu: Any) -> fits.PrimaryHDU:
    """The image without its empty border (CRPIX shifted to match): a mosaic's border is up to a
    third of it, and the browser's texture upload and drawing cost by the pixel. The cut is
    symmetric, so the image's centre (where Aladin points the view once it is loaded) stays."""
    data = np.asarray(hdu.data, np.float32)
    rows, cols = np.flatnonzero(np.isfinite(data).any(axis=1)), np.flatnonzero(np.isfinite(data).any(axis=0))
    header = hdu.header.copy()
    if not rows.size:
        return fits.PrimaryHDU(data, header)
    (ny, nx), my, mx = data.shape, min(rows[0], data.shape[0] - 1 - rows[-1]), min(cols[0], data.shape[1] - 1 - cols[-1])
    y0, y1, x0, x1 = my, ny - my, mx, nx - mx
    header["CRPIX1"] = header.get("CRPIX1", 1.0) - x0
    header["CRPIX2"] = header.get("CRPIX2", 1.0) - y0
    return fits.PrimaryHDU(np.ascontiguousarray(data[y0:y1, x0:x1]), header)


def wcsaxes_png(sig_hdu: Any, catalog: Any = None, title: str = "") -> bytes:
    """A PNG of the significance map on sky axes with the sources marked (no network, no browser)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.visualization import simple_norm
    from astropy.wcs import WCS

    fig = plt.figure(figsize=(6.4, 5.6), dpi=90)
    ax = fig.add_subplot(projection=WCS(sig_hdu.header))
    im = ax.imshow(sig_hdu.data, origin="lower", cmap="inferno",
                   norm=simple_norm(sig_hdu.data, "asinh", percent=99.9))
    ax.coords.grid(color="white", alpha=0.3, ls=":")
    ax.set_xlabel("RA"), ax.set_ylabel("Dec")
    fig.colorbar(im, ax=ax, label="significance [σ]", shrink=0.8)
    if catalog is not None and len(catalog):
        tr = ax.get_transform("icrs")
        ax.scatter(catalog["ra"], catalog["dec"], s=90, transform=tr, facecolor="none", edgecolor="cyan")
        for row in catalog:
            ax.text(row["ra"], row["dec"], f"  {str(row['src_names']).strip()}", transform=tr,
                    color="cyan", fontsize=8)
    ax.set_title(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class SkyView(w.VBox):
    """Sky view of a mosaic: significance overlay + source table layer; fallback picture.

    One view serves every mosaic of a panel (:meth:`show_mosaic`): starting aladin-lite's view
    (WebGL context, shaders) takes seconds in a browser without a GPU, replacing its layers
    does not. So the products panel makes its view before the first mosaic (``sig_hdu=None``)
    and its children keep their order ([status, view, picture]: the browser keeps the view
    only while its place in the list holds); the picture and view are shown or hidden.
    """

    def __init__(self, sig_hdu: Any = None, catalog: Any = None, title: str = "", timeout: float = 30.0,
                 fov: float | None = None) -> None:
        self.sig_hdu, self.catalog, self.title, self.timeout = None, None, title, timeout
        self.status = w.HTML("<i>loading the sky view…</i>")
        self.aladin = OfflineAladin(height=420, layout=w.Layout(width="100%"))
        self.fallback = w.Image(format="png", layout=w.Layout(max_width="640px", display="none"))
        self._timer: threading.Timer | None = None
        super().__init__([self.status, self.aladin, self.fallback])
        self.add_class("mmoda-skyview")
        self.aladin.observe(self._loaded, names="_is_loaded")
        if sig_hdu is not None:
            self.show_mosaic(sig_hdu, catalog, title, fov)

    def prime(self) -> None:
        """Before the first mosaic: a tiny transparent image layer ("start-up", 8×8 pixels at
        RA 0, Dec 0), so that aladin-lite compiles its image shaders now, not after Submit. Not
        the mosaic's name: two images loading under one name, the later parsed would win."""
        if self.sig_hdu is None:
            header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 0.0, "CRVAL2": 0.0,
                                  "CRPIX1": 4.5, "CRPIX2": 4.5, "CDELT1": -0.1, "CDELT2": 0.1})
            self.aladin.add_fits(fits.HDUList([fits.PrimaryHDU(np.zeros((8, 8), np.float32), header)]),
                                 name="start-up", img_format="fits", opacity=0.0, min_cut=-3.0, max_cut=10.0)

    def show_mosaic(self, sig_hdu: Any, catalog: Any = None, title: str = "", fov: float | None = None) -> None:
        """This mosaic's significance map and sources in the view (an earlier one's replaced).

        ``fov`` (degrees across the view) defaults to the central half of the mosaic, where the
        requested source is: its neighbours stand out; the mouse wheel shows the rest."""
        self.sig_hdu, self.catalog, self.title = sig_hdu, catalog, title
        target = SkyCoord(sig_hdu.header["CRVAL1"], sig_hdu.header["CRVAL2"], unit="deg")
        fov = fov or 0.3 * abs(sig_hdu.header.get("CDELT1", 0.08)) * max(sig_hdu.data.shape)
        self.aladin.target, self.aladin.fov = target, fov
        self.aladin._mmoda_view = {"ra": float(target.ra.deg), "dec": float(target.dec.deg), "fov": float(fov)}
        if "sources" in self.aladin._overlay_manager:  # the image layer is replaced by its name
            self.aladin.remove_overlay("sources")
        lo, hi = significance_cuts(sig_hdu.data)
        # img_format="fits": aladin-lite 3.9 files the cuts under the image's format, which is
        # unknown until the FITS is parsed; without it the cuts are dropped for automatic ones
        self.aladin.add_fits(fits.HDUList([finite_part(sig_hdu)]),
                             name="significance", img_format="fits", colormap="inferno",
                             stretch="asinh", opacity=1.0, min_cut=lo, max_cut=hi)
        if catalog is not None and len(catalog):
            cols = [c for c in ("src_names", "significance", "FLUX", "FLUX_ERR", "ra", "dec") if c in catalog.colnames]
            self.aladin.add_table(catalog[cols], shape="circle", name="sources", color="#00e5ff",
                                  source_size=14, display_label=True, label_column="src_names",
                                  label_color="#00e5ff")
        if self.aladin._is_loaded:
            self._loaded({"new": True})
        elif self._timer is not None and not self._timer.is_alive():  # the view gave up already
            self._give_up()
        elif self._timer is None:
            self._timer = threading.Timer(self.timeout, self._give_up)
            self._timer.daemon = True
            self._timer.start()

    def _loaded(self, change: dict) -> None:
        if change["new"] and self.sig_hdu is not None:
            if self._timer is not None:
                self._timer.cancel()
            self.status.value = "<span class='mmoda-skyview-ready'>sky view: significance map and sources</span>"
            self._show(view=True, picture=False)  # a late view replaces the static picture

    def _give_up(self) -> None:
        if not self.aladin._is_loaded:
            self.show_fallback("the interactive sky view has not loaded yet; static view meanwhile",
                               keep_view=True)

    def show_fallback(self, why: str, keep_view: bool = False) -> None:
        """Show the WCSAxes picture (also for reports); ``keep_view`` leaves the interactive view
        above it, still loading (it takes the picture's place if it loads)."""
        self.fallback.value = wcsaxes_png(self.sig_hdu, self.catalog, self.title)
        self.status.value = f"<i>{html.escape(why)}</i>"
        self._show(view=keep_view, picture=True)

    def _show(self, view: bool, picture: bool) -> None:
        self.aladin.layout.display = None if view else "none"
        self.fallback.layout.display = None if picture else "none"

    @property
    def shown(self) -> list[w.Widget]:
        """What the user sees: the status line, then the view and/or the picture."""
        return [c for c in self.children if c.layout.display != "none"]
