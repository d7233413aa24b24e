"""Widgets in a real browser: the panel's first render, and Submit click → mosaic shown for a
cached 20-window ISGRI request (aims: < 1 s and < 3 s).

JupyterLab with the extension (embedded mode) on 127.0.0.1, Debian chromium through Playwright
(requests off 127.0.0.1 aborted). The 20-window Crab mosaic is computed once first, so Submit
answers from the stored job; each timing is the median of ``REPEAT`` runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

from lab_helpers import LabServer  # noqa: E402

from benchmarks.report import aim  # noqa: E402

REPEAT = 3
CRAB20 = dict(src_name="Crab", RA=83.6331, DEC=22.0145, T1="2016-02-01T00:00:00", T2="2016-03-01T00:00:00",
              max_pointings=20, E1_keV=20.0, E2_keV=40.0)
T = 300_000


def bench_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    fields = "".join(f"hub.query.field({k!r}).value = {v!r}\n" for k, v in CRAB20.items())
    nb.cells = [nbformat.v4.new_code_cell("import mmoda_widgets, ipyaladin, bqplot"),
                nbformat.v4.new_code_cell("hub = mmoda_widgets.show(instrument='isgri', product='isgri_image')"),
                nbformat.v4.new_code_cell(fields + "hub.query.check()")]
    nbformat.write(nb, path)


def main() -> None:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-widgets-"))
    (work / "root").mkdir()
    bench_notebook(work / "root" / "bench.ipynb")
    lab = LabServer(work, work / "archive").start()
    try:
        t = time.perf_counter()
        api = lab.url + "/mmoda/api/v1"
        job = httpx.post(api + "/jobs", json={"instrument": "isgri", "product": "isgri_image", "params": CRAB20},
                         headers=lab.headers, timeout=60).json()
        while not job.get("finished"):
            time.sleep(0.5)
            job = httpx.get(f"{api}/jobs/{job['job_id']}", headers=lab.headers, timeout=30).json()
        assert job["status"] == "done", job
        print(f"20-window Crab mosaic computed once (cold archive): {time.perf_counter() - t:.1f} s")
        renders, shows = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-background-networking", "--no-first-run",
                "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
            for i in range(REPEAT):
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                ctx.route("**/*", lambda r: r.continue_() if urlparse(r.request.url).hostname == "127.0.0.1"
                          or r.request.url.startswith(("blob:", "data:")) else r.abort())
                page = ctx.new_page()
                page.goto(f"{lab.url}/lab/workspaces/b{i}/tree/bench.ipynb?reset&token={lab.token}")
                page.wait_for_selector("text=/Python 3 \\(ipykernel\\) \\| Idle/", timeout=T)
                page.locator(".jp-Notebook .jp-Cell").first.click()
                page.keyboard.press("Shift+Enter")  # imports (kernel warm-up, not timed)
                page.wait_for_function("() => document.querySelector('.jp-Cell .jp-InputPrompt')"
                                       ".innerText.match(/\\[\\d+\\]/)", timeout=T)
                t = time.perf_counter()
                page.keyboard.press("Shift+Enter")  # show()
                page.locator(".mmoda-query button:has-text('Submit')").wait_for(timeout=T)
                renders.append(time.perf_counter() - t)
                page.keyboard.press("Shift+Enter")  # the 20-window request in the form
                page.wait_for_function("() => document.querySelector('.mmoda-query')?.innerText.includes('20 of')",
                                       timeout=T)
                t = time.perf_counter()
                page.locator(".mmoda-query button:has-text('Submit')").click()
                page.wait_for_selector(".mmoda-skyview-ready", timeout=T)
                shows.append(time.perf_counter() - t)
                ctx.close()
            browser.close()
        print(f"panel first render (show() → form drawn): median {statistics.median(renders):.2f} s "
              f"({', '.join(f'{x:.2f}' for x in renders)})")
        print(f"Submit click → mosaic in the sky view (cached 20 windows): median {statistics.median(shows):.2f} s "
              f"({', '.join(f'{x:.2f}' for x in shows)})")
        aim("panel first render, median", statistics.median(renders), "<", 1, " s")
        aim("Submit click → image shown, median", statistics.median(shows), "<", 3, " s")
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
