"""Feldman–Cousins confidence intervals for a Poisson count with known background.

Written from Feldman & Cousins 1998 (PRD 57, 3873) following the construction of ROOT's
``TFeldmanCousins`` (math/physics), because the ANTARES service calls that class and its
numbers must be reproduced:

* for each signal mean ``mu`` on the grid ``mu_min + i * mu_step`` the acceptance region is
  built over ``n = 0 .. int(mu_max) - 1`` by ranking ``R = P(n | mu + b) / P(n | mu_best + b)``
  with ``mu_best = max(0, n - b)`` (largest first) and adding ``P(n | mu + b)`` until the sum
  reaches the confidence level;
* the lower limit is the first grid ``mu`` whose region contains ``n_obs``; the upper limit is
  the first grid ``mu`` after it whose region does **not** contain ``n_obs``.

The second rule differs from the published tables where the belt is not monotonic: at
(n0 = 0, b = 3) ROOT (and this code) gives 0.95 where the paper prints 1.08.

The acceptance regions of a whole block of ``mu`` values are computed at once with numpy
(rank by argsort, cumulative sums, cumulative min/max of the ranked ``n``), so the scan over
20 000 grid points costs a few array operations per block instead of a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import gammaln

__all__ = ["FeldmanCousins", "fc_upper_limit", "fc_interval", "poisson_pmf", "sensitivity"]


def poisson_pmf(n: np.ndarray, mean: np.ndarray | float) -> np.ndarray:
    """``TMath::Poisson(n, mean)``: exp(n log mean - mean - lgamma(n + 1)), with P(0 | 0) = 1."""
    n = np.asarray(n, dtype=float)
    mean = np.asarray(mean, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = n * np.log(mean) - mean - gammaln(n + 1.0)
    logp = np.where(n == 0, -mean, logp)
    return np.exp(logp)


@dataclass(frozen=True)
class FeldmanCousins:
    """A Feldman–Cousins calculator with ROOT's knobs (``SetMuMax``, ``SetMuStep``).

    Parameters
    ----------
    cl : float
        Confidence level (0.9 for the ANTARES service).
    mu_max : float
        Largest signal scanned; also sets the number of ``n`` values, ``int(mu_max)``.
    mu_step : float
        Grid step in ``mu``.
    mu_min : float
        Smallest signal scanned.
    block : int
        Number of ``mu`` grid points evaluated per numpy block.
    """

    cl: float = 0.9
    mu_max: float = 50.0
    mu_step: float = 0.005
    mu_min: float = 0.0
    block: int = 512

    @property
    def n_max(self) -> int:
        return int(self.mu_max)

    @property
    def n_mu_steps(self) -> int:
        return int((self.mu_max - self.mu_min) / self.mu_step)

    def acceptance(self, mu: np.ndarray, background: float) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest ``n`` of the acceptance region for each ``mu`` (vectorised)."""
        mu = np.atleast_1d(np.asarray(mu, dtype=float))
        n = np.arange(self.n_max, dtype=float)
        mu_best = np.maximum(n - background, 0.0)
        p_best = poisson_pmf(n, mu_best + background)
        p = poisson_pmf(n[None, :], mu[:, None] + background)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(p_best > 0.0, p / p_best, 0.0)
        # largest ratio first; stable so ties keep increasing n (ROOT leaves ties unspecified)
        rank = np.argsort(-r, axis=1, kind="stable")
        p_sorted = np.take_along_axis(p, rank, axis=1)
        csum = np.cumsum(p_sorted, axis=1)
        reached = csum >= self.cl
        # index of the last element taken: first index reaching CL, else all of them
        last = np.where(reached.any(axis=1), reached.argmax(axis=1), self.n_max - 1)
        lo = np.minimum.accumulate(rank, axis=1)
        hi = np.maximum.accumulate(rank, axis=1)
        rows = np.arange(mu.size)
        return lo[rows, last], hi[rows, last]

    def _contains(self, i0: int, i1: int, n_obs: float, background: float) -> np.ndarray:
        mu = self.mu_min + np.arange(i0, i1, dtype=float) * self.mu_step
        lo, hi = self.acceptance(mu, background)
        return (n_obs <= hi) & (n_obs >= lo)

    def interval(self, n_obs: float, background: float) -> tuple[float, float]:
        """(lower, upper) limits on the signal mean, as ``TFeldmanCousins`` computes them.

        Returns ROOT's values in its corner cases too: lower = -999 when no grid point accepts
        ``n_obs``, upper = 0 when no grid point after the lower limit rejects it.
        """
        last = self.n_mu_steps  # ROOT loops i = 0 .. fNMuStep inclusive
        lower, i_lower = -999.0, 0
        for start in range(0, last + 1, self.block):
            stop = min(start + self.block, last + 1)
            good = self._contains(start, stop, n_obs, background)
            if good.any():
                i_lower = start + int(np.argmax(good))
                lower = self.mu_min + i_lower * self.mu_step
                break
        upper = 0.0
        for start in range(i_lower + 1, last + 1, self.block):
            stop = min(start + self.block, last + 1)
            good = self._contains(start, stop, n_obs, background)
            if not good.all():
                upper = self.mu_min + (start + int(np.argmin(good))) * self.mu_step
                break
        return lower, upper

    def upper_limit(self, n_obs: float, background: float) -> float:
        return self.interval(n_obs, background)[1]

    def lower_limit(self, n_obs: float, background: float) -> float:
        return self.interval(n_obs, background)[0]


@lru_cache(maxsize=4096)
def _cached_interval(n_obs: float, background: float, cl: float, mu_max: float, mu_step: float):
    return FeldmanCousins(cl=cl, mu_max=mu_max, mu_step=mu_step).interval(n_obs, background)


def fc_interval(
    n_obs: float, background: float, cl: float = 0.9, mu_max: float = 50.0, mu_step: float = 0.005
) -> tuple[float, float]:
    """(lower, upper) Feldman–Cousins limits (ROOT defaults: mu_max 50, step 0.005)."""
    return _cached_interval(float(n_obs), float(background), float(cl), float(mu_max), float(mu_step))


def fc_upper_limit(
    n_obs: float, background: float, cl: float = 0.9, mu_max: float = 50.0, mu_step: float = 0.005
) -> float:
    """Feldman–Cousins upper limit on the signal mean."""
    return fc_interval(n_obs, background, cl, mu_max, mu_step)[1]


def sensitivity(
    background: float, cl: float = 0.9, mu_max: float = 200.0, mu_step: float = 0.01, n_terms: int = 20
) -> float:
    """Average upper limit of an experiment with no signal: Σ_{n<20} P(n | b) · UL(n, b).

    This is ``Sens`` of the ANTARES ``multiMessenger.cc`` (not renormalised to the truncated sum).
    """
    total = 0.0
    for n in range(n_terms):
        ul = fc_upper_limit(n, background, cl, mu_max, mu_step)
        total += ul * float(poisson_pmf(n, background))
    return total
