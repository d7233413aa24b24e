"""No false discoveries around bright uncatalogued sources (referee item: ghosts of sources the
analysis catalogue does not know must be cleaned too, as OSA's ii_skyimage does per window).

Three 100 mCrab sources unknown to the catalogue (kind ``uncatalogued``) are injected: two in
empty fields and one 4.6° from the Crab. Each mosaic must show the injected source as NEW_1 at
its position, the catalogued sources, and nothing else above the 7σ threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from mmoda_ext import engine
from mmoda_ext.jobs.compute import SerialContext

INJECTED = [
    {"id": 90021, "name": "Unc J0056+4100", "ra": 14.0, "dec": 41.0, "kind": "uncatalogued",
     "mcrab": 100.0, "spectrum": "pl", "gamma1": 2.0},
    {"id": 90022, "name": "Unc J1808+6430", "ra": 272.0, "dec": 64.5, "kind": "uncatalogued",
     "mcrab": 100.0, "spectrum": "pl", "gamma1": 2.0},
    {"id": 90023, "name": "Unc J0552+2000", "ra": 88.0, "dec": 20.0, "kind": "uncatalogued",
     "mcrab": 100.0, "spectrum": "pl", "gamma1": 2.0},
]
REQUESTS = {
    "Unc J0056+4100": dict(T1="2004-01-01", T2="2012-01-01", radius=8),
    "Unc J1808+6430": dict(T1="2010-01-01", T2="2012-01-01", radius=10),
    "Unc J0552+2000": dict(T1="2016-02-01", T2="2016-03-01", radius=10),
}
EXPECTED_CATALOGUED = {"Unc J0056+4100": [], "Unc J1808+6430": [], "Unc J0552+2000": ["Crab"]}


@pytest.fixture(scope="module")
def archive(sky_archive):
    return sky_archive("uncatalogued-archive", *INJECTED)


def _sep_arcmin(ra1, dec1, ra2, dec2) -> float:
    d = np.radians
    c = np.sin(d(dec1)) * np.sin(d(dec2)) + np.cos(d(dec1)) * np.cos(d(dec2)) * np.cos(d(ra1 - ra2))
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))) * 60)


@pytest.mark.parametrize("src", INJECTED, ids=[s["name"] for s in INJECTED])
def test_bright_uncatalogued_source_makes_no_spurious_new_source(archive, src, tmp_path):
    raw = dict(RA=src["ra"], DEC=src["dec"], max_pointings=25, E1_keV=20, E2_keV=40,
               osa_version="OSA10.2", **REQUESTS[src["name"]])
    res = engine.execute("isgri", "isgri_image", raw, SerialContext(archive, tmp_path))
    cat = Table.read(res.find("isgri_catalog")[0].fits)
    names = list(cat["src_names"])
    assert names.count("NEW_1") == 1 and sorted(n for n in names if n != "NEW_1") == EXPECTED_CATALOGUED[src["name"]], \
        names  # no NEW_2...: the ghosts of the uncatalogued source were cleaned in every window
    new = cat[names.index("NEW_1")]
    assert new["significance"] > 40  # bright: its ghosts would reach the threshold uncleaned
    assert _sep_arcmin(new["ra"], new["dec"], src["ra"], src["dec"]) < 2.0
