"""POLAR products as MMODA's POLAR service delivers them: the FITS light curve (``POLAR_LC``) and
the ROOT file beside it (``uproot`` writer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

from .fitsfile import write_hdus

__all__ = ["write_lc", "write_root"]


def write_lc(path: Path, time: np.ndarray, rate: np.ndarray, err: np.ndarray, u1: float, u2: float,
             timedel: float, params: dict[str, Any]) -> Path:
    """``POLAR_LC`` (rate, rate_err, time: Unix s, UTC, bin centre) as MMODA's POLAR service writes it;
    ``u1``-``u2`` the requested interval (Unix s), ``timedel`` the bin width (s)."""
    data = np.zeros(time.size, dtype=[("rate", "<f8"), ("rate_err", "<f8"), ("time", "<f8")])
    data["rate"], data["rate_err"], data["time"] = rate, err, time
    hdu = fits.BinTableHDU(data, name="POLAR_LC")
    for i, unit in enumerate(("count/s", "count/s", "s"), 1):
        hdu.header[f"TUNIT{i}"] = unit
    h = hdu.header
    h["TELESCOP"] = ("TIANGONG-2", "")
    h["INSTRUME"] = ("POLAR", "")
    h["TIMESYS"] = ("UTC", "time column: Unix seconds (UTC), bin centre")
    h["TIMEUNIT"] = "s"
    h["TSTART"] = (u1, "[s] Unix")
    h["TSTOP"] = (u2, "[s] Unix")
    h["DATE-OBS"] = Time(u1, format="unix").isot
    h["DATE-END"] = Time(u2, format="unix").isot
    h["TIMEDEL"] = (timedel, "[s] bin width")
    h["E_MIN"] = (float(params["E1_keV"]), "[keV]")
    h["E_MAX"] = (float(params["E2_keV"]), "[keV]")
    h["ORIGIN"] = ("mmoda-hub simulation", "simulated POLAR counts")
    h["SIMULATE"] = (True, "simulated data, not POLAR observations")
    write_hdus([fits.PrimaryHDU(), hdu], path)
    return path


def write_root(path, time: np.ndarray, rate: np.ndarray, err: np.ndarray, t0: float, timedel: float,
               params: dict[str, Any]):
    """The ROOT file MMODA's POLAR service sends beside the FITS light curve (``uproot`` writer).

    TTree ``polar_lc`` (branches ``time`` [Unix s, bin centre], ``rate``, ``rate_err`` [cts/s])
    and a TH1D ``lc`` of the rate against seconds since T1 (empty bins are SAA gaps). The
    title says the counts are simulated. Its urlsafe base64 goes to ``oda_api`` as a legacy
    ``BinaryData`` string, which the client would corrupt at any substring ``null``: the title
    is padded until the encoding has none.
    """
    import base64

    import uproot

    edges = np.concatenate([time - 0.5 * timedel, [time[-1] + 0.5 * timedel]]) - t0 if time.size else np.zeros(2)
    hist = np.zeros(max(edges.size - 1, 1))
    hist[: rate.size] = rate
    title = (f"POLAR {params['E1_keV']:g}-{params['E2_keV']:g} keV light curve, SIMULATED counts "
             f"(mmoda-hub), T1 = {params['T1']} UTC")
    for pad in range(12):
        with uproot.recreate(path) as f:
            f.mktree("polar_lc", {"time": np.float64, "rate": np.float64, "rate_err": np.float64},
                     title=title + " " * pad)
            f["polar_lc"].extend({"time": time.astype(np.float64), "rate": rate.astype(np.float64),
                                  "rate_err": err.astype(np.float64)})
            f["lc"] = (hist, edges)
        if "null" not in base64.urlsafe_b64encode(path.read_bytes()).decode():
            break
    return path
