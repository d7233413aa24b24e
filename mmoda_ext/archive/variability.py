"""Source variability: the 20-40 keV level in mCrab as a function of time (IJD), vectorised.

A source's ``variability`` column is a JSON object (empty = steady at its ``mcrab``). Keys:

``states``      ``[[date, mcrab], ...]`` piecewise-constant levels from each date on
``outbursts``   ``[{"start", "peak", "end", "peak_mcrab", "decay_d"}]`` fast rise (quadratic) and
                exponential decay, added on top of ``quiescent_mcrab`` (default 0)
``superorbital``  ``{"period_d", "t0", "on": [[phase0, phase1, level], ...], "off": level}``
                e.g. the 35 d main-on / short-on cycle of Her X-1
``orbit``       ``{"period_d", "t0", "amp", "width"}`` Gaussian flare (amp > 0) or dip around phase 0
``eclipse``     ``{"period_d", "t0", "width", "depth"}`` flux x (1 - depth) within +-width/2 of phase 0
``flicker``     ``{"rms", "tmin_d", "tmax_d"}`` deterministic log-normal red-noise-like modulation

Dates are ISO strings (UTC) or numbers (MJD). Everything is deterministic (flicker is seeded by
the source id) so that the simulated archive is reproducible.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import numpy as np

from .fitsutil import MJDREF, to_ijd

__all__ = ["Variability"]

KNOWN_KEYS = {"states", "outbursts", "quiescent_mcrab", "superorbital", "orbit", "eclipse", "flicker", "note"}


@lru_cache(maxsize=4096)
def _ijd(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value) - MJDREF  # numbers are MJD
    return to_ijd(value)


def _phase(t: np.ndarray, period: float, t0: float) -> np.ndarray:
    """Phase in [-0.5, 0.5) around t0."""
    ph = (t - t0) / period
    return ph - np.floor(ph + 0.5)


class Variability:
    """Parsed variability spec; ``level(ijd, mcrab)`` gives the 20-40 keV level in mCrab."""

    def __init__(self, spec: str | dict | None, source_id: int = 0) -> None:
        if isinstance(spec, str):
            spec = json.loads(spec) if spec.strip() else {}
        self.spec: dict = dict(spec or {})
        unknown = set(self.spec) - KNOWN_KEYS
        if unknown:
            raise ValueError(f"unknown variability keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}")
        self.source_id = int(source_id)
        s = self.spec
        self.states = [(_ijd(d), float(v)) for d, v in s.get("states", [])]
        self.outbursts = [
            (_ijd(o["start"]), _ijd(o["peak"]), _ijd(o["end"]), float(o["peak_mcrab"]),
             float(o.get("decay_d", 5.0)))
            for o in s.get("outbursts", [])
        ]
        self.quiescent = float(s.get("quiescent_mcrab", 0.0))
        self._flicker = self._make_flicker(s.get("flicker"))

    @property
    def kind(self) -> str:
        if self.outbursts:
            return "outburst"
        if self.states:
            return "states"
        if "superorbital" in self.spec:
            return "cycle"
        if self.spec.keys() - {"note"}:
            return "modulated"
        return "steady"

    def _make_flicker(self, f: dict | None):
        if not f:
            return None
        rms = float(f.get("rms", 0.2))
        tmin, tmax = float(f.get("tmin_d", 0.05)), float(f.get("tmax_d", 10.0))
        rng = np.random.default_rng([self.source_id, 0xF11C])
        n = 24
        freq = np.exp(rng.uniform(np.log(1 / tmax), np.log(1 / tmin), n))
        phase = rng.uniform(0, 2 * np.pi, n)
        sigma = np.sqrt(np.log1p(rms**2))
        return freq, phase, sigma

    def level(self, ijd: np.ndarray | float, mcrab: float) -> np.ndarray:
        """20-40 keV level (mCrab) at each time."""
        t = np.atleast_1d(np.asarray(ijd, dtype=float))
        s = self.spec
        if self.outbursts:
            lev = np.full(t.shape, self.quiescent)
            for start, peak, end, peak_mcrab, decay in self.outbursts:
                rise = np.clip((t - start) / max(peak - start, 1e-6), 0.0, 1.0) ** 2
                fall = np.exp(-np.clip(t - peak, 0.0, None) / decay)
                on = (t >= start) & (t <= end)
                lev = lev + np.where(on, peak_mcrab * np.where(t < peak, rise, fall), 0.0)
        elif self.states:
            dates = np.array([d for d, _ in self.states])
            vals = np.array([mcrab] + [v for _, v in self.states])
            lev = vals[np.searchsorted(dates, t, side="right")]
        else:
            lev = np.full(t.shape, float(mcrab))
        if "superorbital" in s:
            so = s["superorbital"]
            ph = ((t - _ijd(so["t0"])) / float(so["period_d"])) % 1.0
            mod = np.full(t.shape, float(so.get("off", 0.05)))
            for p0, p1, val in so.get("on", []):
                mod = np.where((ph >= p0) & (ph < p1), float(val), mod)
            lev = lev * mod
        if "orbit" in s:
            o = s["orbit"]
            ph = _phase(t, float(o["period_d"]), _ijd(o["t0"]))
            lev = lev * (1.0 + float(o["amp"]) * np.exp(-0.5 * (ph / float(o.get("width", 0.05))) ** 2))
        if "eclipse" in s:
            e = s["eclipse"]
            ph = _phase(t, float(e["period_d"]), _ijd(e["t0"]))
            lev = lev * np.where(np.abs(ph) < 0.5 * float(e["width"]), 1.0 - float(e.get("depth", 0.95)), 1.0)
        if self._flicker is not None:
            freq, phase, sigma = self._flicker
            g = np.sqrt(2.0 / freq.size) * np.sin(2 * np.pi * np.outer(t, freq) + phase).sum(axis=1)
            lev = lev * np.exp(sigma * g - 0.5 * sigma**2)
        return np.clip(lev, 0.0, None)
