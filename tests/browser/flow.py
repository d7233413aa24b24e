"""The browser steps shared by the embedded-mode and hub-mode tests: quick start → query panel →
live progress → mosaic with sources in the offline sky view → Crab spectrum → light curve."""

from __future__ import annotations

import re
import time
from pathlib import Path

from lab_helpers import NEWS_POPUP, sky_contrast

T = 240_000  # ms; the machine is shared


def run_cells(page, n: int) -> None:
    """Run the first ``n`` cells one by one (Shift+Enter, waiting for the kernel each time)."""
    page.locator(".jp-Notebook .jp-Cell").first.click()
    for _ in range(n):
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(300)
        page.wait_for_function("() => !document.querySelector('.jp-Notebook .jp-InputPrompt')"
                               "?.closest('.jp-Notebook').innerText.includes('[*]')", timeout=T)


def select_source(page, name: str) -> None:
    """Choose one source in the products' source table (options read 'name  significance σ')."""
    sources = page.locator(".mmoda-sources select")
    labels = sources.locator("option").all_inner_texts()
    index = [i for i, t in enumerate(labels) if t.split()[0] == name]
    assert index, labels
    sources.select_option(index=index[0])


def quickstart_flow(page, url: str, shots: Path, prefix: str = "", known_offsite: tuple[str, ...] = ()) -> float:
    """Run the steps from an open-able notebook URL; the seconds from opening to the mosaic shown."""
    t0 = time.monotonic()
    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=T)
    page.wait_for_selector("text=/Python 3 \\(ipykernel\\) \\| Idle/", timeout=T)
    run_cells(page, 4)  # title, show(), how-to, the Crab form values
    query = page.locator(".mmoda-query")
    query.wait_for(timeout=T)
    assert query.locator("text=E1_keV [keV]").count() == 1
    assert "3 of " in query.inner_text(), query.inner_text()
    query.scroll_into_view_if_needed()
    page.screenshot(path=shots / f"{prefix}1-query-panel.png", full_page=False)

    query.locator("button:has-text('Submit')").click()
    job = page.locator(".mmoda-job").first
    job.wait_for(state="attached", timeout=T)
    progress_seen = []
    deadline = time.monotonic() + T / 1000
    while time.monotonic() < deadline and not page.locator(".mmoda-skyview:visible").count():  # made hidden ahead
        text = job.text_content() or ""
        if re.search(r"science windows \d+/\d+|progress|submitted", text):
            progress_seen.append(text)
            if len(progress_seen) == 1:
                page.locator(".mmoda-hub").scroll_into_view_if_needed()
                page.screenshot(path=shots / f"{prefix}2-jobs-progress.png")
        page.wait_for_timeout(150)
    assert page.locator(".mmoda-job .mmoda-status-done").count() or progress_seen
    sky = page.locator(".mmoda-skyview")
    sky.wait_for(timeout=T)
    page.wait_for_selector(".mmoda-skyview canvas", timeout=T)
    page.wait_for_selector(".mmoda-skyview-ready", timeout=T)
    page.wait_for_timeout(3000)  # let the FITS overlay and the source layer draw
    assert "Could not create a view" not in page.content()
    assert page.locator("text=Click to show javascript error").count() == 0
    sky.scroll_into_view_if_needed()
    page.screenshot(path=shots / f"{prefix}3-mosaic-sky-view.png")
    # the cuts apply (−3 σ … a third of the peak): quiet dark noise, the Crab bright at the centre
    view = sky.locator(".aladin-widget")
    stats = sky_contrast(view.screenshot(path=shots / f"{prefix}3-sky-view-canvas.png"))
    print(f"\nsky view red channel: median {stats['median']:.0f}, centre 99th percentile {stats['centre_p99']:.0f}")
    assert stats["median"] < 90 and stats["centre_p99"] > stats["median"] + 120, stats
    t_image = time.monotonic() - t0

    select_source(page, "Crab")
    page.locator(".mmoda-products button:has-text('spectrum')").click()
    plot = page.locator(".mmoda-products .mmoda-plot")
    plot.first.wait_for(timeout=T)
    page.wait_for_selector(".mmoda-plot >> text=energy [keV]", timeout=T)
    plot.first.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=shots / f"{prefix}4-spectrum.png")

    page.locator(".lm-TabBar-tab:has-text('Jobs')").click()
    page.locator(".mmoda-job:has-text('isgri_image') button:has-text('show products')").first.click()
    page.locator(".mmoda-sources select").wait_for(timeout=T)
    select_source(page, "Crab")
    page.locator(".mmoda-products button:has-text('light curve')").click()
    page.wait_for_selector(".mmoda-plot >> text=/time \\[/", timeout=T)
    page.locator(".mmoda-plot").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=shots / f"{prefix}5-light-curve.png")
    assert page.locator(NEWS_POPUP).count() == 0, "JupyterLab's news pop-up is shown"
    # only aladin-lite's start-up logger call to CDS remains (aborted here; it cannot be turned off)
    known = ("/cgi/AladinLiteLogger/", *known_offsite)
    assert not [u for u in page.offsite if not any(k in u for k in known)], page.offsite
    return t_image
