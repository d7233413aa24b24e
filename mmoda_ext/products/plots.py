"""PNG previews for light curves and upper-limit spectra (SPI-ACS, POLAR, ANTARES).

Rendered with matplotlib's Agg canvas directly (no pyplot state), so it is safe in worker
threads and processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_light_curve", "plot_upper_limits", "mark_simulated", "save_png", "SIMULATED_MARK"]

#: the mark every preview of simulated data carries (FITS files carry SIMULATE = T)
SIMULATED_MARK = "SIMULATED DATA · MMODA Hub"


def mark_simulated(fig, text: str = SIMULATED_MARK) -> None:
    """Write the simulated-data mark in the figure's lower right corner (any matplotlib figure)."""
    fig.text(0.995, 0.005, text, ha="right", va="bottom", fontsize=7, color="#b71c1c", alpha=0.8)


def save_png(fig, path: Path, simulated: bool = True, **savefig) -> Path:
    """Every preview leaves through here: the visible mark, and the same words in the PNG's
    ``Description`` text chunk so that a program (and the tests) can tell too."""
    if simulated:
        mark_simulated(fig)
    fig.savefig(path, metadata={"Description": SIMULATED_MARK if simulated else "MMODA Hub"}, **savefig)
    return path


def _save(fig: Figure, path: Path, simulated: bool = True) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    return save_png(fig, path, simulated, dpi=110)


def _break_gaps(time: np.ndarray, *values: np.ndarray):
    """Insert NaN points at both ends of every gap longer than 1.5 bins (one bin inside it), so
    that neither lines nor mid-steps bridge it."""
    if time.size < 3:
        return (time, *values)
    step = np.median(np.diff(time))
    gaps = np.nonzero(np.diff(time) > 1.5 * step)[0]
    if gaps.size == 0:
        return (time, *values)
    where = np.repeat(gaps + 1, 2)
    t = np.insert(time.astype(float), where, np.column_stack([time[gaps] + step, time[gaps + 1] - step]).ravel())
    return (t, *(np.insert(v.astype(float), where, np.nan) for v in values))


def plot_light_curve(
    path: Path,
    time: np.ndarray,
    rate: np.ndarray,
    error: np.ndarray,
    *,
    title: str,
    xlabel: str = "Time (s)",
    ylabel: str = "Rate (cts/s)",
    background: np.ndarray | None = None,
    marks: Sequence[tuple[float, str]] = (),
    span: tuple[float, float] | None = None,
    subtitle: str = "",
) -> Path:
    """Rate against time with error bars, an optional background curve and labelled markers."""
    fig = Figure(figsize=(8.0, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    if time.size > 2000:  # error bars of thousands of points are a grey smear: draw a band
        time, rate, error = _break_gaps(time, rate, error)  # data gaps (SAA) stay empty
        ax.fill_between(time, rate - error, rate + error, step="mid", color="C0", alpha=0.3, lw=0)
        ax.step(time, rate, where="mid", color="C0", lw=0.7, label="data")
    else:
        ax.errorbar(time, rate, yerr=error, fmt=".", ms=3, color="C0", ecolor="0.6", elinewidth=0.8, label="data")
    if background is not None:
        ax.plot(time, background, color="C1", lw=1.2, label="background fit")
    if span is not None:
        ax.axvspan(span[0], span[1], color="C3", alpha=0.12, label="burst (T90)")
    for t, label in marks:
        ax.axvline(t, color="C3", lw=0.8, ls="--")
        ax.annotate(label, (t, 0.97), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                    fontsize=8, color="C3")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.grid(alpha=0.3)
    if background is not None or span is not None:
        ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_upper_limits(
    path: Path,
    energy: np.ndarray,
    e2flux: np.ndarray,
    *,
    title: str,
    index: np.ndarray | None = None,
    norm: np.ndarray | None = None,
    simulated: bool = True,
    e_min: float = 100.0,
) -> Path:
    """Log-log E² flux upper-limit envelope, with the per-index power laws faintly behind it.

    Drawn from ``e_min`` GeV only (the table keeps the plugin's 0.1 GeV – 1 PeV grid): below
    ~100 GeV ANTARES tracks carry no information and the extrapolated envelope misleads.
    """
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    sel = energy >= e_min
    energy, e2flux = energy[sel], e2flux[sel]
    if index is not None and norm is not None:
        for g, n in zip(index[::7], norm[::7], strict=False):
            ax.loglog(energy, n * energy ** (2.0 - g), color="0.75", lw=0.7)
    ax.loglog(energy, e2flux, color="C3", lw=2.0, label="90% CL upper limit (envelope)")
    ax.set_xlabel("E (GeV)")
    ax.set_ylabel(r"$E^2\,\Phi_{UL}$ (GeV cm$^{-2}$ s$^{-1}$)")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(np.min(e2flux) / 10.0, np.max(e2flux) * 3.0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path, simulated)
