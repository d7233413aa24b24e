"""IBIS/ISGRI geometry, mask, exact pixel illumination fractions and response.

Geometry is that of OSA's imaging code (``instruments.md`` §1.1–1.2): a 95×95 mask of
11.2 mm elements (MURA-53 extended cyclically) 3202.97 mm above a 134×130 decoding grid
of 4.6 mm pixels with 4.0 mm active area, 8 modules of 32×64 pixels with dead gaps.

**Exact PIF.** Mask elements and pixels are axis-aligned grids, so the open fraction of a
pixel's active square seen from a source at mask-plane shift ``(sy, sz)`` mm is a product
of 1-D overlap-length matrices: ``PIF = Ly @ M @ Lz.T / 4.0**2``.

**Decoding array.** The mask resampled on the pixel grid by the same active-area overlap
(234×234, :func:`decoding_arrays`); at an integer sky shift ``k`` the PIF of a source is the
234×234 array read from ``k + offset``: decoding and the response are the same numbers.

**Sky image.** Shifts of whole pixels are TAN steps of ``4.6/3202.97`` in tan(angle): the
decoded image is 367×363 pixels of 0.0822862° (:data:`SKY_SHAPE`, :func:`window_frame`).

**Rate convention.** ``R`` (cts/s) is the source count rate on the whole active detector
for the source on axis with unit efficiency: pixel counts are
``T · R · PIF · eff / N_ON_AXIS`` where ``N_ON_AXIS`` = Σ PIF over the 128×128 active pixels on
axis (≈ 8192). With the effective area of :func:`effective_area` (open fraction included)
this is the OSA10.2 count scale (Crab ≈ 136 cts/s at 20–40 keV); OSA11 rates differ by the
band-dependent factors of :func:`osa_scale`, applied at analysis time.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.special import ndtr

from .mura import ibis_mask
from .tangent import TangentFrame

__all__ = [
    "MASK_N", "ELEMENT_MM", "DISTANCE_MM", "PITCH_MM", "ACTIVE_MM", "DET_SHAPE", "MODULE_ORIGINS",
    "SKY_SHAPE", "SKY_CENTRE", "PIXEL_DEG", "DECODE_N", "DECODE_OFFSET", "N_ON_AXIS",
    "module_map", "pif", "pif_at", "decoding_arrays", "window_frame",
    "ISGRI_CHANNELS", "effective_area", "low_threshold", "resolution_fwhm", "response_matrix",
    "OSA_VERSIONS", "osa_scale",
]

MASK_N = 95
ELEMENT_MM = 11.2
DISTANCE_MM = 3202.97
PITCH_MM = 4.6
ACTIVE_MM = 4.0
DET_SHAPE = (134, 130)  # (y rows, z columns)
#: module origins (y, z) on the 134×130 grid; each module is 32 rows × 64 columns
MODULE_ORIGINS = [(102, 66), (68, 66), (34, 66), (0, 66), (102, 0), (68, 0), (34, 0), (0, 0)]
DECODE_N = 234  # mask resampled on the pixel pitch
DECODE_OFFSET = ((DECODE_N - DET_SHAPE[0]) // 2, (DECODE_N - DET_SHAPE[1]) // 2)  # (50, 52)
SKY_SHAPE = (DET_SHAPE[0] + DECODE_N - 1, DET_SHAPE[1] + DECODE_N - 1)  # (367, 363)
SKY_CENTRE = (DET_SHAPE[0] - 1 + DECODE_OFFSET[0], DET_SHAPE[1] - 1 + DECODE_OFFSET[1])  # (183, 181)
PIXEL_DEG = float(np.degrees(PITCH_MM / DISTANCE_MM))  # 0.0822862...


def _pixel_centres(n: int) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2.0) * PITCH_MM


_MASK_EDGES = (np.arange(MASK_N + 1) - MASK_N / 2.0) * ELEMENT_MM
_Y_CENTRES = _pixel_centres(DET_SHAPE[0])
_Z_CENTRES = _pixel_centres(DET_SHAPE[1])
_V_CENTRES = _pixel_centres(DECODE_N)


def _overlap(centres: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """Overlap length (mm) of each pixel's active interval with each mask element."""
    lo = centres + shift - ACTIVE_MM / 2
    hi = centres + shift + ACTIVE_MM / 2
    return np.clip(
        np.minimum(hi[:, None], _MASK_EDGES[None, 1:]) - np.maximum(lo[:, None], _MASK_EDGES[None, :-1]),
        0.0,
        None,
    )


