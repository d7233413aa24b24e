"""Helpers for the jupyter-server extension tests: a real ``jupyter server`` subprocess on
127.0.0.1, and code run in a kernel of a running server (the kernel inherits the server's
environment, so it sees exactly what the extension exported).

Used by tests/server/test_extension_*.py (no hub) and tests/hub/test_extension_*.py (a user's
server spawned by the hub).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
JUPYTER = str(Path(sys.executable).with_name("jupyter"))

#: a small ISGRI image: Crab, 20-40 keV, a few science windows
ISGRI_IMAGE = dict(instrument="isgri", product="isgri_image", src_name="Crab", RA=83.633, DEC=22.015,
                   T1="2016-02-01T00:00:00", T2="2016-03-01T00:00:00", E1_keV=20.0, E2_keV=40.0,
                   max_pointings=4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_command(app: str, port: int, root_dir: Path, *args: str, python: str = sys.executable) -> list[str]:
    """``jupyter server`` or ``jupyter lab`` on 127.0.0.1:``port`` only (no retry on another port)."""
    cmd = [python, "-m", "jupyter", app, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root_dir}", *args]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


class LocalProcess:
    """A server subprocess on 127.0.0.1 (output in a log file), ready once a URL answers 200;
    stopped by PID. Shared by ``JupyterServer`` here and ``LabServer`` (tests/browser)."""

    proc: subprocess.Popen | None = None

    def spawn(self, cmd: list[str], *, env: dict[str, str], cwd: Path, log: Path, ready_url: str,
              headers: dict[str, str], timeout: float) -> None:
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
        name = " ".join(Path(c).name for c in cmd[:4])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited:\n" + log.read_text()[-4000:])
            try:
                if httpx.get(ready_url, headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{name} did not answer in time:\n" + log.read_text()[-4000:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the process (SIGTERM: a clean stop), wait for it, SIGKILL it if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


class JupyterServer(LocalProcess):
    """``jupyter server`` with the extensions enabled in the venv; stopped by PID."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, *args: str) -> None:
        self.workdir = Path(workdir)
        self.home = self.workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, HOME=str(self.home), PYTHONUNBUFFERED="1", **(env or {}))
        for key in ("ODA_TOKEN", "DISPATCHER_URL", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER"):
            self.env.pop(key, None)
        self.args = list(args)
        self.log = self.workdir / "server.log"

    def start(self, timeout: float = 90.0) -> JupyterServer:
        cmd = jupyter_command("server", self.port, self.home, f"--IdentityProvider.token={self.token}", *self.args)
        self.spawn(cmd, env=self.env, cwd=self.home, log=self.log, ready_url=self.url + "/api/status",
                   headers=self.auth, timeout=timeout)
        return self

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


def run_in_kernel(base_url: str, headers: dict[str, str], code: str, timeout: float = 300.0) -> str:
    """Run ``code`` in a new kernel of the server at ``base_url``; its stdout (raises on error).

    Talks the Jupyter kernel websocket protocol, as JupyterLab does; the kernel is deleted after.
    """
    kernel = httpx.post(f"{base_url}/api/kernels", headers=headers, json={"name": "python3"}, timeout=60)
    kernel.raise_for_status()
    kid = kernel.json()["id"]
    try:
        return asyncio.run(_execute(base_url, headers, kid, code, timeout))
    finally:
        httpx.delete(f"{base_url}/api/kernels/{kid}", headers=headers, timeout=30)


async def _execute(base_url: str, headers: dict[str, str], kid: str, code: str, timeout: float) -> str:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    ws_url = base_url.replace("http://", "ws://", 1) + f"/api/kernels/{kid}/channels"
    ws = await websocket_connect(HTTPRequest(ws_url, headers=headers), max_message_size=64 * 2**20)
    msg_id = uuid.uuid4().hex
    ws.write_message(json.dumps({
        "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }))
    out: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"kernel code did not finish in {timeout:g} s; output so far:\n{''.join(out)}")
            raw = await asyncio.wait_for(ws.read_message(), left)
            if raw is None:
                raise RuntimeError("kernel websocket closed; output so far:\n" + "".join(out))
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                tb = "\n".join(msg["content"].get("traceback", []))
                raise RuntimeError(f"kernel error {msg['content']['ename']}: {msg['content']['evalue']}\n"
                                   f"{tb}\noutput:\n{''.join(out)}")
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        ws.close()


#: an unchanged oda_api script, as a user would paste it in a notebook (only the URL line is
#: MMODA Hub's: the dispatcher door of the user's own server)
ODA_API_SCRIPT = '''
import os
from oda_api.api import DispatcherAPI
from oda_api.token import discover_token

disp = DispatcherAPI(url=os.environ["DISPATCHER_URL"])
data = disp.get_product(instrument="isgri", product="isgri_image", src_name="Crab",
                        RA=83.633, DEC=22.015, T1="2016-02-01T00:00:00", T2="2016-03-01T00:00:00",
                        E1_keV=20.0, E2_keV=40.0, max_pointings={max_pointings}, token=discover_token())
mosaic = data.mosaic_image_0_mosaic
print("STATUS", disp.query_status)
print("UNITS", [du.name for du in mosaic.data_unit])
image = next(du for du in mosaic.data_unit if du.data is not None and du.data.ndim == 2)
print("SHAPE", image.data.shape)
print("JOB", disp.job_id)
'''
