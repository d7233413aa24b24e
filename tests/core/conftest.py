"""The real ``mmoda`` command in a subprocess, with an empty home and its own archive."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MMODA = str(Path(sys.executable).with_name("mmoda"))


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """Environment of a new user: empty HOME, archive under it, no token secret."""
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MMODA_", "PYTEST"))}
    env.update(HOME=str(home), MMODA_ARCHIVE=str(home / ".cache" / "mmoda" / "archive"),
               COLUMNS="100", PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="session")
def mmoda(cli_env):
    """``mmoda(*args)`` -> CompletedProcess (text, stdout and stderr captured)."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([MMODA, *args], capture_output=True, text=True, timeout=timeout,
                              env={**cli_env, **(env or {})}, stdin=subprocess.DEVNULL, cwd=cwd)

    return run


@pytest.fixture(scope="session")
def isgri_run(mmoda, tmp_path_factory):
    """One small real ISGRI image through the command line (3 of 144 windows)."""
    out = tmp_path_factory.mktemp("crab")
    proc = mmoda("run", "isgri", "image", "--src-name", "Crab", "--T1", "2016-02-01", "--T2", "2016-03-01",
                 "--max-pointings", "3", "--workers", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, out
