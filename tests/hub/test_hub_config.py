"""hub_config/jupyterhub_config.py and dask_gateway_config.py read as JupyterHub and the gateway
read them (no process started): loopback everywhere, secrets kept, scopes, groups."""

from __future__ import annotations

import runpy
import stat
from pathlib import Path

import pytest
from traitlets.config import Config

from mmoda_ext.platform.launcher import HUB_CONFIG, PORTS

PORT_VALUES = {var: str(20000 + i) for i, var in enumerate(PORTS.values())}


def load(path: Path) -> Config:
    c = Config()
    runpy.run_path(str(path), init_globals={"get_config": lambda: c, "c": c})
    return c


@pytest.fixture
def hub_env(monkeypatch, tmp_path):
    for var, value in PORT_VALUES.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("MMODA_HUB_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "")  # so that the config's own value is undone
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    monkeypatch.delenv("MMODA_AUTH_REFRESH_AGE", raising=False)
    monkeypatch.delenv("MMODA_GROUPS_CLAIM", raising=False)
    monkeypatch.setenv("MMODA_PLATFORM_TOKEN", "t" * 32)
    return tmp_path / "state"


def test_hub_listens_on_loopback_and_keeps_its_crypt_key(hub_env, monkeypatch):
    c = load(HUB_CONFIG / "jupyterhub_config.py")
    assert (c.JupyterHub.ip, c.JupyterHub.hub_ip) == ("127.0.0.1", "127.0.0.1")
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    for svc in c.JupyterHub.services:
        assert "url" not in svc or svc["url"].startswith("http://127.0.0.1:"), svc
    key_file = hub_env / "secrets" / "jupyterhub_crypt_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    monkeypatch.delenv("JUPYTERHUB_CRYPT_KEY")
    load(HUB_CONFIG / "jupyterhub_config.py")  # a restart: same key, auth_state stays readable
    assert key_file.read_text() == key
    import os

    assert os.environ["JUPYTERHUB_CRYPT_KEY"] == key


def test_scopes_groups_and_refresh(hub_env, monkeypatch):
    monkeypatch.setenv("MMODA_AUTH_REFRESH_AGE", "7")
    c = load(HUB_CONFIG / "jupyterhub_config.py")
    gen = c.GenericOAuthenticator
    assert gen.auth_refresh_age == 7 and gen.manage_groups and gen.enable_auth_state
    assert gen.admin_groups == {"mmoda-admin"}
    groups = gen.auth_state_groups_key
    assert groups({"oauth_user": {"groups": ["mmoda-hpc"]}}) == {"mmoda-hpc", "mmoda-registered"}
    assert groups({"oauth_user": {}}) == {"mmoda-registered"}  # every login is registered
    assert groups({"oauth_user": {"groups": "integral-private"}}) == {"integral-private",
                                                                      "mmoda-registered"}
    gateway_scope = "access:services!service=dask-gateway"
    assert gateway_scope in c.JupyterHub.extra_user_scopes
    assert {"users:activity!user", "access:servers!server", gateway_scope} <= set(
        c.Spawner.server_token_scopes)
    names = {s["name"] for s in c.JupyterHub.services}
    assert {"dask-gateway", "idle-culler", "mmoda-platform"} <= names
    # the gateway's open dashboard route goes to the guard (or the hub), never to the gateway
    target = c.Proxy.extra_routes["/services/dask-gateway/clusters/"]
    assert not target.endswith(f":{PORT_VALUES['MMODA_GATEWAY_PORT']}")


def test_provider_email_reaches_the_user_server(hub_env):
    c = load(HUB_CONFIG / "jupyterhub_config.py")

    class Spawner:
        environment = {"MMODA_HUB": "1"}

    s = Spawner()
    c.Spawner.auth_state_hook(s, {"oauth_user": {"email": "jane@example.org"}})
    assert s.environment == {"MMODA_HUB": "1", "MMODA_USER_EMAIL": "jane@example.org"}
    c.Spawner.auth_state_hook(s, None)  # no auth_state (e.g. a user created by an admin)
    assert s.environment["MMODA_USER_EMAIL"] == "jane@example.org"


def test_gateway_binds_loopback_and_runs_dask_commands(hub_env, monkeypatch):
    monkeypatch.setenv("MMODA_GATEWAY_PORT", "21000")
    c = load(HUB_CONFIG / "dask_gateway_config.py")
    assert c.Proxy.address == c.Proxy.tcp_address == "127.0.0.1:21000"
    assert c.DaskGateway.address.startswith("127.0.0.1:")
    assert c.ClusterConfig.scheduler_cmd[-1] == "scheduler"
    assert c.ClusterConfig.worker_cmd[1:] == ["worker", "--host", "127.0.0.1"]
    assert all(Path(cmd[0]).exists() for cmd in (c.ClusterConfig.scheduler_cmd,
                                                  c.ClusterConfig.worker_cmd))
    from dask_gateway_server.models import User

    spec = c.Backend.cluster_options(User("bob", groups={"mmoda-registered"})).get_specification()
    assert {f["field"] for f in spec} == {"worker_cores", "worker_memory"}


def test_launcher_refuses_a_missing_users_file_before_starting_anything(tmp_path):
    from mmoda_ext.platform import Platform, PlatformError

    p = Platform(state=tmp_path / "state", users=tmp_path / "nobody.yaml")
    with pytest.raises(PlatformError, match="nobody.yaml"):
        p.start()
    assert p.procs == {}
