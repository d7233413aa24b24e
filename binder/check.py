"""Run every tutorial in an environment built only from binder/'s files (run it with that
environment's python): its own JupyterLab with the extension, nbclient per notebook. By hand;
``make test`` does the same in ``tests/notebooks`` (one environment per test session).

    python3.12 binder/environment.py /tmp/bvenv && /tmp/bvenv/bin/python binder/check.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

import nbformat  # noqa: E402
from lab_helpers import LabServer  # noqa: E402
from nbclient import NotebookClient  # noqa: E402


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="binder-check-"))
    lab = LabServer(work, work / "archive", python=sys.executable).start()
    os.environ.update(lab.kernel_env())
    failed = 0
    try:
        for path in sorted((REPO / "notebooks").glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            t = time.monotonic()
            try:
                NotebookClient(nb, timeout=600, kernel_name="python3",
                               resources={"metadata": {"path": str(work)}}).execute()
                print(f"OK   {path.name} {time.monotonic() - t:.0f} s", flush=True)
            except Exception as err:  # report and go on
                failed += 1
                print(f"FAIL {path.name}: {str(err)[-600:]}", flush=True)
    finally:
        lab.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
