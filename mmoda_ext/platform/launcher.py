"""Start and stop the whole platform on loopback: the identity provider, then JupyterHub.

The hub starts its proxy and its managed services itself (dask-gateway, mmoda-archive, mmoda,
mmoda-dashboards, idle-culler; hub_config/jupyterhub_config.py). :class:`Platform` picks free
ports, writes the state folder, starts ``oidc-provider-mock`` and ``jupyterhub`` as
subprocesses on 127.0.0.1, waits until they answer, and stops everything by PID, children
included, so that no process is left behind. ``mmoda platform`` (``make run``) and the hub
tests' ``platform`` fixture both use it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .client import PlatformClient

__all__ = ["HUB_CONFIG", "Platform", "PlatformError", "free_port", "wait_http"]

LOCAL = "127.0.0.1"
BIN = Path(sys.executable).parent


def _hub_config_dir() -> Path:
    """``hub_config/`` of the checkout (the configuration files the hub and gateway load)."""
    return Path(__file__).resolve().parents[2] / "hub_config"


HUB_CONFIG = _hub_config_dir()

#: the platform's ports, their environment variable and what listens there
PORTS = {
    "idp": "MMODA_IDP_PORT",
    "hub": "MMODA_HUB_PORT",
    "hub_api": "MMODA_HUB_API_PORT",
    "proxy_api": "MMODA_PROXY_API_PORT",
    "gateway": "MMODA_GATEWAY_PORT",
    "archive": "MMODA_ARCHIVE_PORT",
    "public": "MMODA_PUBLIC_PORT",
    "dashboards": "MMODA_DASHBOARDS_PORT",
}


class PlatformError(RuntimeError):
    """A platform process failed to start; the message names it and ends with its log."""


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None,
              ok: tuple[int, ...] = (200,)) -> httpx.Response:
    """Poll ``url`` until it answers one of ``ok``; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    last: Exception | str = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise PlatformError(f"process {proc.args[0]} exited with code {proc.returncode}")
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code in ok:
                return r
            last = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise PlatformError(f"{url} did not answer within {timeout:.0f} s ({last})")


