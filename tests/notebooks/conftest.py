"""Fixtures: the tutorials run in a fresh virtual environment built only from binder/'s files
(``binder/environment.py``: runtime.txt's Python, requirements.txt, postBuild), with that
environment's own JupyterLab and mmoda_ext extension (embedded mode) and its own kernel, as on
Binder. Built once per test session."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from lab_helpers import LabServer, shared_archive  # noqa: E402

_spec = importlib.util.spec_from_file_location("mmoda_binder_environment", REPO / "binder" / "environment.py")
binder_environment = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(binder_environment)

#: the kernel (name) that runs the tutorials: binder's python
KERNEL = "mmoda-binder"


@pytest.fixture(scope="session")
def binder_python(tmp_path_factory) -> Path:
    t = time.monotonic()
    python = binder_environment.build(tmp_path_factory.mktemp("binder") / "venv")
    print(f"\nbinder environment built in {time.monotonic() - t:.0f} s", flush=True)
    return python


@pytest.fixture(scope="session")
def binder_kernels(binder_python, tmp_path_factory) -> Path:
    """A JUPYTER_PATH entry whose kernel ``mmoda-binder`` is binder's python."""
    root = tmp_path_factory.mktemp("binder-kernels")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(binder_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (binder)", "language": "python"}))
    return root


@pytest.fixture(scope="session")
def lab(binder_python, tmp_path_factory):
    srv = LabServer(tmp_path_factory.mktemp("nblab"), shared_archive(tmp_path_factory),
                    python=str(binder_python)).start()
    yield srv
    srv.stop()


@pytest.fixture
def kernel_env(lab, binder_kernels, monkeypatch) -> str:
    """The lab's variables for the kernel, and binder's python as kernel ``mmoda-binder``; its name."""
    for k, v in lab.kernel_env().items():
        monkeypatch.setitem(os.environ, k, v)
    monkeypatch.setitem(os.environ, "JUPYTER_PATH", str(binder_kernels))
    return KERNEL
