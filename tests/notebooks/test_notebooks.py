"""Every tutorial runs without error (nbclient) against a real JupyterLab server extension
(embedded mode), each says what is simulated and what is real, and none is stored with outputs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
TIMES: dict[str, float] = {}


def test_the_tutorials_are_all_there():
    names = " ".join(p.stem for p in NOTEBOOKS)
    for topic in ("quickstart", "python-client", "oda-api", "crab", "v404", "jemx", "spi-acs", "antares",
                  "polar", "dask-dashboard", "select-sources"):
        assert topic in names, topic


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, lab, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert "What is simulated and what is real" in nb.cells[0].source
    for k, v in lab.kernel_env().items():
        monkeypatch.setitem(os.environ, k, v)
    start = time.monotonic()
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    TIMES[path.stem] = time.monotonic() - start
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.outputs, f"{path.name}: the last cell shows nothing"
