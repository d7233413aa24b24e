"""JEM-X geometry: the HURA mask, the detector, the PIF and the vignetting.

Why these choices (``instruments.md`` §2):

* **Mask pattern.** 22 501 = 4·75² + 1 is a prime with 75 odd, so its non-zero biquadratic
  (4th-power) residues form a cyclic (22501, 5625, 1406) difference set: exactly 25 % open,
  uniformly redundant. 22 501 ≡ 1 (mod 3), so r² − r + 1 ≡ 0 (mod p) has a root (r = 1133) and
  the set maps onto a hexagonal lattice as A(i, j) = [(i + r·j) mod p ∈ Q₄] (Finger & Prince
  1985 HURA construction). This reproduces the published "HURA, 22 501 elements, 25 % open"
  exactly. Elements are hexagons, 3.3 mm flat to flat, kept inside a 535 mm disk (the rim
  repeats a few residues cyclically).
* **Rasterisation.** Detector pixels are square, 1.65 mm (half an element: the smallest
  pitch that still resolves the element edges; sky pixel atan(1.65/3400) = 1.67′). The mask
  transmission is rasterised on a grid ``SUPERSAMPLE`` times finer (0.275 mm). A PIF is the
  fine mask shifted by the source direction (to the nearest 0.275 mm = 0.28′) and averaged
  over each pixel's area: exact up to that quantisation. The decoding array is the same fine
  mask block-averaged to the pixel pitch, so at integer sky pixels it equals the PIF.
* **Detector.** A 250 mm disk (fraction of each pixel inside it), a few dead anode strips per
  unit. No photon reaches the detector except through the mask (collimator and shield).
* **Collimator.** A square-cell collimator, transmission (1 − |tan θy|/t₀)(1 − |tan θz|/t₀)
  with tan-limit t₀ = tan 9°. With the coded fraction the response is 0.57 at 3°, 0.32–0.38
  at 3.75° (real MMODA Crab LC: VIGNET 0.30 at 3.74°), 0.07 at 5.5° and zero beyond 6.6°
  (13.2° diameter, Lund et al. 2003); the half response falls at ≈ 3.2° rather than the
  published 3.75°, a compromise in favour of the real VIGNET value.

Sky ↔ detector: with a flat detector under a flat mask the shadow of a source is shifted by
D·(X, Y), where (X, Y) are its gnomonic (TAN) coordinates about the pointing axis. So a TAN
WCS with CDELT = atan(pixel/D) maps sky pixels to integer shadow shifts exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np

from .coded_mask import MaskOptics
from .tangent import TangentFrame

__all__ = [
    "DISTANCE_MM",
    "ELEMENT_MM",
    "MASK_DIAMETER_MM",
    "DETECTOR_DIAMETER_MM",
    "PIXEL_MM",
    "SUPERSAMPLE",
    "HURA_ORDER",
    "PIXEL_DEG",
    "JemxGeometry",
    "biquadratic_residues",
    "hura_root",
    "geometry",
    "window_frame",
    "collimator",
    "optics",
]

DISTANCE_MM = 3400.0
ELEMENT_MM = 3.3
MASK_DIAMETER_MM = 535.0
DETECTOR_DIAMETER_MM = 250.0
PIXEL_MM = 1.65
SUPERSAMPLE = 6
HURA_ORDER = 22501
COLLIMATOR_TAN_LIMIT = math.tan(math.radians(9.0))
PIXEL_DEG = math.degrees(PIXEL_MM / DISTANCE_MM)  # TAN plane step: tan(angle) per pixel


def biquadratic_residues(p: int) -> np.ndarray:
    """Boolean array of length p: True where i is a non-zero 4th power modulo the prime p."""
    x = np.arange(1, p, dtype=np.int64)
    sq = x * x % p
    out = np.zeros(p, dtype=bool)
    out[sq * sq % p] = True
    return out


def hura_root(p: int) -> int:
    """Smallest r with r² − r + 1 ≡ 0 (mod p): the 60°-rotation multiplier of a HURA."""
    r = np.arange(p, dtype=np.int64)
    roots = np.nonzero((r * r - r + 1) % p == 0)[0]
    if roots.size == 0:
        raise ValueError(f"no hexagonal root modulo {p} (need p ≡ 1 mod 3)")
    return int(roots[0])


def _hex_round(q: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinates of the nearest triangular-lattice point (cube rounding)."""
    s = -q - r
    rq, rr, rs = np.rint(q), np.rint(r), np.rint(s)
    dq, dr, ds = np.abs(rq - q), np.abs(rr - r), np.abs(rs - s)
    fix_q = (dq > dr) & (dq > ds)
    fix_r = ~fix_q & (dr > ds)
    rq = np.where(fix_q, -rr - rs, rq)
    rr = np.where(fix_r, -rq - rs, rr)
    return rq.astype(np.int64), rr.astype(np.int64)


