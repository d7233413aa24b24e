"""ANTARES: Feldman-Cousins against the published table, the MMODA numbers on the real sample,
the simulated default sample, and the product tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from mmoda_ext.access.rights import Rights
from mmoda_ext.archive.antares_data import AntaresData
from mmoda_ext.engine import prepare, run
from mmoda_ext.errors import ParameterError
from mmoda_ext.jobs.compute import SerialContext
from mmoda_ext.science.antares import background_count, count_events, upper_limits
from mmoda_ext.science.feldman_cousins import fc_interval

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "antares"
needs_real = pytest.mark.skipif(not (REAL / "ANTARES.data").exists(), reason="shared ANTARES sample absent")
GC = dict(ra=265.97845833, dec=-29.74516667, roi=2.5, index_min=1.5, index_max=3.0)

# Feldman & Cousins 1998, Table IV (90% CL): (n0, b) -> (lower, upper)
FC_TABLE = {
    (0, 0.0): (0.00, 2.44), (1, 0.0): (0.11, 4.36), (2, 0.0): (0.53, 5.91), (3, 0.0): (1.10, 7.42),
    (4, 0.0): (1.47, 8.60), (5, 0.0): (1.84, 9.99), (6, 0.0): (2.21, 11.47), (7, 0.0): (3.56, 12.53),
    (8, 0.0): (3.96, 13.99), (9, 0.0): (4.36, 15.30), (10, 0.0): (5.50, 16.50),
    (0, 0.5): (0.00, 1.94), (0, 1.0): (0.00, 1.61), (1, 1.0): (0.00, 3.36),
    (1, 3.0): (0.00, 1.88), (2, 3.0): (0.00, 3.04), (3, 3.0): (0.00, 4.42), (4, 3.0): (0.00, 5.60),
    (5, 3.0): (0.00, 6.99), (6, 3.0): (0.15, 8.47), (7, 3.0): (0.89, 9.53), (8, 3.0): (1.51, 10.99),
    (9, 3.0): (1.88, 12.30), (10, 3.0): (2.63, 13.50),
}


@pytest.mark.parametrize("key", sorted(FC_TABLE))
def test_feldman_cousins_table(key):
    lo, hi = fc_interval(*key)  # ROOT defaults: MuMax 50, step 0.005
    assert lo == pytest.approx(FC_TABLE[key][0], abs=0.011)
    assert hi == pytest.approx(FC_TABLE[key][1], abs=0.011)


def test_feldman_cousins_root_first_exclusion():
    """Where the belt is not monotonic ROOT stops at the first excluded mu: 0.96 (paper: 1.08)."""
    assert fc_interval(0, 3.0)[1] == pytest.approx(0.955, abs=0.006)


@needs_real
def test_mmoda_numbers_on_real_sample():
    s = AntaresData(data_dir=str(REAL)).load()
    assert s.n_used == 5921 and s.n_total == 8754
    r = upper_limits(GC["ra"], GC["dec"], GC["roi"], GC["index_min"], GC["index_max"],
                     s.ra, s.dec, s.bkg_coeffs, s.acc_table)
    assert round(r.n_bkg, 2) == 6.17
    assert r.n_obs == 5 and r.branch == "sensitivity"
    assert r.n_ul == pytest.approx(5.58, abs=0.01)  # ROOT construction gives 5.572
    g, norm = r.norm_at(2.0)
    assert g == pytest.approx(2.01, abs=1e-6)
    assert norm == pytest.approx(2.4e-8, rel=0.03)
    e2f = np.interp([3.0, 5.0], np.log10(r.energy), r.e2flux)
    assert e2f[0] == pytest.approx(1.9e-7, rel=0.03) and e2f[1] == pytest.approx(2.2e-8, rel=0.03)


@needs_real
def test_plugin_truncation_flag():
    full = AntaresData(data_dir=str(REAL), plugin_truncation=False).load()
    cut = AntaresData(data_dir=str(REAL), plugin_truncation=True).load()
    assert full.n_used == 8754
    assert count_events(100.0, -60.0, 2.5, cut.ra, cut.dec) == 0  # no event below -51.6 deg is read
    assert count_events(100.0, -60.0, 2.5, full.ra, full.dec) > 0


def test_simulated_sample_follows_background_polynomial():
    s = AntaresData(data_dir="").load()
    assert s.source.startswith("simulated") and 8000 < s.n_used < 9500
    rng = np.random.default_rng(1)
    for dec in (-70.0, -30.0, 10.0):
        ras = rng.uniform(0, 360, 60)
        obs = np.mean([count_events(ra, dec, 2.5, s.ra, s.dec) for ra in ras])
        assert obs == pytest.approx(background_count(dec, 2.5, s.bkg_coeffs), rel=0.15)


def test_product_tables(tmp_path, monkeypatch):
    monkeypatch.delenv("MMODA_ANTARES_DATA", raising=False)
    raw = {"RA": 83.63, "DEC": 22.01, "radius": 1.0, "T1": "2017-01-01"}  # T1 accepted and ignored
    inst, params = prepare("antares", "antares_spectrum", raw, Rights(), None)
    assert "T1" not in params and "T1" not in inst.param_set("antares_spectrum").names()
    ps = run("antares", "antares_spectrum", params, SerialContext(None, tmp_path))
    sed, byind = ps.products
    t = Table.read(sed.fits)
    assert t.colnames == ["E", "flux_UL * E^2"] and len(t) == 100
    assert t["E"].unit == "GeV" and t["E"][0] == pytest.approx(0.1) and t["E"][-1] == pytest.approx(1e6)
    with fits.open(byind.fits) as f:
        assert f[1].columns.names == ["Index", "1GeV_norm"]
    b = Table.read(byind.meta["ecsv"], format="ascii.ecsv")
    assert len(b) == 50 and b["Index"][-1] == pytest.approx(3.0) and b["Index"][0] == pytest.approx(1.53)
    assert b.meta["RA"] == 83.63 and np.all(b["1GeV_norm"] > 0)
    assert sed.png.stat().st_size > 10000
    assert any("upper limit" in m for m in ps.messages)


def test_declination_bound():
    with pytest.raises(ParameterError, match="-80 to 50"):
        prepare("antares", "antares_spectrum", {"RA": 10, "DEC": -85}, Rights(), None)
    with pytest.raises(ParameterError, match="radius"):
        prepare("antares", "antares_spectrum", {"RA": 10, "DEC": 0, "radius": 3}, Rights(), None)


def test_products_say_whether_the_events_are_simulated(tmp_path, monkeypatch):
    """The default sample is simulated: FITS headers (SIMULATE = T) and the PNG say so."""
    from astropy.io import fits

    from mmoda_ext import engine
    from mmoda_ext.jobs.compute import SerialContext

    monkeypatch.delenv("MMODA_ANTARES_DATA", raising=False)
    ps = engine.execute("antares", "antares_spectrum", {}, SerialContext(None, tmp_path))
    for p in ps.products:
        assert fits.getheader(p.fits, 1)["SIMULATE"] is True
        assert fits.getheader(p.fits, 0)["TELESCOP"] == "ANTARES"
    assert ps.products[0].png.stat().st_size > 10000
