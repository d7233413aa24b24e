"""Every tutorial runs without error (nbclient) in a fresh environment built only from binder/'s
files, against that environment's JupyterLab server extension (embedded mode); each says what is
simulated and what is real, and none is stored with outputs."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
TIMES: dict[str, float] = {}


def execute(nb, kernel: str, path: Path, timeout: int = 240):
    NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(path)}}).execute()
    return nb


def test_the_tutorials_are_all_there():
    names = " ".join(p.stem for p in NOTEBOOKS)
    for topic in ("quickstart", "python-client", "oda-api", "crab", "v404", "jemx", "spi-acs", "antares",
                  "polar", "dask-dashboard", "select-sources"):
        assert topic in names, topic


def test_tutorials_run_in_the_binder_environment(binder_python, lab, kernel_env, tmp_path):
    """The kernel, the server and the packages are binder's own (a non-editable install of this
    repository in that venv), not the development environment's."""
    venv = binder_python.parent.parent
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, mmoda_widgets, mmoda_ext, ipyaladin\n"
        "print(sys.prefix); print(mmoda_widgets.__file__); print(mmoda_ext.__file__)")])
    lines = execute(nb, kernel_env, tmp_path).cells[0].outputs[0]["text"].split()
    assert lines[0] == str(venv) and all(line.startswith(str(venv)) for line in lines[1:]), lines
    assert (venv / "share" / "mmoda" / "aladin-lite" / "aladin.js").is_file()  # from postBuild


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert "What is simulated and what is real" in nb.cells[0].source
    start = time.monotonic()
    execute(nb, kernel_env, tmp_path)
    TIMES[path.stem] = time.monotonic() - start
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.outputs, f"{path.name}: the last cell shows nothing"
