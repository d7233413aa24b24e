"""The Dask dashboard, per user: only the cluster's owner sees it, through ``mmoda-dashboards``.

A real gateway cluster of the ``hpc`` user (scheduler only: the dashboard needs no worker).
The owner reaches the bokeh dashboard with a token and with a browser session (hub OAuth);
another user gets 403; an anonymous browser is sent to the hub's login; and the gateway's own
unauthenticated route ``/services/dask-gateway/clusters/<name>/status`` no longer serves the
dashboard on the hub's public port.
"""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(platform):
    """A running cluster of ``hpc``: (name, owner's token); shut down at the end."""
    platform.login("hpc").close()
    token = platform.user_token("hpc")
    api = f"{platform.hub_url}/services/dask-gateway/api/v1/clusters/"
    headers = {"Authorization": f"jupyterhub {token}"}
    r = httpx.post(api, json={"cluster_options": {}}, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    name = r.json()["name"]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            info = httpx.get(api + name, headers=headers, timeout=30).json()
            if info["status"] == "RUNNING" and info.get("dashboard_route"):
                break
            assert info["status"] in ("PENDING", "RUNNING"), info
            time.sleep(0.3)
        else:
            raise TimeoutError(f"cluster {name} not running: {info}")
        yield name, token
    finally:
        httpx.delete(api + name, headers=headers, timeout=60)


def _bokeh(r: httpx.Response) -> bool:
    return r.status_code == 200 and "bokeh" in r.text.lower()


def test_owner_sees_the_dashboard_with_a_token(platform, cluster):
    name, token = cluster
    url = f"{platform.hub_url}/services/mmoda-dashboards/{name}/status"
    r = httpx.get(url, headers={"Authorization": f"token {token}"}, timeout=60)
    assert _bokeh(r), (r.status_code, r.text[:300])
    # the page's assets come through the guard too
    r = httpx.get(f"{platform.hub_url}/services/mmoda-dashboards/{name}/individual-plots.json",
                  headers={"Authorization": f"token {token}"}, timeout=60)
    assert r.status_code == 200 and r.json()


def test_owner_browser_follows_the_gateway_link_through_hub_login(platform, cluster):
    name, _ = cluster
    browser = platform.login("hpc")
    browser.follow_redirects = True
    try:
        r = browser.get(f"/services/dask-gateway/clusters/{name}/status")
    finally:
        browser.close()
    assert _bokeh(r), (r.status_code, str(r.url), r.text[:300])
    assert f"/services/mmoda-dashboards/{name}/status" in str(r.url)


def test_another_user_is_refused(platform, cluster):
    name, _ = cluster
    platform.login("registered").close()
    other = platform.user_token("registered")
    r = httpx.get(f"{platform.hub_url}/services/mmoda-dashboards/{name}/status",
                  headers={"Authorization": f"token {other}"}, timeout=60)
    assert r.status_code == 403 and "bokeh" not in r.text.lower()
    browser = platform.login("registered")
    browser.follow_redirects = True
    try:
        r = browser.get(f"/services/dask-gateway/clusters/{name}/status")
    finally:
        browser.close()
    assert r.status_code == 403 and "bokeh" not in r.text.lower()


def test_anonymous_browser_is_sent_to_login(platform, cluster):
    name, _ = cluster
    with httpx.Client(base_url=platform.hub_url, timeout=60) as anon:
        r = anon.get(f"/services/mmoda-dashboards/{name}/status")
        assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["location"]
        anon.follow_redirects = True
        r = anon.get(f"/services/mmoda-dashboards/{name}/status")
        assert "/hub/login" in str(r.url) and "bokeh" not in r.text.lower()


def test_gateway_route_not_reachable_on_the_public_port(platform, cluster):
    name, _ = cluster
    r = httpx.get(f"{platform.hub_url}/services/dask-gateway/clusters/{name}/status", timeout=60)
    assert r.status_code == 302  # to the guard, never the dashboard
    assert r.headers["location"].startswith(f"/services/mmoda-dashboards/{name}/status")
    r = httpx.get(f"{platform.hub_url}/services/dask-gateway/clusters/{name}/status",
                  timeout=60, follow_redirects=True)
    assert "bokeh" not in r.text.lower() and "/hub/login" in str(r.url)


async def test_bokeh_websocket_through_the_guard(platform, cluster):
    import asyncio
    import re

    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    name, token = cluster
    page = httpx.get(f"{platform.hub_url}/services/mmoda-dashboards/{name}/status",
                     headers={"Authorization": f"token {token}"}, timeout=60).text
    bokeh_token = re.search(r'"token":\s*"([^"]+)"', page).group(1)
    ws_url = platform.hub_url.replace("http", "ws", 1) + f"/services/mmoda-dashboards/{name}/status/ws"
    conn = await websocket_connect(
        HTTPRequest(ws_url, headers={"Authorization": f"token {token}"}, request_timeout=30),
        subprotocols=["bokeh", bokeh_token])
    try:
        first = await asyncio.wait_for(conn.read_message(), 30)
        assert '"msgtype":"ACK"' in first.replace(" ", ""), first
    finally:
        conn.close()
    platform.login("registered").close()
    other = platform.user_token("registered")
    with pytest.raises(HTTPClientError) as err:
        await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {other}"}),
                                subprotocols=["bokeh", bokeh_token])
    assert err.value.code == 403


@pytest.mark.browser
def test_owner_watches_the_live_dashboard_in_chromium(platform, cluster, tmp_path):
    """A browser opens the gateway's dashboard link, logs in at the hub and the provider, and the
    bokeh dashboard renders live (its websocket through the hub's proxy and the guard)."""
    from playwright.sync_api import sync_playwright

    name, _ = cluster
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                           "--disable-background-networking"])
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.goto(f"{platform.hub_url}/services/dask-gateway/clusters/{name}/status")
            page.locator("a:has-text('Sign in')").click()
            page.get_by_role("button", name="Authorize as hpc").click()
            page.wait_for_url(f"**/services/mmoda-dashboards/{name}/status*", timeout=60_000)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any("rendered successfully" in c
                                                          for c in console):
                page.wait_for_timeout(250)
            page.screenshot(path=str(tmp_path / "dashboard.png"))
        finally:
            browser.close()
    assert any("Bokeh items were rendered successfully" in c for c in console), console[-10:]
    assert not any("Could not open websocket" in c for c in console), console[-10:]
