"""Fixtures: one real ``mmoda serve`` (tests/server/serve_helpers) for the widget tests.

The panels only talk HTTP through ``mmoda_ext.client.Client``, so their logic is tested against
the real REST API on 127.0.0.1, with a small archive and tiny ISGRI requests (3 windows).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from serve_helpers import ServeProcess, make_token  # noqa: E402
from widget_helpers import CRAB  # noqa: E402

from mmoda_ext.client import Client  # noqa: E402


@pytest.fixture(scope="session")
def widget_server(tmp_path_factory):
    srv = ServeProcess(tmp_path_factory.mktemp("wserve"), tmp_path_factory.mktemp("warchive")).start()
    srv.set_state("done")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def anon(widget_server):
    c = Client(widget_server.url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def registered(widget_server):
    c = Client(widget_server.url, token=make_token("ana@example.org"))
    yield c
    c.close()


@pytest.fixture(scope="session")
def private(widget_server):
    c = Client(widget_server.url, token=make_token("pia@example.org", roles="general,integral-private-qla"))
    yield c
    c.close()


@pytest.fixture(scope="session")
def crab_image(registered):
    """A finished 3-window ISGRI mosaic job of the Crab (products on disk)."""
    job = registered.submit("isgri", "isgri_image", **CRAB)
    job = registered.wait(job["job_id"], timeout=180, progress=False)
    assert job["status"] == "done", job
    return job
