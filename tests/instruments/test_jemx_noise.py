"""JEM-X noise calibrated on a real MMODA JEM-X1 Crab light curve (``instruments.md`` §2).

Real (ScW 010200230010, 1920 s, 3.04–34.88 keV, 3.74° off axis, VIGNET 0.30): RATE ≈ 136
cts/s (vignetting corrected), ERROR ≈ 15 cts/s in 20 s bins, DETSIG 82.9 for the window.
Simulated here: the default sky's Crab in JEM-X1 in window 012700100010 (1867 s, 3.77° off
axis), the closest match in the simulated archive. Stated tolerances: the window significance
60–110 and the median 20 s error 10–20 cts/s (of order the real figures); the 20 s rates
scatter as their errors say (χ²/dof 0.75–1.3), their mean is the injected rate within 3 %,
and BRATE is the injected background under the source within 5 %.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from mmoda_ext import engine
from mmoda_ext.archive import jemx_data
from mmoda_ext.jobs.compute import SerialContext
from mmoda_ext.science import jemx, jemx_response

SCW = "012700100010.001"
RA, DEC = 83.633, 22.015
REAL_ERROR_20S, REAL_DETSIG = 15.0, 82.9


@pytest.fixture(scope="module")
def crab(sky_archive):
    archive = sky_archive("jemx_noise")
    raw = {"src_name": "Crab", "RA": RA, "DEC": DEC, "scw_list": SCW, "jemx_num": 1,
           "E1_keV": 3.0, "E2_keV": 35.0}
    return archive, raw


def _truth(archive) -> float:
    rate = jemx_response.expected_pha_rate(archive.sky.get("Crab").photon_flux(jemx_response.ENERGY_EDGES, 4300.0))
    return float(rate[jemx_response.PHA_FIRST : jemx_response.PHA_LAST + 1].sum())


def test_crab_window_significance_is_the_real_one(crab, tmp_path):
    archive, raw = crab
    ps = engine.execute("jemx", "jemx_image", raw, SerialContext(archive, tmp_path))
    (row,) = [d for d in ps.meta["catalog"] if d["name"] == "Crab"]
    assert 60.0 <= row["significance"] <= 110.0, (row["significance"], REAL_DETSIG)
    print(f"image significance {row['significance']:.1f}")


def test_crab_20s_light_curve_errors_are_the_real_ones(crab, tmp_path):
    archive, raw = crab
    ps = engine.execute("jemx", "jemx_lc", {**raw, "time_bin": 20}, SerialContext(archive, tmp_path))
    path = ps.find("jemx_lc")[0].fits
    lc = Table.read(path, hdu="JMX1-SRC.-LCR")
    full = np.asarray(lc["FRACEXP"]) > 0.9
    rate, err = np.asarray(lc["RATE"], float)[full], np.asarray(lc["ERROR"], float)[full]
    assert full.sum() > 80
    assert 10.0 <= np.median(err) <= 20.0, (np.median(err), REAL_ERROR_20S)
    truth = _truth(archive)
    mean = np.sum(rate / err**2) / np.sum(1 / err**2)
    assert mean == pytest.approx(truth, rel=0.03)
    chi2 = np.sum(((rate - truth) / err) ** 2) / rate.size
    assert 0.75 < chi2 < 1.3  # the errors are honest: the scatter is what they say
    detsig = mean * np.sqrt(np.sum(1 / err**2))  # the window's significance from its 20 s bins
    print(f"median 20 s error {np.median(err):.2f}, rate {mean:.1f}, chi2/dof {chi2:.2f}, "
          f"fit significance {detsig:.1f}, BRATE {np.median(np.asarray(lc['BRATE'])[full]):.1f}")
    assert 60.0 <= detsig <= 110.0, detsig

    # BRATE: the simulated background under the source (PIF-weighted), on RATE's scale
    scw = archive.index.get(SCW)
    win = jemx_data.load_window(archive, scw, 1)
    frame = jemx.window_frame(scw.ra, scw.dec, scw.pa, 1)
    x, y = frame.to_pixel(RA, DEC)
    g = jemx.geometry(1)
    pif = g.pif((float(y) - g.sky_centre, float(x) - g.sky_centre))
    wu = win.efficiency * win.background
    vign = g.response((float(y) - g.sky_centre, float(x) - g.sky_centre), win.efficiency)
    expected = fits.getheader(jemx_data.window_path(archive, scw, 1))["BKGRATE"] * (pif * wu).sum() / wu.sum() / vign
    assert np.median(np.asarray(lc["BRATE"])[full]) == pytest.approx(expected, rel=0.05)

