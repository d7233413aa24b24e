"""isgri_spectrum and spectral_fit against an injected power-law Crab (Γ = 2.10, 1 Crab)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from mmoda_ext.archive.isgri_data import load_window
from mmoda_ext.science import ibis, sources, spectral_fit, spectrum

GAMMA = 2.10  # injected photon index of the test Crab (a pure power law)
CRAB = {"id": 1, "name": "Crab", "ra": 83.633, "dec": 22.015, "kind": "PWN", "mcrab": 1000.0,
        "spectrum": "pl", "gamma1": GAMMA}
REQ = dict(src_name="Crab", T1="2016-02-01", T2="2016-03-01", max_pointings=8)


@pytest.fixture(scope="module")
def archive(sky_archive):
    return sky_archive("spec-archive", CRAB)


@pytest.fixture(scope="module")
def spec10(run):
    return run("isgri_spectrum", osa_version="OSA10.2", **REQ)


def _truth_flux(archive, result, e1=20.0, e2=100.0) -> float:
    src = archive.sky.get("Crab")
    ws = archive.index.get_many(result.meta["scw_list"])
    return float(np.average([src.energy_flux(e1, e2, 0.5 * (w.tstart + w.tstop)) for w in ws],
                            weights=[w.exposure for w in ws]))


def test_fit_cube_is_pif_fit_for_every_channel(archive):
    """The vectorised channel fit gives exactly sources.pif_fit's rates and errors."""
    from astropy.time import Time

    w = archive.index.select(83.633, 22.015, 15, Time("2016-02-01"), Time("2016-03-01"), 1)[0]
    win = load_window(archive, w)
    frame = ibis.window_frame(w.ra, w.dec, w.pa)
    x, y = frame.to_pixel(83.633, 22.015)
    shifts = [(float(y) - ibis.SKY_CENTRE[0], float(x) - ibis.SKY_CENTRE[1]), (25.0, -40.0)]
    fit = spectrum.fit_cube(win.counts, win.efficiency, win.background, win.exposure, shifts)
    for ch in (2, 17, 45):
        r, e, b = sources.pif_fit(win.counts[ch], win.efficiency, win.background, win.exposure, shifts)
        np.testing.assert_allclose(fit.rates[ch], r, rtol=1e-9)
        np.testing.assert_allclose(fit.errors[ch], e, rtol=1e-9)
        assert fit.background[ch] == pytest.approx(b, rel=1e-9)


