"""Burst pulses (for simulation) and a burst finder for total-rate light curves.

The finder follows the SPI-ACS practice (reference/instruments.md §3): fit a polynomial
background to off-burst bins, take the excess, and measure its significance against the
*measured* scatter of the off-burst residuals, which includes the excess variance of the
detector (1.1–1.3 × Poisson for SPI-ACS), not against √B alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Burst", "fred_cumulative", "fred_mean", "find_burst"]


def fred_cumulative(t: np.ndarray, t_peak: float, peak: float, t_rise: float, t_decay: float) -> np.ndarray:
    """Integral from −∞ to ``t`` of a FRED pulse (exponential rise, exponential decay), in counts."""
    x = np.asarray(t, dtype=float) - t_peak
    rise = peak * t_rise * np.exp(np.minimum(x, 0.0) / t_rise)
    decay = peak * t_decay * (1.0 - np.exp(-np.maximum(x, 0.0) / t_decay))
    return np.where(x < 0.0, rise, peak * t_rise + decay)


def fred_mean(t0: np.ndarray, t1: np.ndarray, t_peak: float, peak: float, t_rise: float, t_decay: float) -> np.ndarray:
    """Mean rate of the pulse over each bin [t0, t1): exact for pulses shorter than a bin."""
    t0 = np.asarray(t0, dtype=float)
    t1 = np.asarray(t1, dtype=float)
    c = fred_cumulative(t1, t_peak, peak, t_rise, t_decay) - fred_cumulative(t0, t_peak, peak, t_rise, t_decay)
    return c / (t1 - t0)


@dataclass
class Burst:
    """What the finder reports; times are in the light curve's own time axis (s)."""

    detected: bool
    significance: float  # peak-bin excess / off-burst scatter
    t_peak: float
    peak_excess: float  # cts/s above background in the peak bin
    t_start: float  # bins above threshold: first and last
    t_stop: float
    t05: float
    t95: float
    t90: float
    net_counts: float
    background: float  # background rate at the peak, cts/s
    noise_ratio: float  # off-burst scatter / Poisson error (excess variance, as a std ratio)
    poly_order: int
    threshold: float

    def to_dict(self) -> dict:
        return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else v if isinstance(v, int) else float(v))
                for k, v in asdict(self).items()}


def _fit(time: np.ndarray, rate: np.ndarray, mask: np.ndarray, order: int) -> np.ndarray:
    x0 = float(np.mean(time[mask]))
    scale = float(np.ptp(time[mask])) or 1.0
    coef = np.polynomial.polynomial.polyfit((time[mask] - x0) / scale, rate[mask], order)
    return np.polynomial.polynomial.polyval((time - x0) / scale, coef)


def find_burst(
    time: np.ndarray,
    rate: np.ndarray,
    exposure: np.ndarray,
    *,
    order: int = 2,
    threshold: float = 5.0,
    clip: float = 3.0,
    iterations: int = 5,
) -> Burst:
    """The brightest excess of a light curve and its significance, peak time and T90.

    Parameters
    ----------
    time, rate : array
        Bin centres (s) and rates (cts/s).
    exposure : array
        Seconds of data in each bin (the Poisson error is √(B·T)/T).
    order : int
        Degree of the background polynomial, fitted to bins not flagged as burst.
    threshold : float
        Significance (in units of the off-burst scatter) above which a burst is claimed.
    """
    time = np.asarray(time, dtype=float)
    rate = np.asarray(rate, dtype=float)
    exposure = np.asarray(exposure, dtype=float)
    order = int(min(order, max(time.size // 10, 0)))
    off = np.ones(time.size, dtype=bool)
    sigma_bins = np.sqrt(np.maximum(rate, 1.0) / exposure)
    for _ in range(iterations):
        bkg = _fit(time, rate, off, order)
        poisson = np.sqrt(np.maximum(bkg, 1e-9) / exposure)
        resid = (rate - bkg) / poisson
        ratio = float(np.std(resid[off])) if off.sum() > order + 2 else 1.0
        sigma_bins = ratio * poisson
        hot = (rate - bkg) > clip * sigma_bins
        # protect the wings of a burst: one bin either side of every hot bin
        grown = hot | np.roll(hot, 1) | np.roll(hot, -1)
        new_off = ~grown
        if new_off.sum() < order + 3 or np.array_equal(new_off, off):
            break
        off = new_off
    excess = rate - bkg
    signif = excess / sigma_bins
    ipk = int(np.argmax(signif))
    detected = bool(signif[ipk] >= threshold)
    above = np.nonzero(signif >= min(threshold, clip))[0]
    if detected and above.size:
        # the contiguous-ish region of significant bins around the peak (gaps up to 3 bins)
        lo = hi = ipk
        while True:
            near = above[(above < lo) & (above >= lo - 4)]
            if near.size == 0:
                break
            lo = int(near.min())
        while True:
            near = above[(above > hi) & (above <= hi + 4)]
            if near.size == 0:
                break
            hi = int(near.max())
        width = hi - lo + 1
        w0, w1 = max(lo - width, 0), min(hi + width, time.size - 1)
        net = excess[w0 : w1 + 1] * exposure[w0 : w1 + 1]
        cum = np.cumsum(net)
        total = float(cum[-1])
        edges = time[w0 : w1 + 1] + 0.5 * exposure[w0 : w1 + 1]
        # first bin end where the running net count reaches 5 % / 95 % (noise makes it non-monotonic)
        t05 = float(edges[np.argmax(cum >= 0.05 * total)]) if total > 0 else float(time[ipk])
        t95 = float(edges[np.argmax(cum >= 0.95 * total)]) if total > 0 else float(time[ipk])
        t_start, t_stop = float(time[lo] - 0.5 * exposure[lo]), float(time[hi] + 0.5 * exposure[hi])
    else:
        total = float(excess[ipk] * exposure[ipk])
        t05 = t95 = float(time[ipk])
        t_start = t_stop = float(time[ipk])
    return Burst(
        detected=detected,
        significance=float(signif[ipk]),
        t_peak=float(time[ipk]),
        peak_excess=float(excess[ipk]),
        t_start=t_start,
        t_stop=t_stop,
        t05=t05,
        t95=t95,
        t90=max(t95 - t05, 0.0),
        net_counts=total,
        background=float(bkg[ipk]),
        noise_ratio=ratio,
        poly_order=order,
        threshold=threshold,
    )
