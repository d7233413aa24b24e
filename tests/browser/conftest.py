"""Fixtures for the browser tests: JupyterLab with the extension, and Debian's chromium driven by
Playwright with every request not to 127.0.0.1 aborted (and recorded), so nothing can silently
use the internet. Screenshots go to ``$MMODA_SCREENSHOTS`` (default: the session's temp folder)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_helpers import LabServer, shared_archive  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    path = Path(os.environ.get("MMODA_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("browserlab")
    (work / "root").mkdir()
    shutil.copy(NOTEBOOKS / "01-quickstart-panels.ipynb", work / "root")
    srv = LabServer(work, shared_archive(tmp_path_factory)).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian chromium is installed by `make test` (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page whose requests leave 127.0.0.1 never: each is aborted and listed in ``page.offsite``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    offsite: list[str] = []

    def guard(route):
        if urlparse(route.request.url).hostname == "127.0.0.1" or route.request.url.startswith(("blob:", "data:")):
            return route.continue_()
        offsite.append(route.request.url)
        return route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.offsite = offsite
    pg.console = []
    pg.on("console", lambda m: pg.console.append(f"{m.type}: {m.text}"))
    yield pg
    context.close()
