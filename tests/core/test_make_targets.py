"""After `make demo` a new user can find the `mmoda` command: the demo says how, `make shell` does it."""

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: never rebuild the shared venv from a test: the stamp is taken as up to date
MAKE = ["make", "-s", "-C", str(REPO), "-o", ".venv/.installed"]


def _env(cli_env: dict) -> dict:
    path = ":".join(p for p in os.environ["PATH"].split(":") if not p.startswith(str(REPO / ".venv")))
    return {**cli_env, "PATH": path}  # a fresh terminal: the venv is not active


def test_make_shell_puts_mmoda_on_path(cli_env):
    env = _env(cli_env)
    assert shutil.which("mmoda", path=env["PATH"]) is None or ".venv" not in shutil.which("mmoda", path=env["PATH"])
    proc = subprocess.run([*MAKE, "shell"], input="command -v mmoda\nmmoda instruments | head -1\nexit\n",
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert str(REPO / ".venv" / "bin" / "mmoda") in proc.stdout + proc.stderr
    assert "antares:" in proc.stdout + proc.stderr


def test_make_demo_ends_by_saying_how_to_use_mmoda(cli_env, tmp_path):
    out = tmp_path / "demo"
    args = "--src-name Crab --T1 2016-02-01 --T2 2016-03-01 --max-pointings 2 --workers 1 --no-progress"
    proc = subprocess.run([*MAKE, "demo", f"DEMO_ARGS={args}", f"OUT={out}"], capture_output=True, text=True,
                          env=_env(cli_env), timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert (out / "isgri_image_mosaic.fits").exists()
    last = proc.stdout.strip().splitlines()[-2:]
    assert "source .venv/bin/activate" in last[0] and "make shell" in last[1]
