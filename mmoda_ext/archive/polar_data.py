"""Simulated POLAR light-curve data (Tiangong-2, 2016-09-22 to 2017-04-04 00:46:36 UTC).

POLAR data are not reachable here; this simulator gives light curves of the right kind:

* mission window: science data from 2016-09-22 (detector switched on about a week after the
  2016-09-15 launch) until the high-voltage failure at 2017-04-04 00:46:36 UTC; nothing outside;
* background ≈ 1.5e3 cts/s over the full band, modulated ±20 % along the 92.2 min orbit
  (geomagnetic latitude) — an assumed level ([R, not verified] in reference/instruments.md §5:
  "roughly 1–2e3 cts/s"), documented rather than measured;
* SAA passages: no data. Deterministic pattern: in 5 consecutive orbits out of every 15 (the
  Earth turns under the orbit once a day), the orbit crosses the SAA at a fixed phase for 8–18 min;
* GRBs: FRED pulses at the real trigger times of the 55-burst POLAR list (a subset of it in
  ``mmoda_ext/data/grb_catalog.ecsv``, column ``polar_peak``);
* energy selection [E1, E2] keV scales the background as a E⁻¹ count spectrum and the bursts as
  E⁻⁰·⁵, both on 5–1000 keV (POLAR's useful range is 50–500 keV);
* counts are drawn on a 0.1 s grid, from a generator seeded by (seed, 100 s chunk), so any
  interval and any binning see the same events.

Times are Unix seconds (UTC), as the POLAR backend uses.
"""

from __future__ import annotations

import numpy as np
from astropy.time import Time
from traitlets import Float, Integer
from traitlets.config import Configurable

from ..science.bursts import fred_mean
from .spiacs_data import load_grb_catalog

__all__ = ["MISSION_START", "MISSION_STOP", "NATIVE", "PolarArchive", "band_fraction"]

MISSION_START = Time("2016-09-22T00:00:00", scale="utc")
MISSION_STOP = Time("2017-04-04T00:46:36", scale="utc")
NATIVE = 0.1  # s
CHUNK = 1000  # native bins per random chunk
E_LO, E_HI = 5.0, 1000.0  # keV


def band_fraction(e1: float, e2: float, slope: float) -> float:
    """Fraction of an E^-slope count spectrum on [5, 1000] keV that falls in [e1, e2]."""
    lo, hi = max(e1, E_LO), min(e2, E_HI)
    if hi <= lo:
        return 0.0
    if slope == 1.0:
        return float(np.log(hi / lo) / np.log(E_HI / E_LO))
    k = 1.0 - slope
    return float((hi**k - lo**k) / (E_HI**k - E_LO**k))


class PolarArchive(Configurable):
    """The simulated POLAR data server."""

    seed = Integer(1600, config=True, help="Seed of the simulated POLAR counts.")
    background_rate = Float(1.5e3, config=True, help="Mean full-band background (cts/s); assumed, see module doc.")
    orbit_period = Float(5532.0, config=True, help="Tiangong-2 orbital period (s).")
    max_span = Float(2 * 86400.0, config=True, help="Longest interval (s) one request may ask for.")

    @property
    def start(self) -> float:
        return float(MISSION_START.unix)

    @property
    def stop(self) -> float:
        return float(MISSION_STOP.unix)

    def in_saa(self, t: np.ndarray) -> np.ndarray:
        """True during (simulated) South Atlantic Anomaly passages."""
        x = (np.asarray(t, dtype=float) - self.start) / self.orbit_period
        orbit = np.floor(x)
        phase = x - orbit
        crossing = (orbit % 15) < 5
        duration = (8.0 + 10.0 * np.sin(np.pi * ((orbit % 15) + 0.5) / 5.0)) * 60.0 / self.orbit_period
        return crossing & (phase >= 0.3) & (phase < 0.3 + duration)

    def live(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return (t >= self.start) & (t < self.stop) & ~self.in_saa(t)

    def background(self, t: np.ndarray) -> np.ndarray:
        phase = (np.asarray(t, dtype=float) - self.start) / self.orbit_period
        return self.background_rate * (1.0 + 0.2 * np.sin(4 * np.pi * phase))

    def bursts_between(self, t0: float, t1: float):
        cat = load_grb_catalog()
        unix = Time(list(cat["t0_utc"]), format="isot", scale="utc").unix + np.asarray(cat["delay"], dtype=float)
        keep = (cat["polar_peak"] > 0) & (unix + 30 * cat["t_decay"] >= t0) & (unix - 30 * cat["t_rise"] <= t1)
        out = cat[keep]
        out["t_peak_unix"] = unix[keep]
        return out

    def _chunk(self, k: int, e1: float, e2: float) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(k * CHUNK, (k + 1) * CHUNK, dtype=np.int64) * NATIVE
        rng = np.random.default_rng([self.seed, k])
        u = rng.random(CHUNK)  # one uniform per bin: counts by inverse CDF keep bins independent of E1/E2
        lam = self.background(starts + 0.5 * NATIVE) * band_fraction(e1, e2, 1.0) * NATIVE
        f_grb = band_fraction(e1, e2, 0.5)
        for row in self.bursts_between(float(starts[0]), float(starts[-1] + NATIVE)):
            lam += f_grb * NATIVE * fred_mean(starts, starts + NATIVE, float(row["t_peak_unix"]),
                                              float(row["polar_peak"]), float(row["t_rise"]), float(row["t_decay"]))
        from scipy.stats import poisson

        counts = poisson.ppf(u, np.maximum(lam, 1e-12))
        counts = np.where(self.live(starts + 0.5 * NATIVE), counts, 0.0)
        return starts, counts

    def native(self, t_start: float, t_stop: float, e1: float, e2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Native 0.1 s bins starting in [t_start, t_stop): (starts, counts, live flag)."""
        i0 = int(np.ceil(t_start / NATIVE - 1e-9))
        i1 = int(np.ceil(t_stop / NATIVE - 1e-9))
        ts, cs = [], []
        for k in range(i0 // CHUNK, (i1 - 1) // CHUNK + 1):
            starts, counts = self._chunk(k, e1, e2)
            lo, hi = max(i0 - k * CHUNK, 0), min(i1 - k * CHUNK, CHUNK)
            ts.append(starts[lo:hi])
            cs.append(counts[lo:hi])
        starts = np.concatenate(ts)
        return starts, np.concatenate(cs), self.live(starts + 0.5 * NATIVE)

    def light_curve(self, t_start: float, t_stop: float, time_bin: float, e1: float, e2: float):
        """(time, rate, rate_err, live seconds) per bin of ``time_bin`` s from ``t_start``; dead bins dropped."""
        starts, counts, live = self.native(t_start, t_stop, e1, e2)
        n = max(int(np.floor(time_bin / NATIVE + 1e-9)), 1)
        group = np.arange(starts.size) // n
        live_s = np.bincount(group, weights=live.astype(float)) * NATIVE
        cts = np.bincount(group, weights=counts)
        tmid = np.bincount(group, weights=starts) / np.bincount(group) + 0.5 * NATIVE
        keep = live_s > 0
        rate = cts[keep] / live_s[keep]
        err = np.sqrt(cts[keep]) / live_s[keep]
        return tmid[keep], rate, err, live_s[keep]
