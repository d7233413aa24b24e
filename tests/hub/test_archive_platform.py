"""The archive service of the real platform is the guard: a user calling it directly with their
own hub token (bypassing the extension) is held to their tier; the private tier gets private data.

The platform (provider, hub, gateway, archive, ...) is the session's ``platform`` fixture; the
users log in through the provider's form first, so their hub groups come from the provider.
"""

from __future__ import annotations

import httpx
import pytest

from mmoda_ext.archive.fitsutil import to_ijd
from mmoda_ext.archive.remote import RemoteArchive

pytestmark = pytest.mark.integration

#: Crab, rev 2716: public windows on 2024-02-27, private ones from 2024-02-28
PRIV = {"ra": 83.633, "dec": 22.015, "radius": 15.0,
        "t1": to_ijd("2024-02-27T21:00:00"), "t2": to_ijd("2024-02-28T03:00:00")}


@pytest.fixture(scope="module")
def archive_url(platform) -> str:
    return f"{platform.hub_url}/services/mmoda-archive/"


def _client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=120, trust_env=False)


def _token(platform, user: str) -> str:
    platform.login(user).close()  # groups from the provider's claims
    return platform.user_token(user)


def test_no_token_403(archive_url):
    with _client(archive_url, None) as c:
        r = c.post("api/select", json=PRIV)
    assert r.status_code == 403 and "hub token" in r.json()["error"]


def test_registered_user_refused_private_windows_and_over_500(platform, archive_url, tmp_path):
    token = _token(platform, "registered")
    with _client(archive_url, token) as c:
        assert c.get("api/info").json()["caller"]["tier"] == "registered"
        r = c.post("api/select", json={**PRIV, "include_private": True})
        assert r.status_code == 403 and "private" in r.json()["error"]
        r = c.post("api/select", json={**PRIV, "max_pointings": 501})
        assert r.status_code == 403
        assert r.json()["limit"] == 500 and "501" in r.json()["error"]
        windows = c.post("api/select", json=PRIV).json()["windows"]
    assert windows and not any(w["private"] for w in windows)
    # the same through RemoteArchive, as the extension and its Dask workers use it
    remote = RemoteArchive(archive_url, token, tmp_path)
    with pytest.raises(Exception) as err:
        remote.index.select(PRIV["ra"], PRIV["dec"], PRIV["radius"], PRIV["t1"], PRIV["t2"],
                            include_private=True)
    assert getattr(err.value, "status", None) == 403


def test_private_tier_user_gets_private_windows(platform, archive_url, tmp_path):
    token = _token(platform, "private")
    remote = RemoteArchive(archive_url, token, tmp_path)
    assert remote.info()["caller"]["private_data"] is True
    ws = remote.index.select(PRIV["ra"], PRIV["dec"], PRIV["radius"], PRIV["t1"], PRIV["t2"],
                             include_private=True)
    private = [w for w in ws if w.private]
    assert private and any(not w.private for w in ws)
    path = remote.ensure_window("isgri", private[0])
    assert path.stat().st_size > 100_000
    # the registered user cannot download the window the private user could
    with _client(archive_url, _token(platform, "registered")) as c:
        r = c.get(f"api/data/isgri/{private[0].scw_id}.fits")
    assert r.status_code == 403 and "private" in r.json()["error"]


def test_a_group_removed_at_the_provider_closes_private_data(platform, archive_url):
    """The guard follows the hub: once the provider drops integral-private (and the hub has
    refreshed the user's groups), the same token no longer selects private windows."""
    import time

    sub = "demoted-archive"
    claims = {"preferred_username": sub, "email": f"{sub}@example.org", "name": "De Moted"}
    platform.set_claims(sub, {**claims, "groups": ["mmoda-registered", "integral-private"]})
    token = _token(platform, sub)
    with _client(archive_url, token) as c:
        assert c.post("api/select", json={**PRIV, "include_private": True}).status_code == 200
        platform.set_claims(sub, {**claims, "groups": ["mmoda-registered"]})
        deadline = time.monotonic() + 6 * platform.auth_refresh_age + 60
        while time.monotonic() < deadline:
            r = c.post("api/select", json={**PRIV, "include_private": True})
            if r.status_code == 403:
                break
            time.sleep(1)
    assert r.status_code == 403 and "private" in r.json()["error"]


def test_a_restart_of_the_archive_service_keeps_the_grants(platform, archive_url):
    """A job's workers fetch windows selected earlier: a restart of the service in between (the
    hub restarts a managed service that died) must not refuse them (grants kept on disk)."""
    import signal
    import time

    token = _token(platform, "registered")
    with _client(archive_url, token) as c:
        scw = c.post("api/select", json={**PRIV, "max_pointings": 1}).json()["windows"][0]["scw_id"]
    old = [p for p in platform.descendants() if "mmoda_ext.services.archive" in " ".join(p.cmdline())]
    assert len(old) == 1
    old[0].send_signal(signal.SIGKILL)  # died: no chance to save anything at exit
    deadline = time.monotonic() + 120
    while True:
        new = [p for p in platform.descendants() if p.pid != old[0].pid
               and "mmoda_ext.services.archive" in " ".join(p.cmdline())]
        try:
            with _client(archive_url, token) as c:
                if new and c.get("api/info").status_code == 200:
                    break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the hub did not restart the archive service"
        time.sleep(0.5)
    assert new[0].pid != old[0].pid
    with _client(archive_url, token) as c:
        r = c.get(f"api/data/isgri/{scw}.fits")
    assert r.status_code == 200, r.text[:300]
    assert r.content[:6] == b"SIMPLE"
