"""isgri_lc against an injected outburst (sky-model extension file), 600 s bins."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from mmoda_ext import engine
from mmoda_ext.access.rights import Rights
from mmoda_ext.archive import default_archive
from mmoda_ext.archive.isgri_data import band_channels, load_window, source_channel_rates
from mmoda_ext.errors import ParameterError
from mmoda_ext.instruments._isgri_spectral import LcPlan, field_sources, lc_task
from mmoda_ext.instruments._isgri_window import ArchiveRef
from mmoda_ext.jobs.compute import SerialContext

NAME = "Injected Outburst"
RA, DEC = 86.8, 24.0  # 3.7° from the Crab: both in every window of the Crab field
PEAK_MCRAB, DECAY_D = 400.0, 1.0
BIN_S = 600.0
T1, T2 = "2016-02-05T08:30", "2016-02-05T16:30"  # 8 consecutive Crab-field windows (rev 1641)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lc-archive")
    windows = default_archive(root).index.select(83.633, 22.015, 15, Time(T1), Time(T2), None)
    assert len(windows) >= 7
    # the outburst rises in the slew gap between windows 3 and 4: windows 0-3 see nothing
    start = windows[3].tstop + 0.0002
    peak = windows[4].tstart - 0.0002
    burst = {"start": start + 51544, "peak": peak + 51544, "end": start + 51544 + 10,
             "peak_mcrab": PEAK_MCRAB, "decay_d": DECAY_D}  # dates as numbers are MJD
    var = json.dumps({"outbursts": [burst]})
    extra = root / "extra_sky.ecsv"
    Table(rows=[{"id": 90002, "name": NAME, "ra": RA, "dec": DEC, "kind": "LMXB",
                 "mcrab": PEAK_MCRAB, "spectrum": "pl", "gamma1": 2.0, "variability": var}]
          ).write(extra, format="ascii.ecsv")
    archive = default_archive(root, extra_sources=extra)
    raw = dict(src_name=NAME, T1=T1, T2=T2, E1_keV=20, E2_keV=40, time_bin=BIN_S,
               osa_version="OSA10.2")
    result = engine.execute("isgri", "isgri_lc", raw, SerialContext(archive, tmp_path_factory.mktemp("lc-out")))
    return archive, result, start, windows


def _lc(result, name) -> tuple[Table, fits.Header, object]:
    (prod,) = [p for p in result.products if p.meta["src_name"] == name]
    with fits.open(prod.fits) as h:
        return Table(h["ISGR-SRC.-LCR"].data), h["ISGR-SRC.-LCR"].header, prod


def test_outburst_in_the_right_bins(setup):
    archive, result, start, _ = setup
    t, _, _ = _lc(result, NAME)
    before = t["TIME"] + t["XAX_E"] <= start
    after = t["TIME"] - t["XAX_E"] >= start
    assert before.sum() >= 15 and after.sum() >= 15
    snr = t["RATE"] / t["ERROR"]
    # quiescent: consistent with zero, χ² as the errors say
    chi2 = float(np.sum(snr[before] ** 2))
    n = int(before.sum())
    assert chi2 < n + 4 * np.sqrt(2 * n), (chi2, n)
    assert np.all(np.abs(snr[before]) < 4.5)
    # outburst: every bin detected, rates = the injected ones (band rate at the bin centre)
    assert np.all(snr[after] > 8)
    src = archive.sky.get(NAME)
    i0, i1 = band_channels(20, 40)
    rev = archive.index.get_many(result.meta["scw_list"])[-1].revolution
    truth = np.array([source_channel_rates(src, x, rev)[i0:i1].sum() for x in t["TIME"][after]])
    assert 40 < truth.max() < 70  # 400 mCrab at the OSA10.2 scale
    pull = (t["RATE"][after] - truth) / t["ERROR"][after]
    m = int(after.sum())
    assert np.all(np.abs(pull) < 4.5)
    assert float(np.sum(pull**2)) < m + 4 * np.sqrt(2 * m)


def test_steady_crab_chi2_consistent_with_errors(setup):
    _, result, _, _ = setup
    t, _, _ = _lc(result, "Crab")
    mean = np.average(t["RATE"], weights=t["ERROR"] ** -2)
    chi2 = float(np.sum(((t["RATE"] - mean) / t["ERROR"]) ** 2))
    n = len(t) - 1
    assert 125 < mean < 145
    assert chi2 < n + 4 * np.sqrt(2 * n)


def test_lc_fits_layout_and_meta(setup):
    _, result, _, _ = setup
    t, h, prod = _lc(result, NAME)
    assert list(t.colnames) == ["TIME", "TOT_COUNTS", "BACKV", "BACKE", "RATE", "ERROR",
                                "FRACEXP", "XAX_E", "TIMEDEL"]
    assert h["NAME"] == NAME and h["TIMEDEL"] == pytest.approx(BIN_S / 86400)
    assert h["E_MIN"] == 20.0 and h["E_MAX"] == 40.0 and h["TIMEPIXR"] == 0.5
    assert h["MJDREF"] == 51544.0 and h["INSTRUME"] == "IBIS" and h["TIMEUNIT"] == "d"
    assert prod.meta == {"src_name": NAME, "time_bin": BIN_S, "time": "TIME", "rate": "RATE",
                         "rate_err": "ERROR"}
    assert np.all((t["FRACEXP"] > 0) & (t["FRACEXP"] <= 1))
    assert np.all(np.diff(t["TIME"]) > 0) and prod.png.read_bytes()[:4] == b"\x89PNG"


def test_split_counts_add_up_to_the_window(setup):
    archive, result, _, windows = setup
    w = windows[4]
    srcs, *_ = field_sources(archive, [w], {"RA": RA, "DEC": DEC, "src_name": NAME})
    plan = LcPlan(ArchiveRef.of(archive), tuple(srcs), 20.0, 40.0, w.tstart, 300.0)
    res = lc_task(plan, w)
    ks, *_rest, counts, _b, _be, _x = res["sources"][NAME]
    win = load_window(archive, w)
    shd, _ = win.band(20.0, 40.0)
    assert ks.size >= 10
    assert counts.sum() == shd[win.efficiency > 0].sum()
    again = lc_task(plan, w)["sources"][NAME]
    np.testing.assert_array_equal(again[1], res["sources"][NAME][1])  # reproducible split


def test_time_bin_above_mmoda_cap_refused(setup):
    archive = setup[0]
    with pytest.raises(ParameterError) as err:
        engine.prepare("isgri", "isgri_lc", dict(src_name="Crab", T1=T1, T2=T2, time_bin=30000),
                       Rights.local(), archive)
    assert "20000" in err.value.message and "time_bin" in err.value.message