def _fine_mask(n_fine: int, step_mm: float, p: int = HURA_ORDER) -> np.ndarray:
    """Mask transmission (uint8 0/1) on a square grid of ``n_fine`` cells of ``step_mm``."""
    open_set = biquadratic_residues(p)
    root = hura_root(p)
    c = (np.arange(n_fine) - (n_fine - 1) / 2.0) * step_mm
    y, x = np.meshgrid(c, c, indexing="ij")
    # element centres at a·(i + j/2, j·√3/2): invert to fractional axial coordinates
    jf = y / (ELEMENT_MM * math.sqrt(3.0) / 2.0)
    i_f = x / ELEMENT_MM - jf / 2.0
    i, j = _hex_round(i_f, jf)
    cx = ELEMENT_MM * (i + j / 2.0)
    cy = ELEMENT_MM * j * math.sqrt(3.0) / 2.0
    inside = cx**2 + cy**2 <= (MASK_DIAMETER_MM / 2.0) ** 2
    return (open_set[(i + root * j) % p] & inside).astype(np.uint8)


def _disk_fraction(n: int, pitch_mm: float, diameter_mm: float, sub: int) -> np.ndarray:
    """Fraction of each of n×n pixels inside a centred disk (sub×sub supersampling)."""
    c = (np.arange(n * sub) - (n * sub - 1) / 2.0) * pitch_mm / sub
    inside = (c[:, None] ** 2 + c[None, :] ** 2) <= (diameter_mm / 2.0) ** 2
    return inside.reshape(n, sub, n, sub).mean(axis=(1, 3))


def collimator(tan_y: np.ndarray | float, tan_z: np.ndarray | float) -> np.ndarray:
    """Square-cell collimator transmission for gnomonic offsets (tan θy, tan θz)."""
    ty = np.clip(1.0 - np.abs(tan_y) / COLLIMATOR_TAN_LIMIT, 0.0, 1.0)
    tz = np.clip(1.0 - np.abs(tan_z) / COLLIMATOR_TAN_LIMIT, 0.0, 1.0)
    return ty * tz


@dataclass
class JemxGeometry:
    """The mask and detector of one JEM-X unit on the 1.65 mm pixel grid.

    ``mask`` (n_m × n_m) is the decoding array source; ``detector`` (n_d × n_d) is the active
    fraction of each pixel, times 0 on the unit's dead anode strips. A source whose shadow is
    shifted by (sy, sx) pixels illuminates detector pixel (u, v) with mask value at mask pixel
    (u + off + sy, v + off + sx), off = (n_m − n_d) / 2; the sky image of the decoder has
    n_m + n_d − 1 pixels with zero shift at its centre.
    """

    unit: int
    fine: np.ndarray
    mask: np.ndarray
    detector: np.ndarray
    disk: np.ndarray
    pitch_mm: float = PIXEL_MM
    sub: int = SUPERSAMPLE

    @property
    def n_mask(self) -> int:
        return self.mask.shape[0]

    @property
    def n_det(self) -> int:
        return self.detector.shape[0]

    @property
    def n_sky(self) -> int:
        return self.n_mask + self.n_det - 1

    @property
    def pixel_deg(self) -> float:
        return math.degrees(self.pitch_mm / DISTANCE_MM)

    @property
    def sky_centre(self) -> int:
        """Index (row and column) of the zero shift in the decoded sky image."""
        return self.n_det - 1 + (self.n_mask - self.n_det) // 2

    def pif(self, shift: tuple[float, float]) -> np.ndarray:
        """Illuminated fraction of each detector pixel for a shadow shift (sy, sx) in pixels.

        Includes the collimator transmission; not multiplied by the detector efficiency.
        """
        sy, sx = float(shift[0]), float(shift[1])
        f, nd, nm = self.sub, self.n_det, self.n_mask
        off = (nm - nd) // 2 * f
        qy = off + int(round(sy * f))
        qx = off + int(round(sx * f))
        size = nd * f
        out = np.zeros((size, size), dtype=np.float32)
        nf = self.fine.shape[0]
        y0, y1 = max(qy, 0), min(qy + size, nf)
        x0, x1 = max(qx, 0), min(qx + size, nf)
        if y1 > y0 and x1 > x0:
            out[y0 - qy : y1 - qy, x0 - qx : x1 - qx] = self.fine[y0:y1, x0:x1]
        pif = out.reshape(nd, f, nd, f).mean(axis=(1, 3))
        t = self.pitch_mm / DISTANCE_MM
        return (pif * collimator(sy * t, sx * t)).astype(np.float32)

    def response(self, shift: tuple[float, float], efficiency: np.ndarray | None = None) -> float:
        """Vignetting: efficiency-weighted illumination relative to the on-axis source."""
        eff = self.detector if efficiency is None else efficiency
        return float((self.pif(shift) * eff).sum() / self.onaxis_sum(eff))

    @cached_property
    def n_on_axis(self) -> float:
        """Σ PIF on axis over the whole detector disk: the rate normaliser (cf. ibis.N_ON_AXIS).

        Pixel counts of a source of rate R (cts/s, on-axis-equivalent) are
        ``T · R · PIF · eff / n_on_axis``.
        """
        return float((self.pif((0.0, 0.0)) * self.disk).sum())

    def onaxis_sum(self, efficiency: np.ndarray | None = None) -> float:
        eff = self.detector if efficiency is None else efficiency
        return float((self.pif((0.0, 0.0)) * eff).sum())


