"""SPI-ACS light curves: the MMODA rebinning rule (``dispatcher-plugin-integral-all-sky``).

Native data are counts in 50 ms bins. The plugin turns them into:

* native rates ``RATE = counts / 0.05``; with a requested ``time_bin`` not above 0.05 s the native
  bins are kept and ``ERROR = sqrt(RATE * 0.05) / 0.05``;
* otherwise ``time_bin`` is floored to a multiple of 0.05 s, consecutive native samples are
  grouped from the first one, and each group gets ``RATE`` = mean of its native rates,
  ``TIME`` = mean of its native times and ``ERROR = sqrt(RATE * T) / T`` with ``T`` = number of
  samples × 0.05 s (so the last, partial group has a larger error).

Two details differ from the plugin's float arithmetic, on purpose and documented: the floor is
taken as ``floor(time_bin / 0.05 + 1e-9)`` (the plugin's ``int(0.15 / 0.05)`` gives 2, not 3),
and samples are grouped by integer sample index rather than ``np.digitize`` on float edges (the
same rule, without edge round-off).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NATIVE_BIN", "LightCurve", "effective_bin", "rebin"]

NATIVE_BIN = 0.05  # s, the SPI-ACS telemetry resolution


def effective_bin(time_bin: float, native: float = NATIVE_BIN) -> tuple[float, int]:
    """(bin actually used in s, number of native samples per bin)."""
    n = max(int(np.floor(time_bin / native + 1e-9)), 1)
    return n * native, n


@dataclass
class LightCurve:
    """A light curve in seconds relative to a reference time ``t_ref`` (IJD seconds, TT)."""

    time: np.ndarray
    rate: np.ndarray
    error: np.ndarray
    exposure: np.ndarray  # seconds of data in each bin
    time_bin: float
    t_ref: float
    t_start: float  # relative to t_ref
    t_stop: float


def rebin(t_native: np.ndarray, counts: np.ndarray, time_bin: float, native: float = NATIVE_BIN) -> LightCurve:
    """Apply the MMODA rule to native samples starting at ``t_native`` (IJD seconds, TT)."""
    t_native = np.asarray(t_native, dtype=float)
    counts = np.asarray(counts, dtype=float)
    t_ref = 0.5 * (t_native[0] + t_native[-1])
    time = t_native - t_ref
    rate = counts / native
    t_start, t_stop = float(time[0]), float(time[-1] + native)
    used, n = effective_bin(time_bin, native)
    if n <= 1:
        error = np.sqrt(rate * native) / native
        return LightCurve(time, rate, error, np.full(time.size, native), native, t_ref, t_start, t_stop)
    group = np.arange(time.size) // n
    n_in = np.bincount(group).astype(float)
    mean_rate = np.bincount(group, weights=rate) / n_in
    mean_time = np.bincount(group, weights=time) / n_in
    exposure = n_in * native
    error = np.sqrt(mean_rate * exposure) / exposure
    return LightCurve(mean_time, mean_rate, error, exposure, used, t_ref, t_start, t_stop)
