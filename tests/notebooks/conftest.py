"""Fixtures: a real JupyterLab with the mmoda_ext extension (embedded mode) for the tutorials."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))

from lab_helpers import LabServer, shared_archive  # noqa: E402


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    srv = LabServer(tmp_path_factory.mktemp("nblab"), shared_archive(tmp_path_factory)).start()
    yield srv
    srv.stop()
