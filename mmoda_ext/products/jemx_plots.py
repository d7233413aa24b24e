"""PNG previews of the JEM-X spectrum and light curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..archive.fitsutil import ijd_to_time
from ..science import jemx_response
from .plots import plot_light_curve, save_png

__all__ = ["plot_spectrum", "plot_lc"]


def plot_spectrum(path: Path, rate: np.ndarray, error: np.ndarray, meta: dict[str, Any]) -> Path:
    """Count spectrum per keV against energy, log-log, with error bars."""
    e = jemx_response.SPEC_EDGES
    mid, width = np.sqrt(e[1:] * e[:-1]), np.diff(e)
    fig = Figure(figsize=(7.5, 5.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ok = np.isfinite(rate) & (rate > 0)
    ax.errorbar(mid[ok], rate[ok] / width[ok], yerr=error[ok] / width[ok],
                xerr=[mid[ok] - e[:-1][ok], e[1:][ok] - mid[ok]], fmt="o", ms=3, color="#1565c0")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy (keV)")
    ax.set_ylabel("Rate (cts s$^{-1}$ keV$^{-1}$, on-axis equivalent)")
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"JEM-X{meta['unit']} spectrum of {meta['name']} · {meta['n_scw']} of {meta.get('n_scw_matched', meta['n_scw'])} science windows · "
                 f"exposure {meta['exposure'] / 1e3:.1f} ks", fontsize=10)
    fig.tight_layout()
    save_png(fig, path, dpi=110)
    return path


def plot_lc(path: Path, lc: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    t0 = float(lc["time"][0] - 0.5 * lc["timedel"][0])
    start = ijd_to_time(t0).utc.isot[:19]
    return plot_light_curve(
        path, (lc["time"] - t0) * 86400.0, lc["rate"], lc["error"],
        title=f"JEM-X{meta['unit']} {meta['e1']:g}–{meta['e2']:g} keV light curve of {meta['name']}",
        xlabel=f"Time since {start} UTC (s)", ylabel="Rate (cts/s, on-axis equivalent)",
        background=lc["brate"],
        subtitle=f"{meta['n_scw']} of {meta.get('n_scw_matched', meta['n_scw'])} science windows · bin {meta['timedel'] * 86400:g} s",
    )
