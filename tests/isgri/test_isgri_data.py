"""ISGRI per-window data: determinism, file conventions, Dask = serial, request checks."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from astropy.io import fits

from mmoda_ext import engine
from mmoda_ext.access.rights import Rights
from mmoda_ext.archive.isgri_data import ISGRI_CHANNELS, generate_window, load_window
from mmoda_ext.errors import AccessError, NoDataError, ParameterError
from mmoda_ext.instruments._isgri_window import ArchiveRef, ImagePlan, image_task
from mmoda_ext.jobs.compute import DaskContext, SerialContext, local_client
from mmoda_ext.science import ibis
from mmoda_ext.science.mosaic import MosaicAccumulator, mosaic_frame

CRAB_SCW = "166500220010.001"


@pytest.fixture(scope="module")
def crab_windows(isgri_archive):
    from astropy.time import Time

    return isgri_archive.index.select(83.633, 22.015, 10.0, Time("2016-02-01"), Time("2016-03-01"), 4)


def test_same_window_generated_twice_is_byte_identical(isgri_archive, crab_windows):
    scw = crab_windows[0]
    path = generate_window(isgri_archive, scw)
    first = path.read_bytes()
    with fits.open(path) as hdul:
        cube1 = np.asarray(hdul["ISGR-DETE-SHD"].data).copy()
    path.unlink()
    load_window(isgri_archive, scw)  # regenerates the missing file
    assert path.read_bytes() == first
    with fits.open(path) as hdul:
        assert np.array_equal(np.asarray(hdul["ISGR-DETE-SHD"].data), cube1)
        h = hdul[0].header
        assert h["MJDREF"] == 51544.0 and h["TIMESYS"] == "TT" and h["SWID"] == scw.scw_id
        assert h["TSTART"] == pytest.approx(scw.tstart)
        assert hdul["ISGR-DETE-SHD"].data.shape == (len(ISGRI_CHANNELS) - 1, 134, 130)


def test_window_has_gaps_dead_pixels_and_crab_counts(isgri_archive, crab_windows):
    win = load_window(isgri_archive, crab_windows[0])
    gaps = ibis.module_map() < 0
    assert np.all(win.efficiency[gaps] == 0)
    dead = (win.efficiency == 0) & ~gaps
    assert 0.001 < dead.mean() < 0.05
    counts, band = win.band(20, 40)
    assert band == (20.0, 40.0)
    assert np.all(counts[gaps] == 0)
    # background 1550 cts/s in 20-40 keV over the detector (+ the Crab): per good pixel
    rate = counts[win.efficiency > 0].sum() / win.exposure
    assert 1300 < rate < 2000


def test_decode_on_dask_2_workers_equals_serial(isgri_archive, crab_windows, tmp_path):
    frames = [ibis.window_frame(w.ra, w.dec, w.pa) for w in crab_windows]
    mframe = mosaic_frame(83.633, 22.015, frames)
    plan = ImagePlan(ArchiveRef.of(isgri_archive), 20.0, 40.0, mframe)
    task = partial(image_task, plan)

    def fold(acc, res):
        return acc.add(res.part)

    serial = SerialContext(isgri_archive, tmp_path / "s").map_reduce(
        task, crab_windows, fold, MosaicAccumulator(mframe))
    client = local_client(2)
    try:
        ctx = DaskContext(isgri_archive, tmp_path / "d", client=client)
        assert len(client.nthreads()) == 2
        dask = ctx.map_reduce(task, crab_windows, fold, MosaicAccumulator(mframe))
        # workers fold batches and the client merges partial mosaics: same sums
        batched = ctx.map_reduce(task, crab_windows, fold, MosaicAccumulator(mframe),
                                 merge=MosaicAccumulator.merge, start=partial(MosaicAccumulator, mframe))
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    assert dask.n_windows == serial.n_windows == len(crab_windows)
    np.testing.assert_allclose(dask.sum_w, serial.sum_w, rtol=1e-6)
    np.testing.assert_allclose(dask.sum_wi, serial.sum_wi, rtol=1e-6, atol=1e-6)
    assert batched.n_windows == len(crab_windows)
    np.testing.assert_allclose(batched.sum_w, serial.sum_w, rtol=1e-6)
    np.testing.assert_allclose(batched.sum_wi, serial.sum_wi, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batched.exposure, serial.exposure, rtol=1e-6)


def _prepare(archive, rights=None, **raw):
    base = {"RA": 83.633, "DEC": 22.015, "T1": "2016-02-01", "T2": "2016-03-01"}
    return engine.prepare("isgri", "isgri_image", base | raw, rights or Rights.local(), archive)


def test_t1_after_t2_is_a_parameter_error(isgri_archive):
    with pytest.raises(ParameterError, match="T1"):
        _prepare(isgri_archive, T1="2016-03-02")


@pytest.mark.parametrize("e1,e2,name", [(10, 40, "E1_keV"), (20, 900, "E2_keV"), (40, 20, "E1_keV"),
                                        (30, 30, "E1_keV")])
def test_energies_outside_15_800_or_reversed_are_refused(isgri_archive, e1, e2, name):
    with pytest.raises(ParameterError) as exc:
        _prepare(isgri_archive, E1_keV=e1, E2_keV=e2)
    assert exc.value.parameter == name


def test_more_windows_than_rights_allow_is_refused_with_the_limit(isgri_archive):
    anon = Rights(max_scw=50)
    with pytest.raises(AccessError, match="at most 50"):
        _prepare(isgri_archive, anon, max_pointings=51)


def test_no_science_window_names_position_radius_and_times(isgri_archive, tmp_path):
    inst, params = _prepare(isgri_archive, RA=10.0, DEC=-5.0, radius=0.5, T1="2003-01-01", T2="2003-01-02")
    with pytest.raises(NoDataError) as exc:
        engine.run("isgri", "isgri_image", params, SerialContext(isgri_archive, tmp_path))
    msg = str(exc.value)
    assert "no science window found" in msg
    for text in ("RA=10", "DEC=-5", "radius=0.5", "2003-01-01", "2003-01-02"):
        assert text in msg


def test_private_data_needs_the_right(isgri_archive):
    with pytest.raises(AccessError, match="private"):
        _prepare(isgri_archive, Rights(), integral_data_rights="all-private")


def test_window_of_another_sky_model_is_regenerated(tmp_path, crab_windows):
    """An archive folder made under one sky model, reused with an injected source: the windows
    are remade (their SKYMODEL stamp differs), so the source is in the data."""
    from astropy.table import Table

    from mmoda_ext.archive import default_archive
    from mmoda_ext.science import sources

    scw = crab_windows[0]
    plain = default_archive(tmp_path / "shared")
    load_window(plain, scw)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    ra, dec = (float(v) for v in frame.to_sky(ibis.SKY_CENTRE[1] + 20.0, ibis.SKY_CENTRE[0] - 15.0))
    extra = tmp_path / "extra.ecsv"
    Table(rows=[{"id": 90031, "name": "Injected later", "ra": ra, "dec": dec, "kind": "uncatalogued",
                 "mcrab": 300.0, "spectrum": "pl", "gamma1": 2.0}]).write(extra, format="ascii.ecsv")
    injected = default_archive(tmp_path / "shared", extra_sources=extra)
    win = load_window(injected, scw, bands=((20.0, 40.0),))
    assert win.header["SKYMODEL"] == injected.sky.digest != plain.sky.digest
    counts, _ = win.band(20.0, 40.0)
    rate, err, _ = sources.pif_fit(counts, win.efficiency, win.background, win.exposure, [(-15.0, 20.0)])
    assert rate[0] / err[0] > 20  # 300 mCrab: the source is in the regenerated counts


def test_window_counts_integrate_the_light_curve_over_the_window(isgri_archive):
    """V404 Cyg's June 2015 outburst varies within a window: its counts follow the window mean."""
    from astropy.time import Time

    from mmoda_ext.archive.isgri_data import band_channels, good_time_samples, source_channel_rates
    from mmoda_ext.science import sources

    src = isgri_archive.sky.get("V404 Cyg")
    i0, i1 = band_channels(20.0, 40.0)
    best = None
    for w in isgri_archive.index.select(src.ra, src.dec, 5.0, Time("2015-06-18"), Time("2015-06-28"), 60):
        t = good_time_samples(w.gti)
        f = np.asarray(src.factor(t))
        contrast = abs(f.mean() - float(src.factor(0.5 * (w.tstart + w.tstop)))) / f.mean()
        if best is None or contrast > best[0]:
            best = (contrast, w)
    contrast, w = best
    assert contrast > 0.3  # mid-time flux and window mean differ a lot in this window
    mean = np.mean([source_channel_rates(src, x, w.revolution)[i0:i1].sum() for x in good_time_samples(w.gti)])
    mid = source_channel_rates(src, 0.5 * (w.tstart + w.tstop), w.revolution)[i0:i1].sum()
    win = load_window(isgri_archive, w, bands=((20.0, 40.0),))
    counts, _ = win.band(20.0, 40.0)
    frame = ibis.window_frame(w.ra, w.dec, w.pa)
    x, y = frame.to_pixel(src.ra, src.dec)
    shift = (float(y) - ibis.SKY_CENTRE[0], float(x) - ibis.SKY_CENTRE[1])
    others = [(float(yy) - ibis.SKY_CENTRE[0], float(xx) - ibis.SKY_CENTRE[1])
              for s in isgri_archive.sky.near(w.ra, w.dec, 15.0) if s.name != "V404 Cyg"
              for xx, yy in [frame.to_pixel(s.ra, s.dec)] if np.isfinite(xx)]
    rate, err, _ = sources.pif_fit(counts, win.efficiency, win.background, win.exposure, [shift, *others])
    assert abs(rate[0] - mean) < max(5 * err[0], 0.03 * mean), (rate[0], err[0], mean, mid)
    assert abs(rate[0] - mid) > 5 * err[0]


