"""The ISGRI light curve as OSA writes it (``ISGR-SRC.-LCR``, IJD times, OGIP rate columns) and
its PNG preview; the binned values come from :class:`...science.lightcurve.LcSum`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..archive.fitsutil import ijd_to_time, standard_header
from ..science.lightcurve import DAY, LcSum
from .fitsfile import write_hdus

__all__ = ["write_lc", "plot_lc"]


def write_lc(path: Path, lc: LcSum, t: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """ISGR-SRC.-LCR: TIME (IJD), TOT_COUNTS, BACKV, BACKE, RATE, ERROR, FRACEXP, XAX_E, TIMEDEL."""
    units = {"TIME": "d", "TOT_COUNTS": "count", "BACKV": "count/s", "BACKE": "count/s",
             "RATE": "count/s", "ERROR": "count/s", "FRACEXP": "", "XAX_E": "d", "TIMEDEL": "d"}
    fmt = {"TIME": "D", "TOT_COUNTS": "J", "XAX_E": "D", "TIMEDEL": "D"}
    cols = [fits.Column(n, fmt.get(n, "E"), unit=units[n] or None,
                        array=t[n].astype(np.int64) if n == "TOT_COUNTS" else t[n]) for n in units]
    tstart, tstop = meta["tstart"], meta["tstop"]
    h = standard_header("IBIS", tstart, tstop, extname="ISGR-SRC.-LCR")
    h["HDUCLASS"], h["HDUCLAS1"], h["HDUCLAS2"] = "OGIP", "LIGHTCURVE", "TOTAL"
    h["HDUCLAS3"] = "RATE"
    h["DETNAM"] = "ISGRI"
    h["NAME"] = (lc.name, "source name")
    h["RA_OBJ"], h["DEC_OBJ"] = (lc.ra, "[deg]"), (lc.dec, "[deg]")
    h["TIMEDEL"] = (meta["time_bin"] / DAY, "[d] bin width")
    h["TIMEPIXR"] = (0.5, "TIME is the bin centre")
    h["TIMEZERO"] = (0.0, "[d]")
    h["E_MIN"], h["E_MAX"] = (float(meta["e1"]), "[keV]"), (float(meta["e2"]), "[keV]")
    h["OSA_VERS"] = (meta["osa_version"], "rate scale of RATE/ERROR")
    h["NUM_SCW"] = (lc.n_scw, "science windows with this source")
    h["EXPOSURE"] = (float(np.sum(t["EXPOSURE"])), "[s] dead-time corrected")
    h["BACKVDEF"] = ("whole-detector rate", "BACKV: fitted background")
    prim = fits.PrimaryHDU(header=standard_header("IBIS", tstart, tstop))
    hdu = fits.BinTableHDU.from_columns(fits.ColDefs(cols), header=h)
    write_hdus([prim, hdu], path)
    return path


def plot_lc(path: Path, name: str, t: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """Rate against time (MJD) with error bars and bin widths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_png

    # TIME is IJD in TT: the axis counts UTC days from a UTC midnight, so the date it names is
    # the calendar date of the data (a TT midnight is 23:58:5x UTC of the day before)
    mjd = ijd_to_time(t["TIME"]).utc.mjd if len(t["TIME"]) else np.array([])
    mjd0 = float(np.floor(mjd.min())) if mjd.size else 0.0
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    ax.errorbar(mjd - mjd0, t["RATE"], yerr=t["ERROR"], xerr=t["XAX_E"], fmt="o", ms=3, lw=1,
                color="#1565c0", ecolor="#90a4ae")
    ax.axhline(0.0, color="k", lw=0.5, alpha=0.5)
    ax.set_xlabel(f"Time (days since {Time(mjd0, format='mjd', scale='utc').iso[:10]} 00:00 UTC = MJD {mjd0:.0f} UTC)")
    ax.set_ylabel(f"Rate {meta['e1']:g}–{meta['e2']:g} keV (cts/s)")
    ax.set_title(f"ISGRI {name} · {meta['time_bin']:g} s bins · {meta['osa_version']}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return path