def test_three_ogip_files_per_source_with_reference_names(spec10):
    prods = spec10.products
    kinds = [(p.kind, p.meta["src_name"]) for p in prods]
    first = kinds.index(("isgri_spectrum", "Crab"))  # one triple per catalogue source of the field
    assert kinds[first:first + 3] == [("isgri_spectrum", "Crab"), ("isgri_arf", "Crab"), ("isgri_rmf", "Crab")]
    assert len(prods) % 3 == 0 and all(p.meta["product"] == p.kind for p in prods)
    pha, arf, rmf = (p.fits for p in prods[first:first + 3])
    with fits.open(pha) as h:
        s = h["ISGR-EVTS-SPE"]
        assert s.columns.names == ["CHANNEL", "RATE", "SYS_ERR", "STAT_ERR", "QUALITY", "GROUPING"]
        assert s.columns["RATE"].unit == "count/s" and s.columns["STAT_ERR"].unit == "count/s"
        hd = s.header
        for key in ("EXPOSURE", "EXP_SRC", "ONTIME", "DEADC", "RA_OBJ", "DEC_OBJ", "SOURCEID",
                    "REVOL", "TSTART", "TSTOP"):
            assert key in hd, key
        assert hd["NAME"] == "Crab" and hd["INSTRUME"] == "IBIS" and hd["MJDREF"] == 51544.0
        assert hd["HDUCLAS2"] == "TOTAL" and hd["HDUCLAS3"] == "RATE"
        # loadable by XSPEC as written: the response files delivered with it
        assert hd["RESPFILE"] == rmf.name and hd["ANCRFILE"] == arf.name
        assert (pha.parent / hd["RESPFILE"]).exists() and (pha.parent / hd["ANCRFILE"]).exists()
        e_lo = spectrum.CHANNELS[:-1]
        q = s.data["QUALITY"]
        # 2016 (after rev 1600): below 30 keV is outside the calibrated range (OSA manual)
        assert np.all(q[e_lo < 29.9] == 2) and np.all(q[(e_lo >= 30) & (e_lo < 400)] == 0)
        assert hd["SIMULATE"] is True
        assert hd["DETCHANS"] == len(spectrum.CHANNELS) - 1 == 58
        assert 8 * 1000 < hd["EXPOSURE"] < 8 * 4000
    with fits.open(rmf) as h:
        # OSA's order (instruments.md §6.5): user code reads rmf.data_unit[2].data['MATRIX']
        assert [x.name for x in h] == ["PRIMARY", "EBOUNDS", "SPECRESP MATRIX"]
        assert h["SPECRESP MATRIX"].columns.names == ["ENERG_LO", "ENERG_HI", "N_GRP", "F_CHAN",
                                                      "N_CHAN", "MATRIX"]
        eb = h["EBOUNDS"].data
        np.testing.assert_allclose(eb["E_MIN"][0], 15.0)
        assert list(h["EBOUNDS"].columns.names) == ["CHANNEL", "E_MIN", "E_MAX"]
    with fits.open(arf) as h:
        a = h["SPECRESP"].data
        e = np.sqrt(a["ENERG_LO"] * a["ENERG_HI"])
        # the §1.5 table shape (scaled to the OSA10.2 Crab rate): peak ~1000 cm² at 50-80 keV
        assert 900 < np.interp(60.0, e, a["SPECRESP"]) < 1150
    assert prods[0].png is not None and prods[0].png.read_bytes()[:4] == b"\x89PNG"


def test_crab_photon_index_and_flux_match_injection(run, archive):
    res = run("spectral_fit", osa_version="OSA10.2", **REQ)
    (prod,) = res.products
    assert prod.meta["product"] == "spectral_fit" and prod.meta["src_name"] == "Crab"
    t = Table.read(prod.fits, hdu="SPECTRAL-FIT")
    row = {r["PARAM"]: r for r in t}
    assert row["PhoIndex"]["VALUE"] == pytest.approx(GAMMA, abs=0.05)
    assert row["PhoIndex"]["ERR_LO"] < row["PhoIndex"]["VALUE"] < row["PhoIndex"]["ERR_HI"]
    assert row["flux"]["VALUE"] == pytest.approx(_truth_flux(archive, res), rel=0.05)
    hd = fits.getheader(prod.fits, "SPECTRAL-FIT")
    assert hd["MODEL"] == "powerlaw" and hd["DOF"] > 20
    assert hd["STAT"] / hd["DOF"] < 2.0  # the response is the simulation's: a good fit
    assert prod.png.read_bytes()[:4] == b"\x89PNG"


def test_osa11_rates_scaled_fit_unchanged(run, archive, spec10):
    """OSA11.2 rates are ×1.54 at 20–40 keV; the RMF carries the scale, so the fit is the same."""
    spec11 = run("isgri_spectrum", osa_version="OSA11.2", **REQ)
    r10 = fits.getdata(spec10.products[0].fits, "ISGR-EVTS-SPE")["RATE"]
    r11 = fits.getdata(spec11.products[0].fits, "ISGR-EVTS-SPE")["RATE"]
    i0, i1 = 5, 15  # 20–30 keV channels
    ratio = r11[i0:i1].sum() / r10[i0:i1].sum()
    assert ratio == pytest.approx(ibis.osa_scale("OSA11.2", 20, 30), rel=0.02)
    assert 1.5 < ratio < 1.6
    fit = run("spectral_fit", osa_version="OSA11.2", **REQ)
    t = {r["PARAM"]: r["VALUE"] for r in Table.read(fit.products[0].fits, hdu="SPECTRAL-FIT")}
    assert t["PhoIndex"] == pytest.approx(GAMMA, abs=0.05)
    assert t["flux"] == pytest.approx(_truth_flux(archive, fit), rel=0.05)


