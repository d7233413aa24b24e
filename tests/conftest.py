"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
from astropy.table import Table

from mmoda_ext.archive import default_archive


@pytest.fixture(scope="session")
def sky_archive(tmp_path_factory):
    """A factory of fresh archives: ``sky_archive(name, *extra_sources)``.

    Extra sources (dicts with the columns of ``mmoda_ext/data/sky_model.ecsv``) are written to
    an extension ECSV, as an operator would, so tests inject their own truth.
    """

    def make(name: str, *extra: dict):
        root = tmp_path_factory.mktemp(name)
        path = None
        if extra:
            path = root / "extra_sky.ecsv"
            Table(rows=list(extra)).write(path, format="ascii.ecsv")
        return default_archive(root, extra_sources=path)

    return make
