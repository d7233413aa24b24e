"""JupyterLab in chromium (embedded mode): the quick-start notebook runs, the query panel renders,
a submitted ISGRI image shows live progress and then the mosaic with its sources in the offline
sky view, selecting the Crab and pressing "spectrum" gives a spectrum plot, and a light curve
plot appears. Screenshots of each step are saved (and were looked at)."""

from __future__ import annotations

import pytest
from flow import quickstart_flow

pytestmark = pytest.mark.browser


def test_quickstart_to_mosaic_spectrum_and_light_curve(lab, page, shots):
    url = f"{lab.url}/lab/workspaces/t/tree/01-quickstart-panels.ipynb?reset&token={lab.token}"
    t_image = quickstart_flow(page, url, shots, "lab-")
    print(f"\nembedded: notebook opened → mosaic shown {t_image:.1f} s; screenshots in {shots}")


def test_lab_news_and_update_checks_off_by_environment(lab):
    """The environment's overrides (not the test's user settings) turn the news pop-up off."""
    import httpx

    r = httpx.get(f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
                  headers=lab.headers, timeout=30)
    assert r.status_code == 200, r.text
    defaults = {k: v.get("default") for k, v in r.json()["schema"]["properties"].items()}
    assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults
    news = httpx.get(f"{lab.url}/lab/api/news", headers=lab.headers, timeout=30)
    assert news.status_code == 200 and news.json()["news"] == [], news.text


def test_sky_view_assets_cached_by_the_browser(lab):
    """aladin-lite (2.6 MB) is sent once: a week in the browser's cache, then a 304 by ETag;
    the route needs the Jupyter login."""
    import httpx

    url = f"{lab.url}/mmoda/skyview/aladin.js"
    first = httpx.get(url, headers=lab.headers, timeout=60)
    assert first.status_code == 200 and len(first.content) > 2_000_000
    assert first.headers["cache-control"] == "private, max-age=604800" and first.headers["etag"]
    again = httpx.get(url, headers={**lab.headers, "If-None-Match": first.headers["etag"]}, timeout=60)
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(url, timeout=60).status_code in (302, 403)