def _dead_strips(n: int, unit: int) -> np.ndarray:
    """Per-unit dead anode strips (a few pixel rows), fixed and documented."""
    live = np.ones((n, n), dtype=np.float32)
    rows = {1: (23, 61, 118), 2: (40, 97)}[unit]
    for r in rows:
        live[r, :] = 0.0
    return live


@cache
def _fine_cached(n_fine: int, step: float) -> np.ndarray:
    return _fine_mask(n_fine, step)


@cache
def geometry(unit: int = 2) -> JemxGeometry:
    """The (cached) geometry of JEM-X unit 1 or 2; the mask pattern is the same for both."""
    if unit not in (1, 2):
        raise ValueError("JEM-X unit must be 1 or 2")
    f = SUPERSAMPLE
    n_mask = 2 * math.ceil(MASK_DIAMETER_MM / PIXEL_MM / 2.0) + 2  # even, covers the disk
    n_det = 2 * math.ceil(DETECTOR_DIAMETER_MM / PIXEL_MM / 2.0)
    fine = _fine_cached(n_mask * f, PIXEL_MM / f)
    fine.setflags(write=False)
    mask = fine.reshape(n_mask, f, n_mask, f).mean(axis=(1, 3)).astype(np.float32)
    disk = _disk_fraction(n_det, PIXEL_MM, DETECTOR_DIAMETER_MM, 4).astype(np.float32)
    det = disk * _dead_strips(n_det, unit)
    for a in (mask, disk, det):
        a.setflags(write=False)
    return JemxGeometry(unit=unit, fine=fine, mask=mask, detector=det, disk=disk)


def window_frame(ra: float, dec: float, pa: float, unit: int = 2) -> TangentFrame:
    """TAN frame of a decoded JEM-X sky image: row = shift sy, column = shift sx (pixels).

    ``pa`` rotates the detector axes on the sky (deg east of north); the centre pixel is the
    pointing axis. Same conventions as :func:`..ibis.window_frame`.
    """
    g = geometry(unit)
    c = float(g.sky_centre)
    return TangentFrame(ra0=float(ra), dec0=float(dec), pa=float(pa), scale_deg=g.pixel_deg,
                        crpix=(c, c), shape=(g.n_sky, g.n_sky))


@cache
def optics() -> MaskOptics:
    """The JEM-X mask as the shared balanced decoder sees it (same mask for both units).

    The support is the 535 mm mask disk (closed part = support − open); the collimator
    enters as a sky-grid transmission, so decoded intensities are on-axis-equivalent rates.
    """
    g = geometry(2)
    n_m = g.n_mask
    support = _disk_fraction(n_m, PIXEL_MM, MASK_DIAMETER_MM, SUPERSAMPLE).astype(np.float64)
    k = (np.arange(g.n_sky) - g.sky_centre) * PIXEL_MM / DISTANCE_MM
    trans = collimator(k[:, None], k[None, :])
    return MaskOptics("jemx", g.mask.astype(np.float64), support, (g.n_det, g.n_det),
                      g.n_on_axis, g.disk.astype(np.float64), transmission=trans, pif=pif_at)


def pif_at(ky: float, kz: float) -> np.ndarray:
    """PIF (collimator included) of a source at fractional sky shift (ky, kz) pixels."""
    return geometry(2).pif((ky, kz))
