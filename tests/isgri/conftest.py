"""One simulated archive per test session, with injected sources in an extra sky-model file."""

from __future__ import annotations

import pytest

from mmoda_ext.access.rights import Rights
from mmoda_ext.jobs.compute import SerialContext

#: a 50 mCrab source near M31 (no built-in source within 20°), unknown to the catalogue
NEW_SOURCE = {"id": 90001, "name": "Injected J0048+3930", "ra": 12.0, "dec": 39.5,
              "kind": "uncatalogued", "mcrab": 50.0, "spectrum": "pl", "gamma1": 2.1}
#: a blank field of the observing plan: North ecliptic pole
BLANK_FIELD = {"RA": 270.0, "DEC": 66.56}


@pytest.fixture(scope="session")
def new_source() -> dict:
    return dict(NEW_SOURCE)


@pytest.fixture(scope="session")
def blank_field() -> dict:
    return dict(BLANK_FIELD)


@pytest.fixture(scope="session")
def isgri_archive(sky_archive):
    return sky_archive("isgri-archive", NEW_SOURCE)


@pytest.fixture(scope="session")
def run_image(isgri_archive, tmp_path_factory):
    """Run ``isgri_image`` serially on the session archive; returns (ProductSet, params)."""
    from mmoda_ext import engine

    def run(**raw):
        inst, params = engine.prepare("isgri", "isgri_image", raw, Rights.local(), isgri_archive)
        ctx = SerialContext(isgri_archive, tmp_path_factory.mktemp("isgri-out"))
        return engine.run("isgri", "isgri_image", params, ctx), params

    return run


@pytest.fixture(scope="module")
def run(archive, tmp_path_factory):
    """``run(product, rights=None, **raw)`` on the test module's ``archive`` fixture, serially."""
    from mmoda_ext import engine

    def _run(product, rights=None, **raw):
        ctx = SerialContext(archive, tmp_path_factory.mktemp(product), rights=rights or Rights.local())
        return engine.execute("isgri", product, raw, ctx)

    return _run