@cache
def mask() -> np.ndarray:
    """95×95 open (1) / closed (0) mask, float64 for the overlap products."""
    return ibis_mask().astype(np.float64)


@cache
def module_map() -> np.ndarray:
    """Module index 0–7 of each grid pixel, -1 in the dead gaps."""
    out = -np.ones(DET_SHAPE, dtype=np.int8)
    for k, (y0, z0) in enumerate(MODULE_ORIGINS):
        out[y0 : y0 + 32, z0 : z0 + 64] = k
    return out


def pif(shift_y_mm: float, shift_z_mm: float) -> np.ndarray:
    """Exact illuminated fraction of each pixel's active area for a mask-plane shift (mm).

    Pixel ``(i, j)`` sees the mask at its own position plus the shift (shift = distance ×
    tan of the off-axis angle along y and z). Gap pixels are included (they are masked by
    the efficiency map, not here).
    """
    # an active pixel (4 mm) meets at most two mask elements (11.2 mm) along each axis, so the
    # product ly @ mask @ lz.T is two gathers (no BLAS call: it stays fast in busy processes)
    (ya, yw0, yw1), (za, zw0, zw1) = _two_elements(_Y_CENTRES, shift_y_mm), _two_elements(_Z_CENTRES, shift_z_mm)
    m = _padded_mask()
    rows = yw0[:, None] * m[ya] + yw1[:, None] * m[ya + 1]  # (n_y, MASK_N + 2)
    return (rows[:, za] * zw0 + rows[:, za + 1] * zw1) / ACTIVE_MM**2


@cache
def _padded_mask() -> np.ndarray:
    """The mask with a closed border row/column, so that elements off the mask read 0."""
    out = np.zeros((MASK_N + 2, MASK_N + 2))
    out[1:-1, 1:-1] = mask()
    return out


