"""Sources in ISGRI images: PIF rate fits, ghost cleaning, peak search and PSF fits.

* :func:`pif_fit` — rates of sources at known positions by a weighted least-squares fit of
  their exact PIFs plus the background map to one shadowgram (what OSA's spectral and
  light-curve extraction does); unbiased wherever the source is, unlike the image peak.
* :func:`clean_window` — the cyclic mask makes 8 full-strength ghosts ≈ 10.6° away from every
  source; each catalogue source above 5σ, then each new (uncatalogued) peak above 5σ found
  iteratively, is fitted, the model shadowgram decoded with the window's own operator and
  subtracted from the image, except near the sources themselves.
* :func:`find_peaks`, :func:`psf_fit` — local maxima of a significance map and a Gaussian fit
  for sub-pixel positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize

from . import ibis
from .coded_mask import DecodedImage, Decoder, MaskOptics, isgri_optics

__all__ = ["pif_fit", "position_offsets", "clean_window", "find_peaks", "psf_fit", "PsfFit", "err_rad_deg"]

#: pixels around a cleaned source that keep the data (its own peak stays in the image)
KEEP_RADIUS = 4.0
#: a fitted catalogue source keeps its region (unsubtracted) only when the joint PIF fit confirms it
#: at this significance: in a dense catalogue, faint sources must not shelter bright ones' ghosts
KEEP_MIN_SNR = 3.0
#: significance of a new (uncatalogued) source cleaned in a window (mimosa's MinNewSouSnr)
NEW_SOURCE_SNR = 5.0
#: at most this many new sources are cleaned per window (mimosa's ToSearch is 50)
MAX_NEW = 10
#: a peak this close (pixels) to a cyclic-ghost position of a fitted source is its ghost
GHOST_RADIUS = 3.0
#: a peak within this many pixels of a catalogue source is that source (PSF FWHM ≈ 2.4 pixels)
MATCH_PIX = 2.5
#: new sources are searched where the coding is at least this fraction of on-axis (the noise
#: of the barely coded rim is not Gaussian)
SEARCH_CODING = 0.1


def source_model(efficiency: np.ndarray, exposure: float, ky: float, kz: float,
                 optics: MaskOptics | None = None) -> np.ndarray:
    """Expected counts per pixel for a unit rate (1 cts/s) at sky-pixel shift (ky, kz)."""
    o = optics or isgri_optics()
    return o.pif(ky, kz) * efficiency * (exposure / o.n_on_axis)


def pif_fit(
    counts: np.ndarray,
    efficiency: np.ndarray,
    background: np.ndarray,
    exposure: float,
    shifts: list[tuple[float, float]],
    optics: MaskOptics | None = None,
    *,
    return_model: bool = False,
    columns: dict | None = None,
):
    """Rates (cts/s), their 1σ errors and the background scale for sources at ``shifts``.

    Model ``D = β·W·U + Σ R_s · T·W·PIF_s/N0`` on the good pixels, weights 1/(β₀ W U).
    A source with no illuminated good pixel gets NaN. With ``return_model`` the fitted
    sources' model shadowgram (counts, all sources together) comes as a fourth value.
    ``columns`` (a dict kept by the caller for one window) memoises the source models by shift.
    """
    good = efficiency > 0
    d = np.asarray(counts, float)[good]
    bm = (efficiency * background)[good].astype(float)
    cols = [bm]
    for ky, kz in shifts:
        col = columns.get((ky, kz)) if columns is not None else None
        if col is None:
            col = source_model(efficiency, exposure, ky, kz, optics)[good]
            if columns is not None:
                columns[(ky, kz)] = col
        cols.append(col)
    x = np.stack(cols, axis=1)
    seen = x[:, 1:].sum(axis=0) > 1e-3 * exposure
    keep = np.concatenate([[True], seen])
    xk = x[:, keep]
    beta0 = d.sum() / bm.sum()
    w = 1.0 / np.maximum(beta0 * bm, 1e-9)
    xw = xk * w[:, None]
    cov = np.linalg.inv(xw.T @ xk)
    sol = cov @ (xw.T @ d)
    rates = np.full(len(shifts), np.nan)
    errs = np.full(len(shifts), np.nan)
    rates[seen] = sol[1:]
    errs[seen] = np.sqrt(np.diag(cov)[1:])
    if not return_model:
        return rates, errs, float(sol[0])
    model = np.zeros(efficiency.shape)
    model[good] = xk[:, 1:] @ sol[1:]
    return rates, errs, float(sol[0]), model


def position_offsets(counts: np.ndarray, efficiency: np.ndarray, background: np.ndarray, exposure: float,
                     shifts: list[tuple[float, float]], optics: MaskOptics | None = None, step: float = 0.25):
    """Rates and position corrections of sources at ``shifts`` from one shadowgram.

    The model of :func:`pif_fit` linearised in each source's position:
    ``D = β·W·U + Σ R_s M_s + Σ (u_s ∂M_s/∂ky + v_s ∂M_s/∂kz)`` (derivatives by central
    differences of the exact PIF), solved by the same weighted least squares. The offsets
    ``(δky, δkz) = (u, v)/R`` and their covariance (sky pixels of the window) come from the
    detector counts, not from a resampled image. Returns ``(rates, rate_errors, offsets (n, 2),
    covariances (n, 2, 2))``; NaN for a source with no illuminated good pixel.
    """
    good = efficiency > 0
    d = np.asarray(counts, float)[good]
    bm = (efficiency * background)[good].astype(float)

    def col(ky, kz):
        return source_model(efficiency, exposure, ky, kz, optics)[good]

    n = len(shifts)
    m = [col(ky, kz) for ky, kz in shifts]
    seen = np.array([c.sum() > 1e-3 * exposure for c in m], bool)
    keep = np.nonzero(seen)[0]
    deriv = []
    for i in keep:
        ky, kz = shifts[i]
        deriv += [(col(ky + step, kz) - col(ky - step, kz)) / (2 * step),
                  (col(ky, kz + step) - col(ky, kz - step)) / (2 * step)]
    x = np.stack([bm, *(m[i] for i in keep), *deriv], axis=1)
    w = 1.0 / np.maximum(d.sum() / bm.sum() * bm, 1e-9)
    cov = np.linalg.pinv((x * w[:, None]).T @ x)
    sol = cov @ ((x * w[:, None]).T @ d)
    rates, errs = np.full(n, np.nan), np.full(n, np.nan)
    offsets, covs = np.full((n, 2), np.nan), np.full((n, 2, 2), np.nan)
    k = keep.size
    for j, i in enumerate(keep):
        r = sol[1 + j]
        rates[i], errs[i] = r, np.sqrt(cov[1 + j, 1 + j])
        a = 1 + k + 2 * j
        if r != 0:
            offsets[i] = sol[a : a + 2] / r
            covs[i] = cov[a : a + 2, a : a + 2] / r**2
    return rates, errs, offsets, covs


@dataclass
class CleanedSource:
    name: str
    ky: float
    kz: float
    rate: float
    error: float


def clean_window(
    image: DecodedImage,
    decoder: Decoder,
    counts: np.ndarray,
    efficiency: np.ndarray,
    background: np.ndarray,
    exposure: float,
    catalogue: list[tuple[str, float, float]],
    threshold: float = 5.0,
    new_threshold: float | None = None,
    max_new: int = MAX_NEW,
    fwhm_pix: float | None = None,
) -> tuple[DecodedImage, list[CleanedSource]]:
    """Remove the ghosts and coding noise of significant sources, catalogued or not.

    ``catalogue`` is ``[(name, x, y)]`` in the window's image pixels; its sources above
    ``threshold`` σ are fitted together (PIF fit), their summed model is decoded once with the
    window's operator and subtracted everywhere except within :data:`KEEP_RADIUS` pixels of any
    fitted source. Then, as OSA's ``ii_skyimage`` does, the strongest remaining peak above
    ``new_threshold`` (None: no search) is taken as a new source ``NEW_k`` at its PSF-fitted
    position, added to the fit, and the cleaning is redone, until no peak is left (at most
    ``max_new``). Peaks at the cyclic-ghost offsets (``optics.ghost_period``) of a fitted
    source are its ghost residuals, not new sources, and are skipped.
    """
    sig = image.significance
    ny, nx = sig.shape
    optics = decoder.optics
    centre = optics.sky_centre
    fitted = []
    for name, x, y in catalogue:
        r, c = int(round(y)), int(round(x))
        if not (1 <= r < ny - 1 and 1 <= c < nx - 1) or not decoder.valid[r, c]:
            continue
        local = sig[r - 1 : r + 2, c - 1 : c + 2]
        if np.nanmax(local) >= threshold:
            fitted.append((name, y - centre[0], x - centre[1]))
    columns: dict = {}  # source models by shift, shared by the fits of this window

    def fit(srcs):
        return pif_fit(counts, efficiency, background, exposure, [(b[1], b[2]) for b in srcs], optics,
                       return_model=True, columns=columns)

    cleaned, done, keep = image, [], np.zeros((ny, nx), bool)
    if fitted:
        cleaned, done, keep = _subtract(image, decoder, exposure, fitted, fit(fitted))
    if new_threshold is None:
        return cleaned, done
    searchable = decoder.valid & (decoder.coding >= SEARCH_CODING)
    n_new = 0
    s = None
    for _ in range(4 * max_new):  # candidates tried (ghost residuals and noise peaks are refused)
        if n_new >= max_new:
            break
        if s is None:  # the significance left after the current cleaning (-inf where not searched)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = np.where(searchable & ~keep, cleaned.intensity / np.sqrt(cleaned.variance), -np.inf)
            s[~np.isfinite(s)] = -np.inf
        k = int(np.argmax(s))
        if s.flat[k] < new_threshold:
            break
        r, c = np.unravel_index(k, s.shape)
        _disk(searchable, r, c, KEEP_RADIUS)  # taken or refused: not searched again
        _fill_disk(s, r, c, KEEP_RADIUS, -np.inf)
        if _is_ghost(r - centre[0], c - centre[1], done, optics.ghost_period):
            continue
        known = [(n, x, y) for n, x, y in catalogue if (y - r) ** 2 + (x - c) ** 2 <= MATCH_PIX**2
                 and n not in {f[0] for f in fitted}]
        # a catalogue source that was below threshold before the others were cleaned, or new
        name, x, y = known[0] if known else (f"NEW_{n_new + 1}", float(c), float(r))
        trial = [*fitted, (name, y - centre[0], x - centre[1])]
        result = fit(trial)
        rate, err = result[0][-1], result[1][-1]
        if not (np.isfinite(rate) and err > 0 and rate / err >= new_threshold):
            continue  # the PIF fit does not confirm it: a noise peak, left in the image
        if not known:  # confirmed: refine the position (PSF fit), then fit again
            p = psf_fit(cleaned.intensity, cleaned.variance, int(r), int(c), fwhm_pix=fwhm_pix or ISGRI_PSF_FWHM_PIX)
            trial[-1] = (name, p.y - centre[0], p.x - centre[1])
            result = fit(trial)
        fitted, n_new = trial, n_new + (not known)
        cleaned, done, keep = _subtract(image, decoder, exposure, fitted, result)
        s = None
    return cleaned, done


def _is_ghost(ky: float, kz: float, done: list[CleanedSource], period: float) -> bool:
    if period <= 0:
        return False
    for src in done:
        dy, dz = ky - src.ky, kz - src.kz
        for gy in (-period, 0.0, period):
            for gz in (-period, 0.0, period):
                if (gy or gz) and (dy - gy) ** 2 + (dz - gz) ** 2 <= GHOST_RADIUS**2:
                    return True
    return False


def _disk(mask: np.ndarray, r0: float, c0: float, radius: float) -> None:
    ny, nx = mask.shape
    rr = slice(max(int(r0 - radius), 0), max(min(int(r0 + radius) + 2, ny), 0))
    cc = slice(max(int(c0 - radius), 0), max(min(int(c0 + radius) + 2, nx), 0))
    yy, xx = np.ogrid[rr, cc]
    mask[rr, cc] |= (yy - r0) ** 2 + (xx - c0) ** 2 <= radius**2


def _fill_disk(arr: np.ndarray, r0: float, c0: float, radius: float, value: float) -> None:
    disk = np.zeros(arr.shape, bool)
    _disk(disk, r0, c0, radius)
    arr[disk] = value


def _subtract(image: DecodedImage, decoder: Decoder, exposure: float,
              fitted: list[tuple[str, float, float]], fit):
    """One decode of the fitted sources' model (``fit`` = their joint PIF fit), subtracted
    outside them."""
    centre = decoder.optics.sky_centre
    rates, errs, _, model = fit
    # one decode of all fitted sources: the ghosts, sidelobes and coding noise of each of them
    decoded = decoder.model_image(model, exposure)
    keep = np.zeros(image.intensity.shape, bool)
    done = []
    for (name, ky, kz), rate, err in zip(fitted, rates, errs, strict=True):
        if not (np.isfinite(rate) and err > 0 and rate / err >= KEEP_MIN_SNR):
            continue  # not confirmed by the joint fit: its region keeps no other source's ghosts
        _disk(keep, ky + centre[0], kz + centre[1], KEEP_RADIUS)
        done.append(CleanedSource(name, ky, kz, float(rate), float(err)))
    intensity = np.where(keep, image.intensity, image.intensity - decoded)
    return DecodedImage(intensity, image.variance, image.exposure), done, keep


def find_peaks(significance: np.ndarray, threshold: float, size: int = 5) -> list[tuple[int, int]]:
    """Local maxima above ``threshold`` as (row, col), strongest first."""
    s = np.nan_to_num(significance, nan=-np.inf)
    peaks = (s == ndimage.maximum_filter(s, size=size, mode="nearest")) & (s > threshold)
    rows, cols = np.nonzero(peaks)
    order = np.argsort(-s[rows, cols])
    return [(int(rows[i]), int(cols[i])) for i in order]


@dataclass
class PsfFit:
    x: float  # 0-based column
    y: float  # 0-based row
    amplitude: float
    sigma: float
    ok: bool


#: ISGRI's 12′ PSF FWHM in sky pixels
ISGRI_PSF_FWHM_PIX = 12.0 / 60.0 / ibis.PIXEL_DEG


def psf_fit(intensity: np.ndarray, variance: np.ndarray, row: int, col: int, half: int = 4,
            fwhm_pix: float = ISGRI_PSF_FWHM_PIX) -> PsfFit:
    """Gaussian (+ constant) fit around a peak, weighted by the variance; σ starts at 12′ FWHM."""
    ny, nx = intensity.shape
    r0, r1 = max(row - half, 0), min(row + half + 1, ny)
    c0, c1 = max(col - half, 0), min(col + half + 1, nx)
    sub = intensity[r0:r1, c0:c1]
    var = variance[r0:r1, c0:c1]
    ok = np.isfinite(sub) & np.isfinite(var) & (var > 0)
    yy, xx = np.mgrid[r0:r1, c0:c1]
    yy, xx, z, w = yy[ok], xx[ok], sub[ok], 1.0 / np.sqrt(var[ok])
    s0 = fwhm_pix / 2.3548

    def resid(p):
        a, x0, y0, s, b = p
        return (a * np.exp(-0.5 * ((xx - x0) ** 2 + (yy - y0) ** 2) / s**2) + b - z) * w

    p0 = [float(intensity[row, col]), float(col), float(row), s0, 0.0]
    lo = [0.0, col - 2.0, row - 2.0, 0.5 * s0, -np.inf]
    hi = [np.inf, col + 2.0, row + 2.0, 3.0 * s0, np.inf]
    p0[0] = max(p0[0], 1e-6)
    try:
        res = optimize.least_squares(resid, p0, bounds=(lo, hi), x_scale="jac")
        a, x0, y0, s, _ = res.x
        return PsfFit(float(x0), float(y0), float(a), float(s), bool(res.success))
    except (ValueError, np.linalg.LinAlgError):
        return PsfFit(float(col), float(row), p0[0], s0, False)


def err_rad_deg(snr: float) -> float:
    """90 % location error (deg): 20′/SNR with a 0.2′ floor (``instruments.md`` §1.1)."""
    arcmin = np.hypot(20.0 / max(float(snr), 1e-3), 0.2)
    return float(arcmin / 60.0)
