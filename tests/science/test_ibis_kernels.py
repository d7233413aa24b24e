"""ISGRI kernels: MURA, exact PIF, decoding response and noise, reprojection, WCS."""

from __future__ import annotations

import numpy as np
import pytest

from mmoda_ext.science import coded_mask, ibis, mosaic, mura, sources
from mmoda_ext.science.tangent import TangentFrame


def test_mura_53_correlates_to_delta_1404():
    a = mura.mura(53)
    g = mura.mura_decoder(a)
    assert a.sum() == 1404
    f = np.fft.ifft2(np.conj(np.fft.fft2(a)) * np.fft.fft2(g)).real.round().astype(int)
    expected = np.zeros_like(f)
    expected[0, 0] = 1404
    assert np.array_equal(f, expected)
    m95 = mura.ibis_mask()
    assert m95.shape == (95, 95) and abs(m95.mean() - 0.5) < 0.01
    assert np.array_equal(m95[21:74, 21:74], a)


def _brute_pif(sy: float, sz: float, n: int = 40) -> np.ndarray:
    """Supersampled reference: n×n points per active pixel area, looked up in the mask."""
    m = ibis.mask()
    off = (np.arange(n) + 0.5) / n * ibis.ACTIVE_MM - ibis.ACTIVE_MM / 2
    out = np.zeros(ibis.DET_SHAPE)
    yc = (np.arange(ibis.DET_SHAPE[0]) - (ibis.DET_SHAPE[0] - 1) / 2) * ibis.PITCH_MM
    zc = (np.arange(ibis.DET_SHAPE[1]) - (ibis.DET_SHAPE[1] - 1) / 2) * ibis.PITCH_MM
    half = ibis.MASK_N * ibis.ELEMENT_MM / 2
    for dy in off:
        iy = np.floor((yc + dy + sy + half) / ibis.ELEMENT_MM).astype(int)
        oky = (iy >= 0) & (iy < ibis.MASK_N)
        for dz in off:
            iz = np.floor((zc + dz + sz + half) / ibis.ELEMENT_MM).astype(int)
            okz = (iz >= 0) & (iz < ibis.MASK_N)
            sub = m[np.clip(iy, 0, 94)][:, np.clip(iz, 0, 94)] * oky[:, None] * okz[None, :]
            out += sub
    return out / n**2


@pytest.mark.parametrize("sy,sz", [(0.0, 0.0), (13.7, -251.3), (-407.9, 88.1)])
def test_pif_equals_brute_force_supersampled_overlap(sy, sz):
    exact = ibis.pif(sy, sz)
    brute = _brute_pif(sy, sz)
    # 40×40 sampling: the edge error per pixel is at most ~2 · 1/40
    assert np.abs(exact - brute).max() < 0.05
    assert abs(exact.sum() - brute.sum()) / exact.sum() < 2e-3


def test_decoding_array_equals_pif_at_integer_shifts():
    m_open, _ = ibis.decoding_arrays()
    oy, oz = ibis.DECODE_OFFSET
    for ky, kz in [(0, 0), (17, -40), (-45, 50), (50, -52)]:
        window = m_open[oy + ky : oy + ky + 134, oz + kz : oz + kz + 130]
        assert np.allclose(ibis.pif_at(ky, kz), window, atol=1e-12)


def _detector(seed=0, dead_fraction=0.01):
    rng = np.random.default_rng(seed)
    mm = ibis.module_map()
    eff = np.where(mm >= 0, (0.93 + 0.06 * rng.random(8))[mm], 0.0)
    eff[rng.random(eff.shape) < dead_fraction] = 0.0
    bkg = np.where(mm >= 0, (1 + 0.05 * rng.standard_normal(8))[mm] * (1 + 0.02 * rng.standard_normal(mm.shape)), 0.0)
    return eff, bkg


@pytest.mark.parametrize("ky,kz", [(0, 0), (25, -30), (70, 60), (110, 0), (-100, -90), (0, -155)])
def test_noiseless_source_reads_injected_rate_150_from_0_to_13_deg(ky, kz):
    eff, bkg = _detector()
    dec = coded_mask.Decoder(eff, bkg)
    t, rate = 2000.0, 150.0
    counts = rate * sources.source_model(eff, t, ky, kz) + 20.0 * eff * bkg
    img = dec.decode(counts, t)
    r, c = ibis.SKY_CENTRE[0] + ky, ibis.SKY_CENTRE[1] + kz
    off_axis = np.degrees(np.arctan(np.hypot(ky, kz) * ibis.PITCH_MM / ibis.DISTANCE_MM))
    assert off_axis < 13.5
    assert img.intensity[r, c] == pytest.approx(rate, rel=1e-5)  # float32 FFTs: 150.000


