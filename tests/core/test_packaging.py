"""The wheel builds without setuptools warnings and ships the package's data files.

Built as ``make run`` installs (``pip``, isolated build environment with setuptools from the
package index) from a clean copy of the project's files, as a fresh clone has them: a stale
``build/`` folder of the working tree must not leak old modules into the test's wheel.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

DATA_FILES = [
    "mmoda_ext/data/tiers.yaml",
    "mmoda_ext/data/sky_model.ecsv",
    "mmoda_ext/data/grb_catalog.ecsv",
    "mmoda_ext/data/antares_sim/acc.txt",
    "mmoda_ext/data/antares_sim/background.txt",
    "mmoda_ext/server/rest-api.yml",
]


def _project_copy(dest: Path) -> Path:
    """The files git knows (tracked or new, not ignored), as they are in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file() and not rel.startswith(("tests/", "notebooks/", "binder/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def test_wheel_builds_without_warnings_and_holds_the_data(tmp_path):
    src = _project_copy(tmp_path / "src")
    out = tmp_path / "wheel"
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(out),
                          str(src)], capture_output=True, text=True, timeout=240)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    assert "BuildBackendWarning" not in log, log
    assert "is absent from the `packages` configuration" not in log, log
    (wheel,) = out.glob("mmoda_hub-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in DATA_FILES if f not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # every module of the source tree, and nothing else (no stale build/ leftovers)
    sources = {p.relative_to(src).as_posix() for p in (src / "mmoda_ext").rglob("*.py")}
    assert sources == {n for n in names if n.startswith("mmoda_ext/") and n.endswith(".py")}
    assert "mmoda_widgets/__init__.py" in names
