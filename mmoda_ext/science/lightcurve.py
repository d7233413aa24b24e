"""ISGRI light curves: PIF-weighted rates per time bin (OSA ``ii_lc_extract``), and the
time-resolved counts they need.

**Time bins** are a regular grid of ``time_bin`` seconds starting at the first selected window's
TSTART. A bin's good time is its overlap with the windows' good-time intervals
(:attr:`..archive.scw.ScienceWindow.gti`); FRACEXP = good time / TIMEDEL.

**Counts inside a window (a choice).** The archive stores counts per window only. When a
window spans several bins, its shadowgram in the band is split between them by the data
simulation, not by the analysis: :func:`split_counts` draws a multinomial per pixel with
probabilities ∝ the expected counts in each bin — the window's background (constant in time, as
the archive simulates it, scaled by the fitted β) plus every sky-model source's PIF times its
band rate at the bin's centre (the same sky model and response that produced the window's
total). A multinomial split of a Poisson total is exactly Poisson in each bin, so the bins are
consistent with the window's total and with the source's variability within the window; the
split is seeded by the window id and the grid, hence reproducible. Bins longer than a window
take it whole (no split). The analysis then fits each bin (:func:`.spectrum.fit_cube`) and
combines windows within a bin by inverse-variance weighting. The light-curve file and its
preview are written by :mod:`...products.isgri_lc`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MAX_TIME_BIN_S", "bin_overlaps", "split_counts", "LcSum", "DAY"]

#: MMODA's cap on ISGRI light-curve bins (osa_lightcurve_query.py)
MAX_TIME_BIN_S = 20000.0
DAY = 86400.0


def bin_overlaps(gti: np.ndarray, origin: float, bin_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(bin indices, good seconds in each) of the grid ``origin + k·bin_s`` met by the GTIs (IJD)."""
    width = bin_s / DAY
    gti = np.atleast_2d(np.asarray(gti, float))
    k0 = int(np.floor((gti[:, 0].min() - origin) / width))
    k1 = int(np.floor((gti[:, 1].max() - origin) / width))
    ks = np.arange(k0, k1 + 1)
    lo = origin + ks * width
    hi = lo + width
    good = np.zeros(ks.size)
    for a, b in gti:
        good += np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
    keep = good * DAY > 1e-3
    return ks[keep], good[keep] * DAY


def split_counts(counts: np.ndarray, expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split a (y, z) counts map into (n_bin, y, z) by a multinomial per pixel.

    ``expected`` (n_bin, y, z) are the expected counts per bin (any positive scale); pixels
    with no expectation are split uniformly.
    """
    n_bin = expected.shape[0]
    if n_bin == 1:
        return np.asarray(counts)[None].astype(np.int64)
    p = np.moveaxis(np.asarray(expected, float), 0, -1).reshape(-1, n_bin)
    tot = p.sum(axis=1, keepdims=True)
    p = np.where(tot > 0, p / np.where(tot > 0, tot, 1.0), 1.0 / n_bin)
    p[:, -1] = np.clip(1.0 - p[:, :-1].sum(axis=1), 0.0, 1.0)  # exact normalisation for numpy
    out = rng.multinomial(np.asarray(counts, np.int64).ravel(), p)
    return np.moveaxis(out.reshape(*counts.shape, n_bin), -1, 0)


@dataclass
class LcSum:
    """One source's light curve, folded window by window (only bins with data are stored)."""

    name: str
    ra: float
    dec: float
    bins: dict[int, np.ndarray] = field(default_factory=dict)
    # per bin: Σ R/σ², Σ 1/σ², good s, counts, Σ B/σB², Σ 1/σB², exposure
    n_scw: int = 0

    def add(self, ks: np.ndarray, rates: np.ndarray, errors: np.ndarray, good_s: np.ndarray,
            counts: np.ndarray, brate: np.ndarray, berr: np.ndarray, exposure: np.ndarray) -> None:
        used = False
        for k, r, e, g, c, b, be, x in zip(ks, rates, errors, good_s, counts, brate, berr, exposure,
                                           strict=True):
            if not (np.isfinite(r) and np.isfinite(e) and e > 0):
                continue
            acc = self.bins.setdefault(int(k), np.zeros(7))
            acc += [r / e**2, 1 / e**2, g, c,
                    b / be**2 if be > 0 else 0.0, 1 / be**2 if be > 0 else 0.0, x]
            used = True
        self.n_scw += int(used)

    def table(self, origin: float, bin_s: float, scale: float) -> dict[str, np.ndarray]:
        ks = np.array(sorted(self.bins), dtype=np.int64)
        a = np.array([self.bins[k] for k in ks]).reshape(-1, 7)
        width = bin_s / DAY
        rate = a[:, 0] / a[:, 1] * scale
        error = 1.0 / np.sqrt(a[:, 1]) * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            backv = np.where(a[:, 5] > 0, a[:, 4] / a[:, 5], np.nan) * scale
            backe = np.where(a[:, 5] > 0, 1.0 / np.sqrt(a[:, 5]), np.nan) * scale
        return {
            "TIME": origin + (ks + 0.5) * width,
            "TIMEDEL": np.full(ks.size, width),
            "RATE": rate, "ERROR": error,
            "TOT_COUNTS": a[:, 3], "BACKV": backv, "BACKE": backe,
            "FRACEXP": np.minimum(a[:, 2] / bin_s, 1.0),
            "XAX_E": np.full(ks.size, width / 2.0),
            "EXPOSURE": a[:, 6],
        }
