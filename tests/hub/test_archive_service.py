"""The archive service behind a real JupyterHub: tokens, tiers, rate limit, and RemoteArchive.

A small hub of this module's own (DummyAuthenticator, groups loaded from the config, the
archive as a managed service exactly as ``hub_config`` declares it) runs with a test tier table
whose registered tier allows 3 selections per hour, so the rate limit is reached without
touching the platform's users. Users: ``reg`` (mmoda-registered), ``priv`` (+ integral-private),
``rate`` (mmoda-registered, for the rate limit), ``big`` (+ mmoda-hpc: many requests per hour).
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from astropy.io import fits

from mmoda_ext import engine
from mmoda_ext.access.tiers import TierTable, default_tiers_path
from mmoda_ext.archive import Archive, ScwIndex
from mmoda_ext.archive.fitsutil import to_ijd
from mmoda_ext.archive.remote import RemoteArchive
from mmoda_ext.errors import PublicError
from mmoda_ext.jobs.compute import DaskContext, SerialContext

pytestmark = pytest.mark.integration

RATE_LIMIT = 3
#: Crab, rev 2716: public windows on 2024-02-27, private ones from 2024-02-28
PRIV = {"ra": 83.633, "dec": 22.015, "radius": 15.0,
        "t1": to_ijd("2024-02-27T21:00:00"), "t2": to_ijd("2024-02-28T03:00:00")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HUB_CONFIG = """
import sys
c = get_config()
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {pub}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hubp}
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.ConfigurableHTTPProxy.command = ["{bin}/configurable-http-proxy"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{papi}"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.load_groups = {{
    "mmoda-registered": {{"users": ["reg", "priv", "rate", "big"]}},
    "mmoda-hpc": {{"users": ["big"]}},
    "integral-private": {{"users": ["priv"]}},
}}
c.JupyterHub.services = [
    {{"name": "mmoda-archive", "url": "http://127.0.0.1:{arch}",
      "command": [sys.executable, "-m", "mmoda_ext.services.archive"],
      "environment": {{"MMODA_ARCHIVE": "{state}/archive", "MMODA_TIERS": "{tiers}",
                       "PATH": "{bin}"}}, "display": False}},
    {{"name": "driver", "api_token": "{driver}"}},
    {{"name": "mmoda", "api_token": "{public}"}},
    {{"name": "other", "api_token": "{other}"}},
]
c.JupyterHub.load_roles = [{{"name": "driver", "services": ["driver"],
                             "scopes": ["admin:users", "tokens", "list:users", "read:users"]}},
                           {{"name": "archive-readers", "services": ["mmoda", "other"],
                             "scopes": ["access:services!service=mmoda-archive"]}}]
