"""The panels inside the hub (gateway mode), in chromium: log in through the provider's page,
JupyterLab opens in the user's server, the quick-start notebook runs, a submitted ISGRI image
shows progress and then the mosaic in the offline sky view (aladin-lite from the user's own
server behind the hub's proxy), the Crab's spectrum and a light curve plot. Every request to
anything but 127.0.0.1 is aborted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))

from flow import T, quickstart_flow  # noqa: E402
from lab_helpers import CHROMIUM, CHROMIUM_ARGS, guarded_page  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: the development provider's login page loads its stylesheet from a CDN (cosmetic offline)
PROVIDER_CSS = ("cdn.jsdelivr.net/npm/@picocss/",)
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01-quickstart-panels.ipynb"


def test_hub_login_quickstart_mosaic_spectrum(platform, tmp_path_factory):
    import os

    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("MMODA_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    user = "registered"
    hub = platform.hub_url.rstrip("/")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = guarded_page(browser)
        try:
            page.goto(f"{hub}/hub/login")
            page.get_by_role("button", name="Sign in with").or_(page.get_by_text("Sign in with")).first.click()
            page.locator(f"button[name=sub][value={user}]").click()
            # logged in: back on the hub's origin (/hub/home, or the lab when the server runs already)
            page.wait_for_url(lambda url: url.startswith(hub + "/"), timeout=T)
            page.goto(f"{hub}/user/{user}/lab")  # spawns the server, then opens JupyterLab
            page.wait_for_url(f"**/user/{user}/lab**", timeout=T)
            page.wait_for_selector(".jp-LabShell", timeout=T)
            page.screenshot(path=shots / "hub-0-lab-after-login.png")
            token = platform.user_token(user)
            r = httpx.put(f"{hub}/user/{user}/api/contents/quickstart.ipynb",
                          headers={"Authorization": f"token {token}"}, timeout=60,
                          json={"type": "notebook", "format": "json", "content": json.loads(NOTEBOOK.read_text())})
            assert r.status_code in (200, 201), r.text
            t_image = quickstart_flow(page, f"{hub}/user/{user}/lab/workspaces/h/tree/quickstart.ipynb?reset",
                                      shots, "hub-", known_offsite=PROVIDER_CSS)
            print(f"\nhub: notebook opened → mosaic shown {t_image:.1f} s")
        except Exception:
            page.screenshot(path=shots / "hub-failure.png")
            (shots / "hub-failure-console.txt").write_text("\n".join(page.console + ["offsite:"] + page.offsite))
            raise
        finally:
            page.context.close()
            browser.close()
