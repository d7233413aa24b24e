"""The whole-mission science-window index and MMODA's selection rule."""

from __future__ import annotations

import re

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from mmoda_ext.archive import schedule
from mmoda_ext.archive.fitsutil import to_ijd
from mmoda_ext.archive.index import ScwIndex
from mmoda_ext.errors import ParameterError

CRAB = (83.633, 22.015)
ID_RE = re.compile(r"^(\d{4})(\d{4})(\d{3})(\d)\.001$")


def test_covers_the_mission(index):
    t0, t1 = index.time_range
    assert Time("2002-12-15") < t0.utc < Time("2003-01-15")  # revolution ~26, end of 2002
    assert Time("2025-02-20") < t1.utc <= Time("2025-02-28T00:00:00")
    assert index.rev[0] == 26 and 2840 <= index.rev[-1] <= 2860
    # no revolution without data, apart from the safe-mode outage of autumn 2020
    revs = np.unique(index.rev)
    missing = sorted(set(range(26, int(revs[-1]) + 1)) - set(revs.tolist()))
    assert len(missing) <= 8
    # revolution 1626 starts on 2015-12-26 (OSA11 validity), periods 3 d then 2.74 d
    assert abs((Time(schedule.rev_start(1626) + 51544, format="mjd", scale="tt").utc
                - Time("2015-12-26T02:03:13")).sec) < 1
    assert np.diff(schedule.rev_start([100, 101]))[0] == pytest.approx(2.984, abs=0.01)
    assert np.diff(schedule.rev_start([2000, 2001]))[0] == pytest.approx(2.74, abs=0.05)
    assert 150_000 < index.n_pointings < 260_000


def test_ids_well_formed_and_unique(index):
    keys = index.key
    assert np.all(np.diff(keys) > 0)  # sorted, unique
    assert np.all(keys % 10000 == 10)  # subdivision 001, type 0
    assert np.all(keys // 10**8 == index.rev)
    sample = [index.window(i) for i in range(0, index.n_pointings, 997)]
    for w in sample:
        m = ID_RE.match(w.scw_id)
        assert m and int(m.group(1)) == w.revolution and int(m.group(2)) >= 1
        assert w.is_pointing and w.kind == "pointing"
        slew = index.get(w.scw_id[:11] + "1.001")
        assert slew.kind == "slew" and slew.tstop == w.tstart
        assert 60 <= slew.telapse <= 1500
    # times increase with ids and windows do not overlap
    assert np.all(np.diff(index.tstart) > 0)
    assert np.all(index.tstart[1:] >= index.tstop[:-1])


def test_durations_deadtime_attitude(index):
    telapse = (index.tstop - index.tstart) * 86400
    assert telapse.min() >= 1800 - 1e-3 and telapse.max() <= 3600 + 1e-3
    assert np.all(index.ontime <= telapse + 1e-3) and np.all(index.ontime >= 0.5 * telapse - 1e-3)
    assert np.median(index.ontime / telapse) > 0.99
    assert index.deadc.min() >= 0.75 and index.deadc.max() <= 0.85
    early, late = index.tstart < to_ijd("2004-01-01"), index.tstart > to_ijd("2022-01-01")
    assert np.median(index.deadc[early]) == pytest.approx(0.78, abs=0.01)
    assert np.median(index.deadc[late]) > 0.83
    assert np.all((index.pa >= 0) & (index.pa < 360))
    # solar aspect constraint, 50-130 deg for field centres (dithers add a few degrees)
    sun = schedule.unit(*schedule.sun_radec(index.tstart))
    ang = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", sun, index._xyz), -1, 1)))
    assert ang.min() > 44 and ang.max() < 136


def test_dither_patterns(index):
    """Consecutive pointings of a 5x5 dither are 2.17 deg apart; hexagon points 2 deg off centre."""
    w = [index.window(r) for r in np.nonzero(index.rev == 665)[0]]
    assert len(w) > 40
    c = SkyCoord([x.ra for x in w], [x.dec for x in w], unit="deg")
    steps = c[1:].separation(c[:-1]).deg
    assert np.median(steps) == pytest.approx(2.17, abs=0.05)
    offs = c.separation(SkyCoord(*CRAB, unit="deg")).deg
    assert offs.max() < 2.17 * 2 * np.sqrt(2) + 0.1
    v404 = [index.window(r) for r in index.cone(306.016, 33.867, 3.0, "2015-06-18", "2015-06-30")]
    d = SkyCoord([x.ra for x in v404], [x.dec for x in v404], unit="deg").separation(
        SkyCoord(306.016, 33.867, unit="deg")).deg
    assert set(np.round(d, 2)) <= {0.0, 2.0}


def test_real_scw_ids_point_at_the_crab(index):
    """The windows used by MMODA's own tests are Crab pointings here too."""
    crab = SkyCoord(*CRAB, unit="deg")
    for scw_id in ("066500220010.001", "010200230010.001"):
        w = index.get(scw_id)
        assert w.target == "Crab"
        assert SkyCoord(w.ra, w.dec, unit="deg").separation(crab).deg < 6.5


@pytest.mark.parametrize("seed", range(6))
def test_select_matches_brute_force(index, seed):
    rng = np.random.default_rng(seed)
    ra, dec = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))
    if seed < 3:  # make sure some land in busy fields
        ra, dec = [(266.4, -28.9), CRAB, (305.0, 37.5)][seed]
    radius = rng.uniform(3, 20)
    t1 = rng.uniform(1100, 8800)
    t2 = t1 + rng.uniform(10, 400)
    got = index.cone(ra, dec, radius, t1, t2, include_private=True)
    overlap = (index.tstop > t1) & (index.tstart < t2)
    sep = SkyCoord(index.ra, index.dec, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).deg
    expect = np.nonzero(overlap & (sep <= radius))[0]
    borderline = np.abs(sep - radius) < 1e-9
    assert set(got) ^ set(expect) <= set(np.nonzero(borderline)[0])
    public = index.cone(ra, dec, radius, Time(t1 + 51544, format="mjd", scale="tt"),
                        Time(t2 + 51544, format="mjd", scale="tt"))
    assert set(public) == {r for r in got if not index.private[r]}
    if seed < 3:
        assert len(expect) > 0


