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
combines windows within a bin by inverse-variance weighting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..archive.fitsutil import ijd_to_time, standard_header

__all__ = ["MAX_TIME_BIN_S", "bin_overlaps", "split_counts", "LcSum", "write_lc", "plot_lc"]

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


def write_lc(path: Path, lc: LcSum, t: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """ISGR-SRC.-LCR: TIME (IJD), TOT_COUNTS, BACKV, BACKE, RATE, ERROR, FRACEXP, XAX_E, TIMEDEL."""
    units = {"TIME": "d", "TOT_COUNTS": "count", "BACKV": "count/s", "BACKE": "count/s",
             "RATE": "count/s", "ERROR": "count/s", "FRACEXP": "", "XAX_E": "d", "TIMEDEL": "d"}
    fmt = {"TIME": "D", "TOT_COUNTS": "J", "XAX_E": "D", "TIMEDEL": "D"}
    cols = [fits.Column(n, fmt.get(n, "E"), unit=units[n] or None,
                        array=t[n].astype(np.int64) if n == "TOT_COUNTS" else t[n]) for n in units]
    tstart, tstop = meta["tstart"], meta["tstop"]
    h = standard_header("IBIS", tstart, tstop, extname="ISGR-SRC.-LCR")
    h["HDUCLASS"], h["HDUCLAS1"], h["HDUCLAS2"] = "OGIP", "LIGHTCURVE", "TOTAL"
    h["HDUCLAS3"] = "RATE"
    h["DETNAM"] = "ISGRI"
    h["NAME"] = (lc.name, "source name")
    h["RA_OBJ"], h["DEC_OBJ"] = (lc.ra, "[deg]"), (lc.dec, "[deg]")
    h["TIMEDEL"] = (meta["time_bin"] / DAY, "[d] bin width")
    h["TIMEPIXR"] = (0.5, "TIME is the bin centre")
    h["TIMEZERO"] = (0.0, "[d]")
    h["E_MIN"], h["E_MAX"] = (float(meta["e1"]), "[keV]"), (float(meta["e2"]), "[keV]")
    h["OSA_VERS"] = (meta["osa_version"], "rate scale of RATE/ERROR")
    h["NUM_SCW"] = (lc.n_scw, "science windows with this source")
    h["EXPOSURE"] = (float(np.sum(t["EXPOSURE"])), "[s] dead-time corrected")
    h["BACKVDEF"] = ("whole-detector rate", "BACKV: fitted background")
    prim = fits.PrimaryHDU(header=standard_header("IBIS", tstart, tstop))
    hdu = fits.BinTableHDU.from_columns(fits.ColDefs(cols), header=h)
    fits.HDUList([prim, hdu]).writeto(path, overwrite=True)
    return path


def plot_lc(path: Path, name: str, t: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Rate against time (MJD) with error bars and bin widths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..products.plots import mark_simulated

    # TIME is IJD in TT: the axis counts UTC days from a UTC midnight, so the date it names is
    # the calendar date of the data (a TT midnight is 23:58:5x UTC of the day before)
    mjd = ijd_to_time(t["TIME"]).utc.mjd if len(t["TIME"]) else np.array([])
    mjd0 = float(np.floor(mjd.min())) if mjd.size else 0.0
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    ax.errorbar(mjd - mjd0, t["RATE"], yerr=t["ERROR"], xerr=t["XAX_E"], fmt="o", ms=3, lw=1,
                color="#1565c0", ecolor="#90a4ae")
    ax.axhline(0.0, color="k", lw=0.5, alpha=0.5)
    ax.set_xlabel(f"Time (days since {Time(mjd0, format='mjd', scale='utc').iso[:10]} 00:00 UTC = MJD {mjd0:.0f} UTC)")
    ax.set_ylabel(f"Rate {meta['e1']:g}–{meta['e2']:g} keV (cts/s)")
    ax.set_title(f"ISGRI {name} · {meta['time_bin']:g} s bins · {meta['osa_version']}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    mark_simulated(fig)
    fig.savefig(path)
    plt.close(fig)
    return path