def test_a_position_without_simulated_source_says_so(isgri_archive):
    """1ES 0229+200 is not in the built-in sky: the answer says the simulation lacks it (no silent blank)."""
    from mmoda_ext.instruments._integral_select import select_windows

    raw = {"src_name": "1ES 0229+200", "RA": 38.2026, "DEC": 20.2882, "T1": "2015-06-01", "T2": "2015-07-01",
           "radius": 15, "max_pointings": 2}
    _, params = engine.prepare("isgri", "isgri_image", raw, Rights.local(), isgri_archive)
    with pytest.raises(NoDataError) as err:  # no simulated pointing there: the error says both facts
        select_windows(params, isgri_archive, Rights.local())
    assert "index is simulated" in err.value.message and "has no source within" in err.value.message
    blank = {**raw, "src_name": "NEP", "RA": 270.0, "DEC": 66.56, "T1": "2010-01-01", "T2": "2012-01-01"}
    _, params = engine.prepare("isgri", "isgri_image", blank, Rights.local(), isgri_archive)
    _, messages = select_windows(params, isgri_archive, Rights.local())
    assert any("has no source within" in m and "NEP" in m and "MMODA_SKY_EXTRA" in m for m in messages), messages
    crab = {**raw, "src_name": "Crab", "RA": 83.633, "DEC": 22.015, "T1": "2016-02-01", "T2": "2016-03-01"}
    _, params = engine.prepare("isgri", "isgri_image", crab, Rights.local(), isgri_archive)
    assert not any("has no source" in m for m in select_windows(params, isgri_archive, Rights.local())[1])
