"""Fixtures for the browser tests: JupyterLab with the extension, and Debian's chromium driven by
Playwright with every request not to 127.0.0.1 aborted (and recorded), so nothing can silently
use the internet. Screenshots go to ``$MMODA_SCREENSHOTS`` (default: the session's temp folder)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_helpers import CHROMIUM, CHROMIUM_ARGS, LabServer, guarded_page, shared_archive  # noqa: E402

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
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A page whose requests never leave 127.0.0.1 (others aborted, listed in ``page.offsite``)."""
    pg = guarded_page(browser)
    yield pg
    pg.context.close()