def test_cutoffpl_on_a_power_law_finds_no_cutoff(run):
    res = run("spectral_fit", xspec_model="cutoffpl", osa_version="OSA10.2", **REQ)
    t = {r["PARAM"]: r for r in Table.read(res.products[0].fits, hdu="SPECTRAL-FIT")}
    assert t["PhoIndex"]["VALUE"] == pytest.approx(GAMMA, abs=0.1)
    assert t["HighECut"]["ERR_LO"] > 300.0  # no cut-off below 300 keV at Δχ² = 1


# -- the fitter on synthetic spectra (no archive) ------------------------------------------------

def _synthetic(model, theta, rel_noise, seed):
    rmf = spectrum.rmf_matrix("OSA10.2")
    e = np.sqrt(spectrum.E_IN[1:] * spectrum.E_IN[:-1])
    arf = ibis.effective_area(e, 1650)
    true = spectral_fit.model_rates(model, np.asarray(theta), spectrum.E_IN, arf, rmf)
    err = rel_noise * np.sqrt(np.abs(true)) + 1e-3
    rng = np.random.default_rng(seed)
    return true + err * rng.standard_normal(true.size), err, arf, rmf


@pytest.mark.parametrize("model,theta", [("powerlaw", [1.8, np.log(2e-3)]),
                                         ("cutoffpl", [1.4, 120.0, np.log(3e-3)])])
def test_chi2_fit_recovers_injected_parameters_and_errors_cover(model, theta):
    pulls = []
    for seed in range(8):
        rate, err, arf, rmf = _synthetic(model, theta, 0.05, seed)
        chans = (spectrum.CHANNELS[:-1] >= 25) & (spectrum.CHANNELS[1:] <= 600)
        fit = spectral_fit.fit_spectrum(rate, err, spectrum.E_IN, arf, rmf, chans, model)
        g = fit.values["PhoIndex"]
        pulls.append((g - theta[0]) / fit.errors["PhoIndex"])
        half = 0.5 * (fit.upper["PhoIndex"] - fit.lower["PhoIndex"])
        assert half == pytest.approx(fit.errors["PhoIndex"], rel=0.3)  # Δχ²=1 ≈ covariance
    assert np.max(np.abs(pulls)) < 4.0
    assert 0.2 < np.std(pulls) < 2.0


def test_cash_fit_on_poisson_counts():
    theta = [2.0, np.log(5e-3)]
    rmf = spectrum.rmf_matrix("OSA10.2")
    e = np.sqrt(spectrum.E_IN[1:] * spectrum.E_IN[:-1])
    arf = ibis.effective_area(e, 1650)
    expo = 5000.0
    true = spectral_fit.model_rates("powerlaw", np.asarray(theta), spectrum.E_IN, arf, rmf)
    counts = np.random.default_rng(3).poisson(true * expo)
    rate = counts / expo
    err = np.sqrt(np.maximum(counts, 1)) / expo
    chans = (spectrum.CHANNELS[:-1] >= 20) & (spectrum.CHANNELS[1:] <= 800)
    fit = spectral_fit.fit_spectrum(rate, err, spectrum.E_IN, arf, rmf, chans, "powerlaw",
                                    statistic="cash", exposure=expo)
    assert fit.values["PhoIndex"] == pytest.approx(2.0, abs=4 * fit.errors["PhoIndex"])
    assert fit.lower["PhoIndex"] < 2.0 + 4 * fit.errors["PhoIndex"]
