"""Requests for well-known targets find windows and list their sources (issue 9 item 17).

The sky model holds the bright end of the IBIS catalogues and the observing plan pins the real
campaigns: a small image request on MAXI J1820+070 during its 2018 ToO detects it at its outburst
level, and a Galactic-bulge field in a monitoring season lists the bulge binaries as MMODA does.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from mmoda_ext.archive.fitsutil import to_ijd


def _catalog(result) -> Table:
    return Table.read(result.find("isgri_catalog")[0].fits)


def test_maxi_j1820_detected_in_its_2018_too(run_image, isgri_archive):
    result, _ = run_image(src_name="MAXI J1820+070", T1="2018-03-20", T2="2018-04-05", max_pointings=4,
                          E1_keV=20, E2_keV=40)
    assert len(result.meta["scw_list"]) == 4
    cat = _catalog(result)
    names = list(cat["src_names"])
    assert "MAXI J1820+070" in names, names
    row = cat[names.index("MAXI J1820+070")]
    assert row["significance"] > 100  # a few Crab: hundreds of sigma in four windows
    assert not row["NEW_SOURCE"]
    src = isgri_archive.sky.get("MAXI J1820+070")
    assert src.mcrab_20_40(to_ijd("2018-03-28")) > 1500


def test_galactic_bulge_field_lists_ten_catalogue_sources(run_image):
    """A bulge-monitoring season (2006 spring): MMODA lists ~14 sources in such a field."""
    result, _ = run_image(RA=266.4, DEC=-28.9, T1="2006-03-01", T2="2006-04-15", max_pointings=10,
                          E1_keV=20, E2_keV=40)
    cat = _catalog(result)
    known = [n for n, new in zip(cat["src_names"], cat["NEW_SOURCE"], strict=True) if not new]
    assert len(known) >= 10, list(cat["src_names"])
    assert len(set(cat["src_names"])) == len(cat)  # never twice
    assert {"1E 1740.7-2942", "GX 1+4", "GRS 1758-258"} <= set(known)


@pytest.mark.parametrize("name, t1, t2", [
    ("3C 279", "2015-06-15", "2015-06-17"),
    ("NGC 2110", "2003-01-01", "2025-01-01"),
    ("1A 0535+262", "2016-02-01", "2016-03-01"),
    ("MAXI J1820+070", "2018-03-16", "2018-04-08"),
    ("Swift J1727.8-1613", "2023-08-25", "2023-10-31"),
    ("GRO J1655-40", "2005-02-17", "2005-10-15"),
])
def test_known_targets_find_windows_and_sources(isgri_archive, name, t1, t2):
    src = isgri_archive.sky.get(name)
    windows = isgri_archive.index.select(src.ra, src.dec, 10.0, Time(t1), Time(t2), max_pointings=50)
    assert len(windows) >= 4, (name, len(windows))
    field = [s.name for s in isgri_archive.sky.near(src.ra, src.dec, 10.0)]
    assert field[0] == src.name  # the target itself, nearest first
    sep = [np.hypot((w.ra - src.ra) * np.cos(np.radians(src.dec)), w.dec - src.dec) for w in windows]
    assert min(sep) < 10.0