c.JupyterHub.extra_user_scopes = {{"access:services!service=mmoda-archive"}}
"""


class MiniHub:
    """A JupyterHub with the archive service, started and stopped by PID."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.driver = secrets.token_hex(16)
        self.service_tokens = {"mmoda": secrets.token_hex(16), "other": secrets.token_hex(16)}
        self.pub, self.hubp, self.papi, self.arch = (free_port() for _ in range(4))
        table = yaml.safe_load(default_tiers_path().read_text())
        for tier in ("anonymous", "registered"):  # a caller gets the best of their tiers
            table["tiers"][tier]["requests_per_hour"] = RATE_LIMIT
        tiers = state / "tiers.json"
        state.mkdir(parents=True, exist_ok=True)
        tiers.write_text(json.dumps(table))
        self.tiers = TierTable.load(tiers)
        (state / "jupyterhub_config.py").write_text(HUB_CONFIG.format(
            pub=self.pub, hubp=self.hubp, papi=self.papi, arch=self.arch, state=state,
            bin=Path(sys.executable).parent, tiers=tiers, driver=self.driver,
            public=self.service_tokens["mmoda"], other=self.service_tokens["other"]))
        self.log = open(state / "hub.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(state / "jupyterhub_config.py")],
            cwd=state, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.pub}/services/mmoda-archive/"
        self.direct = f"http://127.0.0.1:{self.arch}/services/mmoda-archive/"
        self._tokens: dict[str, str] = {}

    def wait(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, (self.state / "hub.log").read_text()[-3000:]
            try:
                # the archive answers (403 without a token) through the hub's proxy
                if httpx.get(self.url + "api/info", timeout=2).status_code == 403:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError((self.state / "hub.log").read_text()[-3000:])

    def token(self, user: str) -> str:
        """A hub API token of ``user`` (default scopes: the user's own, incl. the archive's)."""
        if user not in self._tokens:
            r = httpx.post(f"http://127.0.0.1:{self.pub}/hub/api/users/{user}/tokens",
                           headers={"Authorization": f"token {self.driver}"},
                           json={"note": "archive test", "expires_in": 3600})
            assert r.status_code == 201, r.text
            self._tokens[user] = r.json()["token"]
        return self._tokens[user]

    def client(self, user: str | None) -> httpx.Client:
        headers = {"Authorization": f"token {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, trust_env=False)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    h = MiniHub(tmp_path_factory.mktemp("archive-hub"))
    try:
        h.wait()
        yield h
    finally:
        h.stop()


def test_no_token_is_refused(hub):
    with hub.client(None) as c:
        r = c.get("api/info")
    assert r.status_code == 403
    assert "hub token" in r.json()["error"]
    with httpx.Client(base_url=hub.url, headers={"Authorization": "token not-a-token"}) as c:
        assert c.post("api/select", json=PRIV).status_code == 403


def test_hub_services_get_the_rights_configured_for_them(hub):
    """The public dispatcher (service ``mmoda``) reads with the rights of its configured tiers
    and holds its own callers to theirs; any other service is refused."""
    headers = {"Authorization": f"token {hub.service_tokens['mmoda']}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=60) as c:
        caller = c.get("api/info").json()["caller"]
    assert caller["user"] == "service:mmoda" and caller["max_scw"] >= 5000
    assert caller["private_data"] is True
    headers = {"Authorization": f"token {hub.service_tokens['other']}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=60) as c:
        r = c.get("api/info")
    assert r.status_code == 403 and "'other' may not read the archive" in r.json()["error"]


def test_registered_user_is_held_to_public_data_and_500_windows(hub):
    with hub.client("reg") as c:
        info = c.get("api/info").json()
        assert info["caller"]["tier"] == "registered" and info["caller"]["max_scw"] == 500
        r = c.post("api/select", json={**PRIV, "include_private": True})
        assert r.status_code == 403
        err = r.json()
        assert "private" in err["error"] and "'registered'" in err["error"]
        assert "integral-private" in err["error"]  # says which tier grants it
        r = c.post("api/select", json={**PRIV, "max_pointings": 501})
        assert r.status_code == 403
        err = r.json()
        assert "501" in err["error"] and "500" in err["error"]
        assert err["limit"] == 500 and err["how_to_get_more"]
        r = c.post("api/windows", json={"scw_list": ["066500220010.001"] * 501})
        assert r.status_code == 403 and r.json()["limit"] == 500
        public = c.post("api/select", json=PRIV).json()["windows"]
        assert public and not any(w["private"] for w in public)
        # a private window's data: refused, even asked for by id
        rows = c.post("api/cone", json={**PRIV, "include_private": True}).json()["rows"]
        assert len(rows) > len(public)
    private_id = next(w.scw_id for w in _local_index().select(
        PRIV["ra"], PRIV["dec"], PRIV["radius"], PRIV["t1"], PRIV["t2"], include_private=True)
        if w.private)
    with hub.client("reg") as c:
        got = c.post("api/windows", json={"scw_list": [private_id]}).json()["windows"]
        assert got[0]["private"] is True  # the index row is public, the data are not
        r = c.get(f"api/data/isgri/{private_id}.fits")
        assert r.status_code == 403 and "private" in r.json()["error"]
        # data only for selected windows
        r = c.get("api/data/isgri/066500220010.001.fits")
        assert r.status_code == 403 and "selected" in r.json()["error"]


def test_private_user_gets_private_windows(hub, tmp_path):
    with hub.client("priv") as c:
        info = c.get("api/info").json()["caller"]
        assert info["private_data"] is True
        ws = c.post("api/select", json={**PRIV, "include_private": True}).json()["windows"]
    assert any(w["private"] for w in ws) and any(not w["private"] for w in ws)
    remote = RemoteArchive(hub.url, hub.token("priv"), tmp_path / "cache")
    private = [w for w in remote.index.select(PRIV["ra"], PRIV["dec"], PRIV["radius"], PRIV["t1"],
                                              PRIV["t2"], include_private=True) if w.private]
    path = remote.ensure_window("isgri", private[0])
    with fits.open(path) as hdul:
        assert hdul[0].header["SWID"] == private[0].scw_id
        assert hdul["ISGR-DETE-SHD"].data.shape[0] > 10


def test_rate_limit_per_hour(hub):
    with hub.client("rate") as c:
        for hour in range(RATE_LIMIT):
            r = c.post("api/select", json={**PRIV, "t2": PRIV["t2"] + hour / 24})
            assert r.status_code == 200, r.text
        assert c.post("api/select", json=PRIV).status_code == 200  # a repeat is free
        r = c.post("api/select", json={**PRIV, "t2": PRIV["t2"] + 1})
    assert r.status_code == 429
    err = r.json()
    assert err["parameter"] == "requests_per_hour" and err["limit"] == RATE_LIMIT
    assert f"allows {RATE_LIMIT} per hour" in err["error"] and "'registered'" in err["error"]
    assert "try again in" in err["error"] and err["how_to_get_more"] in err["error"]
    with hub.client("reg") as c:  # per user: another user is not affected
        assert c.post("api/select", json={**PRIV, "t2": PRIV["t2"] + 1}).status_code == 200


def test_remote_archive_errors_are_public_errors(hub, tmp_path):
    remote = RemoteArchive(hub.url, hub.token("reg"), tmp_path)
    with pytest.raises(PublicError) as err:
        remote.index.select(PRIV["ra"], PRIV["dec"], PRIV["radius"], PRIV["t1"], PRIV["t2"],
                            max_pointings=600)
    assert err.value.status == 403 and err.value.parameter == "max_pointings"
    assert "token" not in repr(remote).lower() and hub.token("reg") not in repr(remote)


def _local_index() -> ScwIndex:
    return ScwIndex.default()


def _image(archive, rights, out: Path, client=None):
    raw = dict(src_name="Crab", T1="2016-02-01", T2="2016-03-01", max_pointings=4, E1_keV=20,
               E2_keV=40)
    ctx = (DaskContext(archive, out, rights=rights, client=client) if client is not None
           else SerialContext(archive, out, rights=rights))
    return engine.execute("isgri", "isgri_image", raw, ctx)


def test_isgri_image_through_remote_archive_equals_local(hub, tmp_path):
    """On a Dask worker process (the RemoteArchive travels by pickle: url + token) and serially
    on the local archive: the same products, from byte-identical window files."""
    from distributed import Client, LocalCluster

    rights = hub.tiers.rights("big", groups=["mmoda-registered", "mmoda-hpc"])
    remote = RemoteArchive(hub.url, hub.token("big"), tmp_path / "cache")
    t0 = time.perf_counter()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        got = _image(remote, rights, tmp_path / "remote", client)
    t_remote = time.perf_counter() - t0
    cached = sorted(p.name for p in (tmp_path / "cache" / "isgri").rglob("*.fits"))
    assert len(cached) == 4  # downloaded once into the per-window cache
    local = Archive(root=tmp_path / "local")
    want = _image(local, rights, tmp_path / "local-out")
    assert sorted(p.name for p in (tmp_path / "local" / "isgri").rglob("*.fits")) == cached
    for kind in ("isgri_mosaic", "isgri_catalog"):
        with fits.open(got.find(kind)[0].fits) as a, fits.open(want.find(kind)[0].fits) as b:
            assert len(a) == len(b)
            for ha, hb in zip(a, b, strict=True):
                if ha.data is None:
                    continue
                if isinstance(ha, fits.BinTableHDU):
                    assert ha.data.tobytes() == hb.data.tobytes()
                else:
                    assert np.array_equal(ha.data, hb.data, equal_nan=True)
    # the per-window files are byte-identical to those the local archive generates
    for name in cached:
        rel = Path(name[:4]) / name
        assert (tmp_path / "cache" / "isgri" / rel).read_bytes() == \
            (tmp_path / "local" / "isgri" / rel).read_bytes()
    print(f"remote image on a Dask worker: {t_remote:.1f} s")


def test_remote_archive_pickles_url_and_token(hub, tmp_path):
    import pickle

    remote = RemoteArchive(hub.url, hub.token("reg"), tmp_path)
    clone = pickle.loads(pickle.dumps(remote))
    assert (clone.url, clone._token, clone.root) == (remote.url, remote._token, remote.root)
    assert clone.resolve_name("Crab").ra.deg == pytest.approx(83.633, abs=0.01)
    assert clone.sky.digest == Archive(root=tmp_path / "x").sky.digest


def test_jemx_window_through_remote_archive_equals_local(hub, tmp_path):
    from mmoda_ext.archive import jemx_data

    remote = RemoteArchive(hub.url, hub.token("big"), tmp_path / "cache")
    scw = remote.index.select(83.633, 22.015, 5.0, to_ijd("2016-02-01T00:00:00"),
                              to_ijd("2016-03-01T00:00:00"), max_pointings=1)[0]
    got = jemx_data.load_window(remote, scw, 2)
    assert (tmp_path / "cache" / "jemx2" / scw.scw_id[:4] / f"{scw.scw_id}.fits").is_file()
    want = jemx_data.load_window(Archive(root=tmp_path / "local"), scw, 2)
    assert got.time.size > 1000
    for field in ("time", "dety", "detx", "pha", "efficiency", "background"):
        assert np.array_equal(getattr(got, field), getattr(want, field)), field
    assert (got.ontime, got.deadc) == (want.ontime, want.deadc)
