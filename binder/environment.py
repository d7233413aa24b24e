"""Build a fresh virtual environment from binder/'s files only, as repo2docker would: the Python
of ``runtime.txt``, ``requirements.txt`` (this repository with its hub extras, oda-api), then
``postBuild`` (aladin-lite from npm, JupyterLab settings). The tutorials then run in it
(``tests/notebooks`` does, and ``binder/check.py`` by hand):

    python3.12 binder/environment.py /tmp/bvenv && /tmp/bvenv/bin/python binder/check.py

Packages are installed by ``uv pip`` when uv is there (parallel downloads and a shared cache:
seconds once cached, instead of pip's minutes here), else by pip; either way nothing but
``requirements.txt`` decides what is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BINDER = Path(__file__).resolve().parent
REPO = BINDER.parent


def runtime_python() -> str:
    """An interpreter of runtime.txt's version (``python-3.12``): this one, or its base."""
    want = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    for exe in (sys.executable, getattr(sys, "_base_executable", ""), shutil.which(f"python{want}") or ""):
        if exe and subprocess.run([exe, "-c", f"import sys; assert '%d.%d' % sys.version_info[:2] == {want!r}"],
                                  capture_output=True).returncode == 0:
            return exe
    raise RuntimeError(f"binder/runtime.txt asks for Python {want}: no python{want} found")


def _uv() -> str | None:
    exe = Path(sys.executable).with_name("uv")
    return str(exe) if exe.is_file() else shutil.which("uv")


def checkout_copy(dest: Path) -> Path:
    """The repository's files as a clone would have them (tracked and not ignored; no build/,
    .venv or egg-info left by earlier builds), so the install builds from a clean tree."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, out.split("\0")):
        src = REPO / name
        if src.is_symlink() or src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name, follow_symlinks=False)
    return dest


def build(venv: Path, log=print) -> Path:
    """Create ``venv`` from binder/'s files (of a clean copy of this checkout beside it); its
    python. Raises with the failing step's output."""
    venv = Path(venv)
    python = venv / "bin" / "python"
    uv = _uv()
    repo = checkout_copy(venv.parent / "repo")
    binder = repo / "binder"

    def run(what: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        t = time.monotonic()
        r = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode:
            raise RuntimeError(f"binder {what} failed ({' '.join(cmd)}):\n{(r.stdout + r.stderr)[-4000:]}")
        log(f"binder {what}: {time.monotonic() - t:.0f} s")

    base = runtime_python()
    if uv:
        run("venv", [uv, "venv", "--quiet", "--seed", "--python", base, str(venv)])
        run("requirements.txt", [uv, "pip", "install", "--quiet", "--python", str(python),
                                 "-r", str(binder / "requirements.txt")])
    else:
        run("venv", [base, "-m", "venv", str(venv)])
        run("requirements.txt", [str(python), "-m", "pip", "install", "-q", "-r", str(binder / "requirements.txt")])
    env = dict(os.environ, PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv))
    run("postBuild", ["bash", str(binder / "postBuild")], env=env)
    return python


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3.12 binder/environment.py VENV_DIR")
    print(build(Path(sys.argv[1])))
