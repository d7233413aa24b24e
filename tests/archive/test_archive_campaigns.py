"""Observing history: the campaigns pinned on their dates, and exposure for every sky-model source."""

from __future__ import annotations

import numpy as np
import pytest

from mmoda_ext.archive import schedule
from mmoda_ext.archive.fitsutil import to_ijd
from mmoda_ext.archive.sky import SkyModel


def _targets(index, rows) -> set[str]:
    return {index.targets[i] for i in index.target[rows]}


@pytest.mark.parametrize("name, ra, dec, t1, t2, target, at_least", [
    ("3C 279", 194.0465, -5.7893, "2015-06-15", "2015-06-17", "3C 279 ToO", 20),
    ("MAXI J1820+070", 275.0914, 7.1854, "2018-03-16", "2018-04-08", "MAXI J1820+070 ToO", 300),
    ("V404 Cyg", 306.016, 33.867, "2015-06-17", "2015-07-01", "V404 Cyg ToO", 200),
])
def test_too_campaigns_on_their_dates(index, name, ra, dec, t1, t2, target, at_least):
    rows = index.cone(ra, dec, 5.0, to_ijd(t1), to_ijd(t2))
    assert len(rows) >= at_least, (name, len(rows))
    assert _targets(index, rows) == {target}
    # the windows are on the source: a 5x5 or hexagonal dither around it
    sep = np.degrees(np.arccos(np.clip(index._xyz[rows] @ schedule.unit(ra, dec), -1, 1)))
    assert sep.max() < 6.2  # the corner of a 5x5 dither with 2.17° steps


def test_v404_cyg_too_from_revolution_1555(index):
    rows = index.cone(306.016, 33.867, 5.0, to_ijd("2015-06-10"), to_ijd("2015-07-05"))
    v404 = rows[[index.targets[i] == "V404 Cyg ToO" for i in index.target[rows]]]
    assert int(index.rev[v404].min()) == 1555


def test_every_campaign_names_its_source():
    for entry in schedule.TOO_CAMPAIGNS:
        assert "[R]" in entry[-1] or "[S]" in entry[-1]
        assert len(entry[-1]) > 20
    assert "Kuulkers" in schedule.BULGE_MONITORING["source"]


def test_bulge_monitoring_every_visible_revolution(index):
    """2006: a 7-pointing hexagon of 1800 s on the Galactic centre in each visible revolution."""
    lo, hi = np.searchsorted(index.tstart, [to_ijd("2006-01-01"), to_ijd("2007-01-01")])
    rows = np.arange(lo, hi)[[index.targets[i] == "Galactic bulge monitoring" for i in index.target[lo:hi]]]
    revs, counts = np.unique(index.rev[rows], return_counts=True)
    assert 25 <= revs.size <= 60  # two visibility seasons of ~2 months, one visit per revolution
    assert np.all(counts == 7)
    dur = (index.tstop[rows] - index.tstart[rows]) * 86400.0
    assert np.all(np.abs(dur - 1800) < 120) and np.median(index.ontime[rows]) > 1750
    months = {int(str(m)[5:7]) for m in np.datetime_as_string(
        (index.tstart[rows] * 86400).astype("timedelta64[s]") + np.datetime64("2000-01-01T00:00:00"))}
    assert months <= {2, 3, 4, 8, 9, 10}  # the bulge seasons (Sun constraint)


def test_revolutions_without_campaigns_are_the_plan(index):
    """Campaigns interrupt the plan; every other revolution keeps its pointings exactly."""
    base = schedule._base_plan(index.seed)
    touched = {b[2] for b in schedule._overlay_blocks(index.seed)}
    for rev in (102, 665, 1000, 1626, 2000):  # Crab calibrations and ordinary revolutions
        if rev in touched:
            continue
        m_new, m_old = index.rev == rev, base["rev"] == rev
        assert np.array_equal(index.tstart[m_new], base["tstart"][m_old])
        assert np.array_equal(index.ra[m_new], base["ra"][m_old])
    keys = set(index.key.tolist())
    assert {10200230010, 66500220010} <= keys  # the windows MMODA's own tests use
    assert np.all(index.tstart[1:] >= index.tstop[:-1])  # no overlapping pointings


def test_every_sky_model_source_has_exposure(index):
    sky = SkyModel.from_files()
    few = [(s.name, n) for s in sky if (n := len(index.cone(s.ra, s.dec, 10.0, 1000.0, 9200.0))) < 100]
    assert few == []