def _two_elements(centres: np.ndarray, shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel: padded index of the first mask element its active interval meets, and the
    overlap lengths (mm) with that element and the next (what :func:`_overlap` holds)."""
    lo = centres + shift - ACTIVE_MM / 2
    hi = lo + ACTIVE_MM
    j = np.floor((lo - _MASK_EDGES[0]) / ELEMENT_MM).astype(np.int64)
    edge = _MASK_EDGES[0] + (j + 1) * ELEMENT_MM  # right edge of element j
    w0 = np.clip(np.minimum(hi, edge) - lo, 0.0, None)
    w1 = np.clip(hi - edge, 0.0, None)
    out_of_mask = j + 1 < 0
    idx = np.clip(j + 1, 0, MASK_N + 1)  # padded index of element j; border rows are closed
    w0 = np.where(out_of_mask | (j >= MASK_N), 0.0, w0)
    w1 = np.where((j + 1 >= MASK_N) | (j + 1 < 0), 0.0, w1)
    return np.minimum(idx, MASK_N), w0, w1


def pif_at(ky: float, kz: float) -> np.ndarray:
    """PIF of a source at (fractional) sky-pixel shift ``(ky, kz)`` from the pointing axis."""
    return pif(ky * PITCH_MM, kz * PITCH_MM)


@cache
def _n_on_axis() -> float:
    return float(pif(0.0, 0.0)[module_map() >= 0].sum())


N_ON_AXIS = _n_on_axis()


@cache
def decoding_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(open, support): mask and mask support resampled on the 234×234 pixel-pitch grid.

    ``open[i + DECODE_OFFSET + k] == pif_at(*k)[i]`` for integer shifts ``k``; the closed
    part used in balancing is ``support - open`` (the shield is opaque beyond the mask).
    """
    lv = _overlap(_V_CENTRES)
    m_open = (lv @ mask() @ lv.T) / ACTIVE_MM**2
    s = lv.sum(axis=1) / ACTIVE_MM
    return m_open, np.outer(s, s)


def window_frame(ra: float, dec: float, pa: float) -> TangentFrame:
    """The TAN frame of a window's decoded sky image: row = y shift, column = z shift."""
    return TangentFrame(
        ra0=float(ra), dec0=float(dec), pa=float(pa), scale_deg=PIXEL_DEG,
        crpix=(float(SKY_CENTRE[1]), float(SKY_CENTRE[0])), shape=SKY_SHAPE,
    )


# --------------------------------------------------------------------------------------
# Energy channels and response
# --------------------------------------------------------------------------------------

#: channel edges (keV): 1 keV to 30, 2 keV to 60, 5 keV to 100, then 20 log steps to 1000
ISGRI_CHANNELS = np.concatenate(
    [
        np.arange(15.0, 30.0, 1.0),
        np.arange(30.0, 60.0, 2.0),
        np.arange(60.0, 100.0, 5.0),
        np.round(100.0 * 10.0 ** (np.arange(0, 21) / 20.0), 3),
    ]
)

# Effective area through the mask (cm²), rev 2197 RMF (instruments.md §1.5); the points at
# 15 and 20 keV are divided by that revolution's low-threshold efficiency to give the
# intrinsic curve (flat at the 30 keV value below 30 keV).
_AEFF_E = np.array([10.0, 15, 20, 30, 50, 80, 100, 150, 200, 300, 500, 800, 1000, 1300])
_AEFF_A = np.array([844.0, 844, 844, 844, 1137, 1145, 876, 410, 242, 130, 93, 81, 76, 70])


def low_threshold(e_kev, revolution: float) -> np.ndarray:
    """Low-threshold efficiency: a Gaussian-CDF edge whose centre and width rise with time.

    Centre 12.0 keV at launch -> 14.6 keV at rev 2197, width 3 -> 5 keV; at rev 2197 this
    reproduces the RMF's 449 cm² at 15 keV and 724 cm² at 20 keV.
    """
    f = np.clip(float(revolution) / 2197.0, 0.0, 1.4)
    centre, width = 12.0 + 2.6 * f, 3.0 + 2.0 * f
    return ndtr((np.asarray(e_kev, float) - centre) / width)


#: The RMF-derived curve scaled so that the Crab (Roques & Jourdain 2018 spectrum) gives the
#: measured OSA10.2 rate, 136.3 cts/s in 20–40 keV, in 2016 (rev 1650): the OSA10.2 scale.
AEFF_SCALE = 0.93362


def effective_area(e_kev, revolution: float = 1650.0) -> np.ndarray:
    """On-axis effective area (cm², mask open fraction included) at energy(ies) ``e_kev``."""
    e = np.asarray(e_kev, float)
    a = np.exp(np.interp(np.log(e), np.log(_AEFF_E), np.log(_AEFF_A)))
    return AEFF_SCALE * a * low_threshold(e, revolution)


def resolution_fwhm(e_kev) -> np.ndarray:
    """Energy resolution FWHM (keV): 8 % at 60 keV, scaling as √E."""
    return 0.08 * 60.0 * np.sqrt(np.asarray(e_kev, float) / 60.0)


#: photon-energy grid on which source spectra are integrated before redistribution
E_IN = np.geomspace(10.0, 1300.0, 321)


@cache
def _redistribution() -> np.ndarray:
    """P(channel | true energy bin): Gaussian resolution, rows = E_IN bins."""
    e = np.sqrt(E_IN[1:] * E_IN[:-1])
    sig = resolution_fwhm(e) / 2.3548
    cdf = ndtr((ISGRI_CHANNELS[None, :] - e[:, None]) / sig[:, None])
    return np.diff(cdf, axis=1)


def response_matrix(revolution: float) -> np.ndarray:
    """(n_E_IN bins, n_channels) cm²: photon flux per E_IN bin -> count rate per channel."""
    e = np.sqrt(E_IN[1:] * E_IN[:-1])
    return effective_area(e, revolution)[:, None] * _redistribution()


# --------------------------------------------------------------------------------------
# OSA version rate scale
# --------------------------------------------------------------------------------------

OSA_VERSIONS = ("OSA10.2", "OSA11.0", "OSA11.2", "OSA11.2-beta")
# Crab rates OSA11.0 / OSA10.2 (integral-isgri-rate-meaning): 209.8/136.3, 76.3/37.3, 52.6/32.8
_SCALE_E = np.array([30.0, 50.0, 80.0])
_SCALE_OSA11 = np.array([209.8 / 136.3, 76.3 / 37.3, 52.6 / 32.8])


def osa_scale(version: str, e1: float, e2: float) -> float:
    """Factor turning raw (OSA10.2-scale) rates into the rate scale of ``version``.

    OSA10.2 is the raw scale (1.0). OSA11.x multiplies by the measured Crab-rate ratio at
    the band's logarithmic centre (1.54 at 20–40 keV), held constant outside 30–80 keV.
    """
    if version.startswith("OSA10"):
        return 1.0
    centre = float(np.sqrt(e1 * e2))
    return float(np.interp(np.log(centre), np.log(_SCALE_E), _SCALE_OSA11))