def test_random_subset_is_reproducible(index):
    args = (*CRAB, 15.0, Time("2016-02-01"), Time("2016-03-01"))
    everything = index.select(*args)
    assert len(everything) >= 50  # the `make run` demo request
    a = index.select(*args, max_pointings=50)
    b = index.select(*args, max_pointings=50)
    assert [w.scw_id for w in a] == [w.scw_id for w in b]
    assert len(a) == 50 and len({w.scw_id for w in a}) == 50
    assert [w.tstart for w in a] == sorted(w.tstart for w in a)
    assert {w.scw_id for w in a} <= {w.scw_id for w in everything}
    c = index.select(*args, max_pointings=50, seed="another")
    assert [w.scw_id for w in c] != [w.scw_id for w in a]
    d = index.select(*CRAB, 14.0, Time("2016-02-01"), Time("2016-03-01"), max_pointings=50)
    assert [w.scw_id for w in d] != [w.scw_id for w in a]  # another request, another draw
    assert index.select(*args, max_pointings=10_000) == everything
    assert all(w.is_pointing and not w.private for w in everything)


def test_requested_demo_fields(index):
    # MMODA's default ISGRI request: Galactic centre, 2017-03-06
    gc = index.select(265.98, -29.75, 15.0, Time("2017-03-06T13:26:48"), Time("2017-03-06T15:32:27"))
    assert 2 <= len(gc) <= 6
    # V404 Cyg outburst, June 2015
    v404 = index.select(306.016, 33.867, 15.0, Time("2015-06-15"), Time("2015-07-01"))
    assert len(v404) > 100


def test_private_rules(index):
    newest = index.tstart >= to_ijd("2024-02-28T00:00:00")
    assert newest.sum() > 1000 and np.all(index.private[newest])
    flagged = index.private & ~newest
    assert 0 < flagged.sum() < 0.02 * index.n_pointings  # a few flagged programmes
    assert len(set(index.target[flagged].tolist())) >= 2
    recent = index.select(*CRAB, 180.0, Time("2024-06-01"), Time("2024-06-10"))
    assert recent == []
    recent = index.select(*CRAB, 180.0, Time("2024-06-01"), Time("2024-06-10"), include_private=True)
    assert recent and all(w.private for w in recent)


def test_get_errors(index):
    w = index.get("066500220010.001")
    assert index.get_many(["066500220010.001", "066500230010.001"])[0] == w
    for bad in ["066500220010.000", "999900010010.001", "066599990010.001", "0665002200.001", "x"]:
        with pytest.raises(ParameterError) as err:
            index.get(bad)
        assert err.value.parameter == "scw_list" and bad in err.value.message


def test_select_errors(index):
    with pytest.raises(ParameterError, match="T2"):
        index.select(*CRAB, 10, Time("2016-03-01"), Time("2016-02-01"))
    with pytest.raises(ParameterError, match="radius"):
        index.select(*CRAB, 0, Time("2016-02-01"), Time("2016-03-01"))
    with pytest.raises(ParameterError, match="DEC"):
        index.select(83, 95, 10, Time("2016-02-01"), Time("2016-03-01"))
    with pytest.raises(ParameterError, match="max_pointings"):
        index.select(*CRAB, 10, Time("2016-02-01"), Time("2016-03-01"), max_pointings=0)
    with pytest.raises(ParameterError, match="T1"):
        index.select(*CRAB, 10, "yesterday", Time("2016-03-01"))


def test_deterministic_and_disk_cache(index, tmp_path):
    again = ScwIndex.build(index.seed)
    for col in ("key", "ra", "dec", "tstart", "ontime", "deadc", "private"):
        assert np.array_equal(getattr(again, col), getattr(index, col))
    path = index.save(ScwIndex.cache_path(tmp_path, index.seed))
    loaded = ScwIndex.load(path)
    assert loaded.get("066500220010.001") == index.get("066500220010.001")
    assert np.array_equal(loaded.tstop, index.tstop)
    other = ScwIndex.build(7)
    assert not np.array_equal(other.ra[:100], index.ra[:100])


def test_to_table(index):
    rows = index.cone(*CRAB, 10, "2016-02-01", "2016-03-01")
    t = index.to_table(rows)
    assert len(t) == len(rows) and t["RA_SCX"].unit == u.deg
    assert t["SWID"][0] == index.window(rows[0]).scw_id
