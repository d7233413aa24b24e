"""Helpers: a real ``mmoda serve`` subprocess on 127.0.0.1, driven over HTTP by tests.

The server runs with MMODA's test token key ``secretkey_test`` and ``DISPATCHER_DEBUG_MODE=yes``
(the ``empty*`` conformance instruments), as the dispatcher tests do,
products in-process (``--compute serial``), a private job root, and its own working
directory holding the ``empty*`` instruments' state file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from extension_helpers import LocalProcess

from mmoda_ext.access.tokens import issue_token
from mmoda_ext.instruments.empty import STATE_FILE

SECRET = "secretkey_test"
REPO = Path(__file__).resolve().parents[2]


class ServeProcess(LocalProcess):
    """``mmoda serve`` as a subprocess; ``url`` once it answers; stopped by PID."""

    def __init__(self, workdir: Path, archive: Path, *extra: str, port: int = 0) -> None:
        self.port = port
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = self.workdir / "jobs"
        self.archive = archive
        self.extra = list(extra)
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.run_log = self.workdir / "runs.log"

    def start(self, timeout: float = 60.0) -> ServeProcess:
        out = self.workdir / "serve.out"
        out.write_text("")
        env = dict(os.environ, MMODA_TOKEN_SECRET=SECRET, MMODA_EMPTY_STATE_DIR=str(self.workdir),
                   DISPATCHER_DEBUG_MODE="yes",
                   MMODA_EMPTY_RUN_LOG=str(self.run_log), MMODA_ARCHIVE=str(self.archive),
                   PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "mmoda_ext.cli", "serve", "--port", str(self.port), "--root", str(self.root),
               "--compute", "serial", "--", "--JobManager.retry_delay=0.05", "--JobManager.max_retries=1",
               "--MMODAServe.sync_wait=1.0", *self.extra]
        with open(out, "a") as fh, open(self.workdir / "serve.err", "a") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=fh, stderr=err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mmoda serve exited:\n" + (self.workdir / "serve.err").read_text()[-3000:])
            for line in out.read_text().splitlines():
                if "listening on " in line:
                    self.url = line.split("listening on ", 1)[1].strip().rstrip("/")
            if self.url:
                try:
                    if httpx.get(self.url + "/api/v1/whoami", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("mmoda serve did not answer in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash)."""
        self.stop(signal.SIGKILL)

    def set_state(self, state: str | None) -> None:
        path = self.workdir / STATE_FILE
        if state is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(state)

    def runs(self) -> list[str]:
        return self.run_log.read_text().split() if self.run_log.exists() else []


def make_token(sub: str = "mtm@mtmco.net", roles: str = "general", lifetime: float = 86400.0, **kw) -> str:
    return issue_token(SECRET, sub, roles=roles, lifetime=lifetime, name="mmeharga", **kw)
