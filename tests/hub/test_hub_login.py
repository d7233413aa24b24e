"""Each tier's user logs in through the provider's own form and lands in JupyterLab, with the
hub groups of their claims; a group removed at the provider lowers the tier without restart."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import httpx
import pytest
import yaml

from mmoda_ext.access.tiers import TierTable
from mmoda_ext.platform.launcher import HUB_CONFIG

pytestmark = pytest.mark.integration

DEV_USERS = {u["sub"]: u for u in yaml.safe_load((HUB_CONFIG / "dev-users.yaml").read_text())}


def open_lab(client: httpx.Client, username: str, timeout: float = 180) -> httpx.Response:
    """What a browser does after login: /hub/spawn, wait on spawn-pending, then the lab."""
    r = client.get("/hub/spawn")
    deadline = time.monotonic() + timeout
    while r.status_code == 302 and f"/user/{username}/" not in r.headers["location"]:
        if time.monotonic() > deadline:
            raise AssertionError(f"{username}'s server was not ready within {timeout} s")
        if "spawn-pending" in r.headers["location"] and "spawn-pending" in str(r.url):
            time.sleep(0.5)  # the pending page redirects once the server is ready
        r = client.get(urljoin(str(r.url), r.headers["location"]))
    if r.status_code == 200 and "spawn-pending" in str(r.url):
        while time.monotonic() < deadline:
            r = client.get(f"/hub/spawn-pending/{username}")
            if r.status_code == 302:
                break
            time.sleep(0.5)
    return client.get(f"/user/{username}/lab", follow_redirects=True)


@pytest.fixture(scope="module")
def landed(platform) -> dict[str, tuple[dict, httpx.Response]]:
    """Every tier's user logs in and opens JupyterLab, all at once as on a course morning.
    Their servers stay up for later tests (``platform.spawn`` returns a running server)."""

    def land(username: str) -> tuple[dict, httpx.Response]:
        client = platform.login(username)
        try:
            return platform.user_model(username), open_lab(client, username)
        finally:
            client.close()

    with ThreadPoolExecutor(len(DEV_USERS)) as pool:
        return dict(zip(sorted(DEV_USERS), pool.map(land, sorted(DEV_USERS)), strict=True))


@pytest.mark.parametrize("username", sorted(DEV_USERS))
def test_tier_user_logs_in_and_lands_in_jupyterlab(platform, landed, username):
    model, lab = landed[username]
    expected = set(DEV_USERS[username]["groups"]) | {"mmoda-registered"}
    assert set(model["groups"]) == expected
    assert model["admin"] == ("mmoda-admin" in expected)
    # the provider's e-mail claim is kept (encrypted) for the user's server
    assert model["auth_state"]["oauth_user"]["email"] == DEV_USERS[username]["email"]
    assert lab.status_code == 200
    assert str(lab.url) == f"{platform.hub_url}/user/{username}/lab"
    assert "JupyterLab" in lab.text
    tier = TierTable.load(platform.tiers).rights(username, groups=expected).tier
    assert tier.split("+")[0] == ("hpc" if username == "hpc" else "registered")


def test_group_removed_at_the_provider_lowers_the_tier_without_restart(platform):
    """A user loses mmoda-hpc at the provider: after the hub's refresh age their hub groups
    and their gateway limits are the registered tier's, with the same hub process."""
    sub = "demoted"
    claims = {"preferred_username": sub, "email": f"{sub}@example.org", "name": "De Moted"}
    platform.set_claims(sub, {**claims, "groups": ["mmoda-registered", "mmoda-hpc"]})
    hub_pid = platform.procs["jupyterhub"].pid
    platform.login(sub).close()
    token = platform.user_token(sub)
    table = TierTable.load(platform.tiers)
    hpc_cores = table.rights(sub, groups={"mmoda-registered", "mmoda-hpc"}).worker_cores
    reg_cores = table.rights(sub, groups={"mmoda-registered"}).worker_cores
    assert hpc_cores > reg_cores

    def groups_and_cores() -> tuple[set[str], int]:
        auth = {"Authorization": f"token {token}"}
        me = httpx.get(f"{platform.hub_url}/hub/api/user", headers=auth, timeout=30).json()
        r = httpx.get(f"{platform.hub_url}/services/dask-gateway/api/v1/options",
                      headers={"Authorization": f"jupyterhub {token}"}, timeout=30)
        spec = {f["field"]: f["spec"] for f in r.json()["cluster_options"]}
        return set(me["groups"]), spec["worker_cores"]["max"]

    assert groups_and_cores() == ({"mmoda-registered", "mmoda-hpc"}, hpc_cores)
    platform.set_claims(sub, {**claims, "groups": ["mmoda-registered"]})
    deadline = time.monotonic() + 6 * platform.auth_refresh_age + 30
    seen = None
    while time.monotonic() < deadline:
        seen = groups_and_cores()
        if seen == ({"mmoda-registered"}, reg_cores):
            break
        time.sleep(1)
    assert seen == ({"mmoda-registered"}, reg_cores)
    assert platform.procs["jupyterhub"].pid == hub_pid and platform.procs["jupyterhub"].poll() is None