def test_pif_fit_reads_rate_at_fractional_position():
    eff, bkg = _detector(1)
    t = 2000.0
    counts = 150.0 * sources.source_model(eff, t, 40.3, -12.6) + 180.0 * eff * bkg
    rates, errs, beta = sources.pif_fit(counts, eff, bkg, t, [(40.3, -12.6)])
    assert rates[0] == pytest.approx(150.0, rel=1e-9) and beta == pytest.approx(180.0, rel=1e-9)


def _blank_significance(eff, bkg, n=4, seed=3):
    rng = np.random.default_rng(seed)
    dec = coded_mask.Decoder(eff, bkg)
    t = 2000.0
    out = []
    for _ in range(n):
        counts = rng.poisson(t * 1550.0 / 16384 * eff * bkg)
        out.append(dec.decode(counts, t).significance[dec.valid])
    return np.concatenate(out)


def test_blank_detector_noise_is_45_over_sqrt_T():
    eff, bkg = _detector(2)
    dec = coded_mask.Decoder(eff, bkg)
    t = 2000.0
    counts = np.random.default_rng(5).poisson(t * 1550.0 / 16384 * eff * bkg)
    sigma = np.sqrt(np.nanmin(dec.decode(counts, t).variance))
    assert sigma * np.sqrt(t) == pytest.approx(45.0, rel=0.1)


def test_module_gap_dead_module_and_5pct_dead_pixels_make_no_spurious_source():
    eff, bkg = _detector(4, dead_fraction=0.05)
    mm = ibis.module_map()
    eff[mm == 3] = 0.0  # a whole module off
    s = _blank_significance(eff, bkg)
    assert abs(s.mean()) < 0.05 and abs(s.std() - 1) < 0.05
    assert np.abs(s).max() < 6.0


def test_decoder_cache_reuses_operator_for_same_maps():
    eff, bkg = _detector(6)
    a = coded_mask.decoder_for(eff, bkg)
    assert coded_mask.decoder_for(eff.copy(), bkg.copy()) is a
    assert coded_mask.decoder_for(eff, bkg, reuse=False) is not a


def test_homography_matches_astropy_wcs():
    win = ibis.window_frame(83.0, 20.0, 37.0)
    mos = TangentFrame(85.0, 22.0, 0.0, mosaic.MOSAIC_PIXEL_DEG, (300.0, 300.0), (601, 601))
    xs, ys = np.array([5.0, 181.0, 300.0]), np.array([9.0, 183.0, 350.0])
    ra, dec = win.wcs().pixel_to_world_values(xs, ys)
    xm, ym = mos.wcs().world_to_pixel_values(ra, dec)
    h = win.homography_to(mos)
    p = np.stack([xs, ys, np.ones(3)], 1) @ h.T
    assert np.allclose(p[:, 0] / p[:, 2], xm, atol=1e-6)
    assert np.allclose(p[:, 1] / p[:, 2], ym, atol=1e-6)


def test_nearest_reprojection_keeps_significance_unit_variance():
    eff, bkg = _detector(7)
    dec = coded_mask.Decoder(eff, bkg)
    rng = np.random.default_rng(8)
    t = 2000.0
    img = dec.decode(rng.poisson(t * 1550.0 / 16384 * eff * bkg), t)
    win = ibis.window_frame(10.0, 40.0, 23.0)
    mos = mosaic.mosaic_frame(10.5, 40.5, [win])
    acc = mosaic.MosaicAccumulator(mos).add(mosaic.reproject_window(img, win, mos))
    s = acc.result().significance
    s = s[np.isfinite(s)]
    assert s.size > 80000
    assert abs(s.std() - 1.0) < 0.03


def test_osa_scale_20_40_is_crab_ratio():
    assert ibis.osa_scale("OSA10.2", 20, 40) == 1.0
    assert ibis.osa_scale("OSA11.2", 20, 40) == pytest.approx(209.8 / 136.3, rel=1e-3)


def test_detect_reports_a_source_once_even_with_a_secondary_peak():
    """A flat-topped source with four local maxima whose PSF fits all converge on its centre:
    one catalogue row (never twice)."""
    from mmoda_ext.archive.sky import SkyModel
    from mmoda_ext.instruments.isgri import detect
    from mmoda_ext.science.coded_mask import DecodedImage
    from mmoda_ext.science.mosaic import mosaic_frame

    frame = mosaic_frame(10.0, 10.0, [])
    n = frame.shape[0]
    yy, xx = np.mgrid[:n, :n].astype(float)
    c = (n - 1) / 2.0
    r2 = (xx - c) ** 2 + (yy - c) ** 2
    img = 50.0 * np.exp(-0.5 * r2 / 3.0**2) - 12.0 * np.exp(-0.5 * r2)
    mos = DecodedImage(img, np.full_like(img, 0.01), np.ones_like(img))
    assert len(sources.find_peaks(mos.significance, 7.0)) == 4
    dets = detect(mos, frame, SkyModel([]), 7.0)
    assert len(dets) == 1 and dets[0]["name"] == "NEW_1"
