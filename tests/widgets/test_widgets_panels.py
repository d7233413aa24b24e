"""Panels without a browser: widgets follow their state both ways, and the whole flow (submit →
live progress → mosaic with sources → select → spectrum plot) runs against a real server."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from mmoda_widgets import Hub
from mmoda_widgets.panels import SkyView
from PIL import Image
from widget_helpers import CRAB

from mmoda_ext.server import skyview


def _wait(cond, timeout=120.0, what=""):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_form_widgets_and_state_round_trip(anon):
    hub = Hub(anon, instrument="isgri", product="isgri_image")
    panel = hub.query_panel
    assert len(panel.form.children) == len(hub.query.fields)
    box = panel.form.children[[f.name for f in hub.query.fields].index("E1_keV")].children[0]
    assert box.description == "E1_keV [keV]" and (box.min, box.max) == (15.0, 800.0)
    box.value = 30.0
    assert hub.query.field("E1_keV").value == 30.0  # widget -> state
    hub.query.field("E1_keV").value = 25.0
    assert box.value == 25.0  # state -> widget
    rights = panel.form.children[[f.name for f in hub.query.fields].index("integral_data_rights")].children[0]
    assert rights.disabled and list(rights.options) == ["public"]
    hub.query.field("T1").value = "yesterday"
    panel.check_btn.click()
    err = panel.form.children[[f.name for f in hub.query.fields].index("T1")].children[1]
    assert "yesterday" in hub.query.field("T1").error and "yesterday" in err.value
    assert "mmoda-field-T1" in err._dom_classes
    panel.code_btn.click()
    assert "DispatcherAPI" in panel.code.value
    panel.instrument.value = "jemx"
    assert hub.query.product == "jemx_image" and "jemx_num" in [f.name for f in hub.query.fields]


def test_submit_progress_mosaic_select_spectrum(registered):
    hub = Hub(registered, sky_timeout=1.0, instrument="isgri", product="isgri_image")
    for k, v in CRAB.items():
        hub.query.field(k).value = v
    hub.query.field("max_pointings").value = 2
    seen = []
    hub.jobs.observe(lambda c: seen.extend((j["status"], j.get("message")) for j in c["new"]), names="jobs")
    job = hub.query_panel.submit()
    assert job is not None and hub.tabs.selected_index in (1, 2)
    _wait(lambda: hub.tabs.selected_index == 2 and hub.products_panel.skyview is not None, what="the mosaic")
    assert any("science windows" in str(m) for _, m in seen) or job["status"] == "done"
    sky = hub.products_panel.skyview
    assert "skyview/widget.js" in sky.aladin._esm and sky.aladin.survey == "mmoda:hips/blank"
    _wait(lambda: sky.fallback.value, timeout=30, what="the WCSAxes fallback")
    png = Image.open(io.BytesIO(sky.fallback.value))
    assert png.size[0] > 300 and np.asarray(png).std() > 5
    sources = [c for c in hub.products_panel.body.children[0].children if hasattr(c, "options")][0]
    assert "Crab" in sources.value or "Crab" in [v for _, v in sources.options]
    sources.value = ("Crab",)
    assert hub.products.selected == ["Crab"]
    buttons = hub.products_panel.body.children[0].children[1].children
    buttons[0].click()  # "spectrum"
    assert hub.products.error == "", hub.products.error
    def spectrum_views():
        return [c for c in hub.products_panel.body.children if type(c).__name__ == "VBox"]

    _wait(lambda: hub.products.job.get("product") == "isgri_spectrum" and spectrum_views(), what="the spectrum")
    figs = spectrum_views()
    fig = figs[0].children[0]
    assert fig.axes[0].label == "energy [keV]" and "count/s/keV" in fig.axes[1].label
    assert len(fig.marks[-1].x) > 5


def test_fallback_picture_without_a_view(registered, crab_image):
    from mmoda_widgets import data
    from mmoda_widgets.state import ProductsState

    p = ProductsState(registered)
    p.load(crab_image)
    view = SkyView(data.significance_hdu(p.of_kind("_mosaic")[0]), p.catalog, timeout=60)
    view.show_fallback("report")
    assert view.fallback.value[:8] == b"\x89PNG\r\n\x1a\n" and view.shown == [view.status, view.fallback]
    view.show_fallback("still loading", keep_view=True)
    assert view.shown == [view.status, view.aladin, view.fallback]
    view.aladin._is_loaded = True  # the view loads late: it takes the picture's place
    assert view.shown == [view.status, view.aladin] and "ready" in view.status.value
    # the same view shows the next mosaic: its sources layer replaced, its place kept
    aladin, children = view.aladin, list(view.children)
    view.show_mosaic(data.significance_hdu(p.of_kind("_mosaic")[0]), p.catalog[:1], title="again")
    assert view.aladin is aladin and list(view.children) == children and view.title == "again"
    assert list(aladin._overlay_manager.keys()) == ["sources"]


def test_sky_assets():
    js = skyview.widget_js().decode()
    assert "esm.sh" not in js and 'from"./aladin.js"' in js
    tile = Image.open(io.BytesIO(skyview.blank_tile()))
    assert tile.size == (64, 64) and not np.asarray(tile).any()
    assert skyview.aladin_js_path().is_file(), "run `make venv` (npm aladin-lite)"
    assert "hips_order = 0" in skyview.HIPS_PROPERTIES


@pytest.mark.parametrize("kind", ["news", "issue"])
def test_banner_shows_published_news(widget_server, kind):
    from mmoda_widgets.panels import BannerPanel
    from mmoda_widgets.state import BannerState
    from serve_helpers import make_token

    from mmoda_ext.client import Client

    admin = Client(widget_server.url, token=make_token("boss@example.org", roles="general,mmoda-admin"))
    import httpx

    r = httpx.post(admin.api + "/banner", json={"text": f"{kind}: ISGRI maintenance", "kind": kind},
                   headers={"Authorization": f"Bearer {admin.token}"})
    assert r.status_code == 201, r.text
    state = BannerState(admin)
    panel = BannerPanel(state)
    state.refresh()
    assert f"{kind}: ISGRI maintenance" in panel.value
    admin.close()


def test_significance_layer_carries_its_cuts(monkeypatch):
    """aladin-lite 3.9 keeps cuts only under a known image format: the layer says 'fits'."""
    from astropy.io import fits
    from mmoda_widgets.panels.skyview import OfflineAladin, significance_cuts

    sent = []
    monkeypatch.setattr(OfflineAladin, "send", lambda self, msg, buffers=None: sent.append((msg, buffers)))
    sig = np.random.default_rng(1).normal(size=(40, 40)).astype(np.float32)
    sig[20, 20] = 90.0
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 83.63, "CRVAL2": 22.01,
                          "CRPIX1": 20.5, "CRPIX2": 20.5, "CDELT1": -0.08, "CDELT2": 0.08})
    view = SkyView(fits.ImageHDU(sig, header), timeout=60)
    view._timer.cancel()
    assert not sent  # ipyaladin holds the layer until the view has loaded in the browser
    view.aladin._is_loaded = True
    (msg, buffers), = [m for m in sent if m[0]["event_name"] == "add_fits"]
    assert msg["options"]["img_format"] == "fits"
    assert (msg["options"]["min_cut"], msg["options"]["max_cut"]) == (-3.0, 30.0) == significance_cuts(sig)
    assert significance_cuts(np.zeros((3, 3))) == (-3.0, 10.0)
    assert fits.open(io.BytesIO(buffers[0]))[0].data.shape == (40, 40)


def test_overlay_drops_the_empty_border_keeping_positions():
    from astropy.io import fits
    from astropy.wcs import WCS
    from mmoda_widgets.panels.skyview import finite_part

    sig = np.full((50, 60), np.nan, np.float32)
    sig[5:45, 12:40] = 0.5  # finite: rows 5-44, columns 12-39 (20 empty columns on the right)
    sig[20, 25] = 50.0
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 83.63, "CRVAL2": 22.01,
                          "CRPIX1": 30.5, "CRPIX2": 25.5, "CDELT1": -0.08, "CDELT2": 0.08})
    cut = finite_part(fits.ImageHDU(sig, header))
    assert cut.data.shape == (40, 36)  # the same border on both sides: the centre stays
    assert np.isfinite(cut.data).sum() == np.isfinite(sig).sum()
    centre = WCS(header).pixel_to_world(29.5, 24.5)
    assert centre.separation(WCS(cut.header).pixel_to_world(17.5, 19.5)).arcsec < 1e-6
    y, x = np.unravel_index(np.nanargmax(cut.data), cut.data.shape)
    before, after = WCS(header).pixel_to_world(25, 20), WCS(cut.header).pixel_to_world(x, y)
    assert before.separation(after).arcsec < 1e-6