@dataclass
class Platform(PlatformClient):
    """The platform of one run: ``start()``, use ``hub_url`` / ``idp_url``, ``stop()``.

    Parameters
    ----------
    state : folder of the run (database, secrets, homes, logs); a fresh temporary one if None
    tiers : tier table for this run (``MMODA_TIERS``); default the operators' table
    users : the identity provider's users (default ``hub_config/dev-users.yaml``)
    auth_refresh_age : seconds between re-reads of a user's groups at the provider
    env : more environment for the hub (e.g. ``MMODA_SMTP_HOST``)
    """

    state: Path | None = None
    tiers: Path | None = None
    users: Path | None = None
    auth_refresh_age: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 90.0

    ports: dict[str, int] = field(default_factory=dict, init=False)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict, init=False)
    platform_token: str = field(default="", init=False)
    #: seconds from start() until the hub's login page answered
    login_ready_after: float | None = field(default=None, init=False)

    # ---- addresses ----------------------------------------------------------------------
    @property
    def hub_url(self) -> str:
        return f"http://{LOCAL}:{self.ports['hub']}"

    @property
    def idp_url(self) -> str:
        return f"http://{LOCAL}:{self.ports['idp']}"

    @property
    def users_file(self) -> Path:
        return Path(self.users) if self.users else HUB_CONFIG / "dev-users.yaml"

    def log_path(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def pids(self) -> dict[str, int]:
        """PIDs of the processes this object started (not their children)."""
        return {name: p.pid for name, p in self.procs.items()}

    # ---- start --------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """The hub's environment: what ``hub_config/jupyterhub_config.py`` reads."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "MMODA_HUB"))}
        env.update({var: str(self.ports[key]) for key, var in PORTS.items()})
        env.update(
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            MMODA_HUB_STATE=str(self.state),
            OAUTH2_AUTHORIZE_URL=f"{self.idp_url}/oauth2/authorize",
            OAUTH2_TOKEN_URL=f"{self.idp_url}/oauth2/token",
            OAUTH2_USERDATA_URL=f"{self.idp_url}/userinfo",
            OAUTH_CLIENT_ID="mmoda-hub",
            OAUTH_CLIENT_SECRET=self._secret("oauth_client_secret"),
            MMODA_TOKEN_SECRET=os.environ.get("MMODA_TOKEN_SECRET") or self._secret("token_secret"),
            MMODA_PLATFORM_TOKEN=self.platform_token,
            MMODA_LOGIN_SERVICE="MMODA development provider",
        )
        if self.tiers:
            env["MMODA_TIERS"] = str(Path(self.tiers).resolve())
        if self.auth_refresh_age is not None:
            env["MMODA_AUTH_REFRESH_AGE"] = str(int(self.auth_refresh_age))
        env.update(self.env)
        return env

    def _secret(self, name: str) -> str:
        path = self.state / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip()

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_path(name), "ab")  # noqa: SIM115  (closed in stop())
        # own session: Ctrl-C in a terminal reaches only the launcher, which stops them in order
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.state, env=env, start_new_session=True)
        proc._mmoda_log = log  # type: ignore[attr-defined]
        self.procs[name] = proc
        return proc

    def start(self) -> Platform:
        """Start the provider and the hub (with its services); return once both answer."""
        if self.state is None:
            import tempfile

            self.state = Path(tempfile.mkdtemp(prefix="mmoda-hub-"))
        self.state = Path(self.state).resolve()
        (self.state / "logs").mkdir(parents=True, exist_ok=True)
        if not self.users_file.exists():
            raise PlatformError(f"users file {str(self.users_file)!r} does not exist")
        t0 = time.monotonic()
        self.ports = {key: free_port() for key in PORTS}
        self.platform_token = self._secret("platform_token")
        try:
            # the provider and the hub start side by side (the hub needs the provider only at
            # the first login); the hub's services start side by side too (hubapp.MMODAHub)
            idp = self._spawn("oidc-provider-mock", [
                str(BIN / "oidc-provider-mock"), "--host", LOCAL, "--port", str(self.ports["idp"]),
                "--user-claims-file", str(self.users_file)])
            hub = self._spawn("jupyterhub", [
                sys.executable, "-m", "mmoda_ext.platform.hubapp",
                "-f", str(HUB_CONFIG / "jupyterhub_config.py")], env=self.environment())
            wait_http(f"{self.idp_url}/.well-known/openid-configuration", self.start_timeout, idp)
            wait_http(f"{self.hub_url}/hub/login", self.start_timeout, hub)
            self.login_ready_after = time.monotonic() - t0
            wait_http(f"{self.hub_url}/services/dask-gateway/api/health", self.start_timeout, hub)
        except BaseException as exc:
            logs = "\n".join(f"--- {n} ---\n{self.tail(n)}" for n in self.procs)
            self.stop()
            if isinstance(exc, PlatformError):
                raise PlatformError(f"{exc}\n{logs}") from None
            raise
        (self.state / "platform.json").write_text(json.dumps(
            {"hub_url": self.hub_url, "idp_url": self.idp_url, "ports": self.ports,
             "pids": self.pids()}, indent=2))
        return self

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # ---- stop ---------------------------------------------------------------------------
    def descendants(self) -> list[Any]:
        """Every live process started by this platform, children and grandchildren included."""
        import psutil

        found = []
        for proc in self.procs.values():
            try:
                p = psutil.Process(proc.pid)
                found.append(p)
                found.extend(p.children(recursive=True))
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self, timeout: float = 45.0) -> None:
        """Stop the hub (it stops its servers, proxy and services), then the provider; then
        make sure that nothing started by the platform is still alive."""
        import psutil

        tree = self.descendants()
        for name in ("jupyterhub", "oidc-provider-mock"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for p in alive:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(alive, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        for proc in self.procs.values():
            log = getattr(proc, "_mmoda_log", None)
            if log is not None:
                log.close()
        self.procs.clear()

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
