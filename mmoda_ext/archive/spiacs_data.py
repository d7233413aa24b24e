"""Simulated SPI-ACS total-rate data (50 ms counts), deterministic for any interval.

No real SPI-ACS archive is reachable, so the data server is a simulator faithful to the
instrument (reference/instruments.md §3, §9):

* background B(t) = linear trend + solar-cycle term (cosmic rays peak at solar minimum, 2009 and
  2020) × a ±2 % modulation over the 3-day INTEGRAL orbit; calibrated on the two levels measured
  in real MMODA products (≈ 75 800 cts/s on 2003-03-15, ≈ 90 650 cts/s on 2023-03-07); it stays in
  6e4–1e5 cts/s over 2002–2025;
* excess variance: each 50 ms background expectation is multiplied by (1 + ε), ε Gaussian, so that
  the scatter is ``noise_ratio`` (default 1.2) × Poisson at every time scale (GCN circulars quote
  1.1–1.3, the GRB 230307A product 1.15–1.19);
* bursts: FRED pulses at the real trigger times of ``mmoda_ext/data/grb_catalog.ecsv``,
  integrated exactly over each 50 ms bin;
* the random numbers of bin i come from a generator seeded by (seed, i // 2000): every 100 s chunk
  is drawn the same way whatever interval asks for it, so overlapping requests agree exactly.

Times are IJD seconds in TT (IJD = MJD(TT) − 51544; t = 0 at IJD 0), the SPI-ACS convention.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.time import Time, TimeDelta
from traitlets import Float, Integer
from traitlets.config import Configurable

from ..science.bursts import fred_mean
from ..science.spiacs import NATIVE_BIN

__all__ = ["CATALOG_PATH", "IJD0", "SpiAcsArchive", "ijd_seconds", "load_grb_catalog", "time_from_ijd_seconds"]

CATALOG_PATH = Path(__file__).resolve().parents[1] / "data" / "grb_catalog.ecsv"
IJD0 = Time(51544.0, format="mjd", scale="tt")
CHUNK = 2000  # native bins per random chunk (100 s)
YEAR_S = 365.25 * 86400.0


def ijd_seconds(t: Time) -> float:
    """Seconds since IJD 0 (2000-01-01T00:00:00 TT)."""
    return float((t - IJD0).to_value("s"))


def time_from_ijd_seconds(s: float) -> Time:
    return IJD0 + TimeDelta(s, format="sec")


@cache
def load_grb_catalog(path: str | None = None) -> Table:
    """The burst catalogue with an added ``t_peak_ijd_s`` column (peak time, IJD seconds TT)."""
    table = Table.read(path or CATALOG_PATH, format="ascii.ecsv")
    t0 = Time(list(table["t0_utc"]), format="isot", scale="utc")
    table["t0_ijd_s"] = (t0 - IJD0).to_value("s")
    table["t_peak_ijd_s"] = table["t0_ijd_s"] + np.asarray(table["delay"], dtype=float)
    return table


class SpiAcsArchive(Configurable):
    """The simulated SPI-ACS data server."""

    seed = Integer(3141, config=True, help="Seed of the simulated SPI-ACS counts.")
    noise_ratio = Float(1.2, min=1.0, config=True,
                        help="Scatter of the background counts / Poisson scatter (excess variance as a std ratio).")
    max_span = Float(2 * 86400.0, min=10.0, config=True,
                     help="Longest interval (s) one request may ask for (the real backend also refuses large requests).")
    mission_start = Float(ijd_seconds(Time("2002-11-01T00:00:00", scale="utc")), config=True,
                          help="First IJD second with SPI-ACS data.")
    mission_stop = Float(ijd_seconds(Time("2025-03-01T00:00:00", scale="utc")), config=True,
                         help="End of INTEGRAL science operations (IJD seconds).")
    orbit_period = Float(3 * 86400.0, config=True, help="INTEGRAL orbit (s) for the background modulation.")

    def background(self, t: np.ndarray) -> np.ndarray:
        """Background rate (cts/s) at IJD seconds ``t``."""
        year = 2000.0 + np.asarray(t, dtype=float) / YEAR_S
        trend = 83680.0 + 451.0 * (year - 2003.2)
        solar = 8000.0 * np.cos(2 * np.pi * (year - 2009.0) / 11.0)
        orbit = 1.0 + 0.02 * np.sin(2 * np.pi * np.asarray(t, dtype=float) / self.orbit_period)
        return (trend + solar) * orbit

    def bursts_between(self, t0: float, t1: float) -> Table:
        """Catalogue rows whose pulse matters in [t0, t1) (within 30 decay times)."""
        cat = load_grb_catalog()
        peak = cat["t_peak_ijd_s"]
        keep = (cat["spiacs_peak"] > 0) & (peak + 30 * cat["t_decay"] >= t0) & (peak - 30 * cat["t_rise"] <= t1)
        return cat[keep]

    def signal(self, starts: np.ndarray) -> np.ndarray:
        """Mean burst rate over each native bin starting at ``starts``."""
        out = np.zeros(starts.size)
        if starts.size == 0:
            return out
        for row in self.bursts_between(float(starts[0]), float(starts[-1] + NATIVE_BIN)):
            out += fred_mean(starts, starts + NATIVE_BIN, float(row["t_peak_ijd_s"]), float(row["spiacs_peak"]),
                             float(row["t_rise"]), float(row["t_decay"]))
        return out

    def _chunk(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        i = np.arange(k * CHUNK, (k + 1) * CHUNK, dtype=np.int64)
        starts = i * NATIVE_BIN
        rng = np.random.default_rng([self.seed, k])
        lam_bkg = self.background(starts + 0.5 * NATIVE_BIN) * NATIVE_BIN
        extra = np.sqrt(max(self.noise_ratio**2 - 1.0, 0.0) / lam_bkg)
        lam = lam_bkg * np.maximum(1.0 + extra * rng.standard_normal(CHUNK), 0.0)
        lam += self.signal(starts) * NATIVE_BIN
        return starts, rng.poisson(lam).astype(np.float64)

    def counts(self, t_start: float, t_stop: float) -> tuple[np.ndarray, np.ndarray]:
        """Native samples whose start lies in [t_start, t_stop): (start times in IJD s, counts)."""
        i0 = int(np.ceil(t_start / NATIVE_BIN - 1e-9))
        i1 = int(np.ceil(t_stop / NATIVE_BIN - 1e-9))
        if i1 <= i0:
            return np.zeros(0), np.zeros(0)
        parts_t, parts_c = [], []
        for k in range(i0 // CHUNK, (i1 - 1) // CHUNK + 1):
            starts, counts = self._chunk(k)
            lo, hi = max(i0 - k * CHUNK, 0), min(i1 - k * CHUNK, CHUNK)
            parts_t.append(starts[lo:hi])
            parts_c.append(counts[lo:hi])
        return np.concatenate(parts_t), np.concatenate(parts_c)
