"""ISGRI image catalogue FLUX and position are unbiased across the field of view (issue 9, item 12).

A steady 3 Crab power law (Γ = 2.1) replaces the Crab; single windows put it at 0, 2, 3.8, 6,
7.9 and 10° off axis. The simulation and the analysis share the PIF of :mod:`mmoda_ext.science`,
so the on-axis rate of the injected spectrum must come back at every angle: stated tolerance
3 % + 3σ for the image catalogue FLUX, and the position within 0.3′ and its 90 % error radius.
Before the rates were taken at the refined position (:func:`.isgri.rates_at_refined_positions`)
the PIF fit ran at the mosaic's PSF position, 1.3-2.3′ off in these windows (resampling), and
the FLUX came back 3.5-11 % low (3.8°: 0.917, 6°: 0.928, 10°: 0.893 of the truth, σ ≈ 0.5 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.table import Table

from mmoda_ext import engine
from mmoda_ext.archive.isgri_data import band_channels, source_channel_rates
from mmoda_ext.jobs.compute import SerialContext

CRAB = ("Crab", 83.633, 22.015)
E1, E2 = 30.0, 40.0
# (window, off-axis angle in degrees) in the simulated index
CASES = [
    ("110000580010.001", 0.0),
    ("200000060010.001", 2.0),
    ("173700460010.001", 3.77),
    ("049100530010.001", 5.99),
    ("078700380010.001", 7.94),
    ("023300980010.001", 10.0),
]


@pytest.fixture(scope="module")
def archive(sky_archive):
    row = {"id": 1, "name": CRAB[0], "ra": CRAB[1], "dec": CRAB[2], "mcrab": 3000.0, "spectrum": "pl",
           "gamma1": 2.1}
    return sky_archive("isgri_offaxis", row)


def _sep_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(min(1.0, c)))


@pytest.mark.parametrize("scw_id,angle", CASES, ids=[f"{c[1]:g}deg" for c in CASES])
def test_image_flux_and_position_unbiased_off_axis(archive, tmp_path, scw_id, angle):
    name, ra, dec = CRAB
    scw = archive.index.get(scw_id)
    assert _sep_deg(scw.ra, scw.dec, ra, dec) == pytest.approx(angle, abs=0.02)
    i0, i1 = band_channels(E1, E2)
    truth = float(source_channel_rates(archive.sky.get(name), 0.5 * (scw.tstart + scw.tstop),
                                       scw.revolution)[i0:i1].sum())
    raw = {"src_name": name, "RA": ra, "DEC": dec, "scw_list": scw_id, "E1_keV": E1, "E2_keV": E2,
           "osa_version": "OSA10.2"}
    ps = engine.execute("isgri", "isgri_image", raw, SerialContext(archive, tmp_path))
    cat = Table.read(ps.find("isgri_catalog")[0].fits)
    (row,) = [r for r in cat if r["src_names"] == name]
    sep = _sep_deg(float(row["ra"]), float(row["dec"]), ra, dec) * 60
    flux, err = float(row["FLUX"]), float(row["FLUX_ERR"])
    print(f"{angle:.2f} deg: truth {truth:.2f}, image {flux:.2f} ± {err:.2f} cts/s, position {sep:.2f}'")
    assert np.isfinite(flux) and 0 < err < 0.01 * truth
    assert abs(flux - truth) <= 0.03 * truth + 3.0 * err, (angle, flux, err, truth)
    assert sep < 0.3 and sep < float(row["ERR_RAD"]) * 60, (angle, sep, float(row["ERR_RAD"]) * 60)
