"""JEM-X optics and response: the HURA, the rasterised mask, the field of view, the Crab rate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mmoda_ext.science import jemx, jemx_response


def test_hura_is_a_25_percent_difference_set():
    """22501 = 4·75²+1: the biquadratic residues are a (22501, 5625, 1406) difference set."""
    p = jemx.HURA_ORDER
    a = jemx.biquadratic_residues(p).astype(float)
    assert a.sum() == 5625 == (p - 1) // 4
    f = np.fft.rfft(a)
    auto = np.fft.irfft(f * np.conj(f), n=p)
    assert round(auto[0]) == 5625
    side = np.rint(auto[1:])
    assert side.min() == side.max() == (p - 5) // 16 == 1406
    r = jemx.hura_root(p)
    assert (r * r - r + 1) % p == 0


def test_rasterised_mask_and_detector():
    g = jemx.geometry(2)
    c = (np.arange(g.fine.shape[0]) - (g.fine.shape[0] - 1) / 2) * jemx.PIXEL_MM / jemx.SUPERSAMPLE
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= (jemx.MASK_DIAMETER_MM / 2) ** 2
    assert g.fine[inside].mean() == pytest.approx(0.25, abs=0.005)
    # whole hexagonal elements whose centre is in the disk: nothing beyond one element more
    beyond = (c[:, None] ** 2 + c[None, :] ** 2) > (jemx.MASK_DIAMETER_MM / 2 + jemx.ELEMENT_MM) ** 2
    assert g.fine[beyond].sum() == 0
    # detector: a 250 mm disk on 1.65 mm pixels
    assert g.disk.sum() * jemx.PIXEL_MM**2 == pytest.approx(math.pi * 125.0**2, rel=0.002)
    # at integer shifts the PIF is the decoding array read at the shift
    off = (g.n_mask - g.n_det) // 2
    for k in [(0, 0), (7, -12), (-40, 33)]:
        ref = g.mask[off + k[0] : off + k[0] + g.n_det, off + k[1] : off + k[1] + g.n_det]
        t = jemx.PIXEL_MM / jemx.DISTANCE_MM
        np.testing.assert_allclose(g.pif(k), ref * jemx.collimator(k[0] * t, k[1] * t), atol=1e-6)
    assert jemx.geometry(1).detector.sum() != jemx.geometry(2).detector.sum()  # per-unit dead strips


@pytest.mark.parametrize("angle,lo,hi", [(0.0, 1.0, 1.0), (2.0, 0.65, 0.8), (3.75, 0.28, 0.42),
                                         (6.0, 0.0, 0.05), (6.7, 0.0, 0.0)])
def test_vignetting_against_published_field_of_view(angle, lo, hi):
    g = jemx.geometry(2)
    s = math.tan(math.radians(angle)) * jemx.DISTANCE_MM / jemx.PIXEL_MM
    for shift in [(s, 0.0), (0.0, -s), (s / math.sqrt(2), s / math.sqrt(2))]:
        assert lo - 1e-9 <= g.response(shift) <= hi + 1e-9


def test_crab_rate_and_response_matrix():
    crab = jemx_response.crab_flux(jemx_response.ENERGY_EDGES)
    rate = jemx_response.expected_pha_rate(crab)
    assert rate.sum() == pytest.approx(135.0, rel=1e-6)
    assert rate[: jemx_response.PHA_FIRST].sum() == 0 and rate[jemx_response.PHA_LAST + 1 :].sum() == 0
    m = jemx_response.spectral_matrix()
    assert m.shape == (len(jemx_response.ENERGY_EDGES) - 1, 16)
    assert np.all(m.sum(axis=1) <= 1 + 1e-9)
    e = np.array([6.0, 10.0, 30.0])
    area = jemx_response.effective_area(e)
    assert 50 < area[0] < 90 and area[2] < area[1]
    assert jemx_response.band_channels(3.0, 20.0)[2:] == (3.04, 20.0)


def test_default_sky_crab_gives_the_real_jemx_rate():
    """instruments.md §2/§7: the Crab is ≈ 135 cts/s in JEM-X (3-35 keV, on-axis equivalent),
    while ISGRI keeps 136.3 cts/s in 20-40 keV (OSA10.2): the sky model's Crab is calibrated on both."""
    import tempfile

    from mmoda_ext.archive import default_archive
    from mmoda_ext.archive.isgri_data import band_channels, source_channel_rates
    from mmoda_ext.science import jemx_response

    crab = default_archive(tempfile.mkdtemp()).sky.get("Crab")
    jemx_rate = jemx_response.expected_pha_rate(crab.photon_flux(jemx_response.ENERGY_EDGES, 6000.0)).sum()
    assert jemx_rate == pytest.approx(135.0, rel=0.01)
    i0, i1 = band_channels(20.0, 40.0)
    assert source_channel_rates(crab, 5870.0, 1650)[i0:i1].sum() == pytest.approx(136.3, rel=0.01)
