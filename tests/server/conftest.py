"""Fixtures: a real ``mmoda serve`` subprocess per test module (see serve_helpers)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from serve_helpers import ServeProcess, make_token

# the servers run with MMODA's conformance instruments; tests list them from the same registry
os.environ["DISPATCHER_DEBUG_MODE"] = "yes"


@pytest.fixture(scope="session")
def archive_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("archive")


@pytest.fixture(scope="module")
def server(tmp_path_factory, archive_dir):
    srv = ServeProcess(tmp_path_factory.mktemp("serve"), archive_dir).start()
    srv.set_state("done")
    yield srv
    srv.set_state("done")
    srv.stop()


@pytest.fixture
def token():
    return make_token
