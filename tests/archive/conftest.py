"""Shared fixtures of the archive tests: one index per session (built in ~0.3 s, memoised)."""

from __future__ import annotations

import pytest

from mmoda_ext.archive.index import ScwIndex


@pytest.fixture(scope="session")
def index() -> ScwIndex:
    return ScwIndex.default()
