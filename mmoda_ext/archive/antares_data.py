"""ANTARES event sample, acceptance table and background polynomial.

Two sources, chosen by configuration:

* **default: a simulated event sample**, generated deterministically at run time from the
  public background polynomial (declinations drawn from dN/dδ between −90° and the
  polynomial's maximum near +54°, right ascensions uniform), with the public acceptance table
  and polynomial shipped in ``mmoda_ext/data/antares_sim/``. Its upper limits have the right
  size everywhere but are not the published ones.
* **the real public 2007–2017 sample** (8754 track events), when ``AntaresData.data_dir`` or
  the environment variable ``MMODA_ANTARES_DATA`` names a folder holding ``ANTARES.data``,
  ``acc.txt`` and ``background.txt`` (e.g. the project's ``shared/data/antares``).

``plugin_truncation`` (default True) applies to the real file only: the MMODA C++ reads just its
first 5921 lines (a count left over from the 2007–2015 sample). The file is ordered in sky
tiles, so this drops every event below Dec −51.6° and some between −51.6° and −35.8°; keeping
it reproduces the numbers the MMODA service gives (and its bias in the far south). Set it to
False to search all 8754 events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from traitlets import Bool, Integer, Unicode
from traitlets.config import Configurable

__all__ = ["AntaresData", "AntaresSample", "PLUGIN_EVENTS", "simulate_events", "SHIPPED_DIR"]

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "data" / "antares_sim"
#: lines 0..5920 of ANTARES.data are what multiMessenger.cc reads (``counter <= 5920``)
PLUGIN_EVENTS = 5921


@dataclass
class AntaresSample:
    """What the upper-limit algorithm needs, plus where it came from."""

    ra: np.ndarray
    dec: np.ndarray
    acc_table: np.ndarray
    bkg_coeffs: np.ndarray
    source: str
    n_total: int

    @property
    def n_used(self) -> int:
        return int(self.ra.size)


def read_acceptance(path: Path) -> np.ndarray:
    table = np.loadtxt(path, dtype=float)
    if table.shape != (16, 20):
        raise ValueError(f"{path}: expected a 16 x 20 acceptance table, got {table.shape}")
    return table


def read_background(path: Path) -> np.ndarray:
    coeffs = np.loadtxt(path, dtype=float).ravel()
    if coeffs.size != 7:
        raise ValueError(f"{path}: expected 7 polynomial coefficients, got {coeffs.size}")
    return coeffs


def simulate_events(coeffs: np.ndarray, seed: int = 20071, n_grid: int = 14401) -> tuple[np.ndarray, np.ndarray]:
    """Events whose cumulative declination distribution is the background polynomial.

    The number of events is N(δ_top) − N(−90°) (≈ 8750, like the real sample), δ_top being
    where the polynomial stops rising.
    """
    poly = np.polynomial.polynomial.polyval
    grid = np.linspace(-90.0, 90.0, n_grid)
    cum = poly(grid, coeffs)
    rising = np.diff(cum) > 0
    top = int(np.argmin(rising)) if not rising.all() else grid.size - 1
    grid, cum = grid[: top + 1], cum[: top + 1]
    cum = np.maximum.accumulate(cum)
    n = int(round(cum[-1] - cum[0]))
    rng = np.random.default_rng(seed)
    u = rng.uniform(cum[0], cum[-1], n)
    dec = np.interp(u, cum, grid)
    ra = rng.uniform(0.0, 360.0, n)
    # the public file carries 1-decimal coordinates; do the same
    return np.round(ra, 1), np.round(dec, 1)


class AntaresData(Configurable):
    """Where the ANTARES sample comes from (see the module docstring)."""

    data_dir = Unicode(
        "",
        config=True,
        help="Folder with the real ANTARES.data, acc.txt and background.txt. Empty: use "
        "$MMODA_ANTARES_DATA if set, else the simulated sample shipped with the package.",
    )
    plugin_truncation = Bool(
        True,
        config=True,
        help="With the real ANTARES.data, search only its first 5921 events as the MMODA C++ "
        "service does (no events below Dec -51.6 deg). False: search all 8754 events.",
    )
    sim_seed = Integer(20071, config=True, help="Seed of the simulated event sample.")

    def resolved_dir(self) -> Path | None:
        folder = self.data_dir or os.environ.get("MMODA_ANTARES_DATA", "")
        return Path(folder) if folder else None

    def load(self) -> AntaresSample:
        folder = self.resolved_dir()
        if folder is None:
            coeffs = read_background(SHIPPED_DIR / "background.txt")
            ra, dec = simulate_events(coeffs, seed=self.sim_seed)
            return AntaresSample(ra, dec, read_acceptance(SHIPPED_DIR / "acc.txt"), coeffs,
                                 f"simulated (seed {self.sim_seed})", int(ra.size))
        events = np.loadtxt(folder / "ANTARES.data", usecols=(0, 1), dtype=float, ndmin=2)
        n_total = events.shape[0]
        if self.plugin_truncation:
            events = events[:PLUGIN_EVENTS]
        source = f"ANTARES 2007-2017 public sample ({folder})"
        if self.plugin_truncation and n_total > PLUGIN_EVENTS:
            source += f", first {PLUGIN_EVENTS} of {n_total} events as in the MMODA service"
        return AntaresSample(events[:, 0].copy(), events[:, 1].copy(),
                             read_acceptance(folder / "acc.txt"),
                             read_background(folder / "background.txt"), source, n_total)
