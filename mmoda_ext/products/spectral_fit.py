"""A spectral fit as files: the ``SPECTRAL-FIT`` / ``FIT-SPECTRUM`` FITS and the counts-spectrum
preview with the folded model, residuals, fitted band and parameters. The fit itself is
:func:`...science.spectral_fit.fit_spectrum`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits

from ..archive.fitsutil import standard_header
from ..science.ibis import ISGRI_CHANNELS
from ..science.spectral_fit import UNITS, FitResult
from .fitsfile import write_hdus

__all__ = ["plot_fit", "write_fit"]


def plot_fit(path, edges: np.ndarray, rate: np.ndarray, error: np.ndarray,
             fit: FitResult | None, title: str):
    """Counts spectrum (cts/s/keV, log-log) with the folded model and χ residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_png

    de = np.diff(edges)
    mid = np.sqrt(edges[1:] * edges[:-1])
    ok = np.isfinite(rate) & np.isfinite(error) & (error > 0)
    fig, (ax, rx) = plt.subplots(2, 1, figsize=(7.5, 6.4), dpi=110, sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05})
    y, ye = rate / de, error / de
    used = ok if fit is None else ok & fit.channels
    pos = used & (y > 0)
    ax.errorbar(mid[pos], y[pos], yerr=np.minimum(ye[pos], 0.999 * y[pos]),
                xerr=[mid[pos] - edges[:-1][pos], edges[1:][pos] - mid[pos]],
                fmt="o", ms=3, color="#1565c0", lw=1, label="data")
    up = used & (y <= 0)
    if up.any():
        ax.errorbar(mid[up], 2 * ye[up], yerr=0.5 * ye[up], uplims=True, fmt="none",
                    color="#90a4ae", label="2σ upper limits")
    if fit is not None:
        m = fit.model_rate / de
        steps = np.repeat(edges, 2)[1:-1]
        sel = np.repeat(fit.channels, 2)
        ax.plot(np.where(sel, steps, np.nan), np.repeat(m, 2), color="#d84315", lw=1.3,
                label=f"{fit.model} (χ²={fit.stat:.1f}/{fit.dof})")
        chi = (rate - fit.model_rate) / np.where(ok, error, 1.0)
        rx.errorbar(mid[used], chi[used], yerr=1.0, fmt="o", ms=3, color="#1565c0", lw=1)
    rx.axhline(0.0, color="k", lw=0.7)
    if fit is not None:  # the fitted band, and the parameters with their 1σ errors
        lo, hi = float(edges[:-1][fit.channels].min()), float(edges[1:][fit.channels].max())
        for a in (ax, rx):
            a.axvspan(edges[0], lo, color="0.9", zorder=0)
            a.axvspan(hi, edges[-1], color="0.9", zorder=0)
        lines = [f"fit {lo:.4g}–{hi:.4g} keV, χ² = {fit.stat:.1f} / {fit.dof}"]
        lines += [f"{n} = {fit.values[n]:.4g} ± {fit.errors[n]:.2g}" for n in fit.names]
        lines.append(f"F({fit.flux_band[0]:g}–{fit.flux_band[1]:g} keV) = {fit.flux:.3g} ± {fit.flux_err:.2g} erg/cm²/s")
        ax.text(0.02, 0.03, "\n".join(lines), transform=ax.transAxes, fontsize=8, va="bottom",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.7"})
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    ticks = [t for t in (15, 20, 30, 50, 100, 200, 300, 500, 1000) if edges[0] <= t <= edges[-1]]
    rx.xaxis.set_major_locator(FixedLocator(ticks))  # labelled energies that never collide
    rx.xaxis.set_major_formatter(ScalarFormatter())
    rx.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("counts/s/keV")
    rx.set_ylabel("(data−model)/σ")
    rx.set_xlabel("Energy (keV)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    rx.grid(alpha=0.3)
    save_png(fig, path, bbox_inches="tight")
    plt.close(fig)
    return path


def write_fit(path, source: Any, fit: FitResult, rate: np.ndarray, error: np.ndarray,
              osa_version: str, edges: np.ndarray | None = None):
    """FITS: ``SPECTRAL-FIT`` (one row per parameter, with errors) and ``FIT-SPECTRUM`` (data, model)."""
    edges = ISGRI_CHANNELS if edges is None else edges
    names = list(fit.names) + ["flux"]
    vals = [fit.values[n] for n in fit.names] + [fit.flux]
    errs = [fit.errors[n] for n in fit.names] + [fit.flux_err]
    lo = [fit.lower[n] for n in fit.names] + [fit.flux - fit.flux_err]
    hi = [fit.upper[n] for n in fit.names] + [fit.flux + fit.flux_err]
    units = [UNITS[n] for n in fit.names] + ["erg/(cm2 s)"]
    h = standard_header("IBIS", source.tstart, source.tstop, extname="SPECTRAL-FIT")
    h["NAME"], h["RA_OBJ"], h["DEC_OBJ"] = source.name, source.ra, source.dec
    h["MODEL"] = (fit.model, "XSPEC model name")
    h["STATISTC"] = (fit.statistic, "fit statistic")
    h["STAT"] = (fit.stat, "statistic at the best fit")
    h["DOF"] = (fit.dof, "degrees of freedom")
    h["FIT_EMIN"] = (float(edges[:-1][fit.channels].min()), "[keV] fitted channels from")
    h["FIT_EMAX"] = (float(edges[1:][fit.channels].max()), "[keV] fitted channels to")
    h["FLUX_E1"], h["FLUX_E2"] = (fit.flux_band[0], "[keV]"), (fit.flux_band[1], "[keV]")
    h["EXPOSURE"] = (source.exposure, "[s]")
    h["OSA_VERS"] = osa_version
    h["ERRTYPE"] = ("ERROR 1sig covar, ERR_LO/HI dstat=1", "error columns")
    par = fits.BinTableHDU.from_columns([
        fits.Column("PARAM", "16A", array=np.array(names)),
        fits.Column("VALUE", "D", array=np.array(vals)),
        fits.Column("ERROR", "D", array=np.array(errs)),
        fits.Column("ERR_LO", "D", array=np.array(lo)),
        fits.Column("ERR_HI", "D", array=np.array(hi)),
        fits.Column("UNIT", "24A", array=np.array(units)),
    ], header=h)
    h2 = standard_header("IBIS", source.tstart, source.tstop, extname="FIT-SPECTRUM")
    h2["NAME"] = source.name
    spec = fits.BinTableHDU.from_columns([
        fits.Column("CHANNEL", "J", array=np.arange(rate.size, dtype=np.int32)),
        fits.Column("E_MIN", "E", unit="keV", array=edges[:-1]),
        fits.Column("E_MAX", "E", unit="keV", array=edges[1:]),
        fits.Column("RATE", "E", unit="count/s", array=np.nan_to_num(rate)),
        fits.Column("STAT_ERR", "E", unit="count/s", array=np.nan_to_num(error)),
        fits.Column("MODEL", "E", unit="count/s", array=fit.model_rate),
        fits.Column("FITTED", "L", array=fit.channels),
    ], header=h2)
    write_hdus([fits.PrimaryHDU(header=standard_header("IBIS", source.tstart, source.tstop)),
                par, spec], path)
    return path
