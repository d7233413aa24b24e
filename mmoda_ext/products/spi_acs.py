"""The SPI-ACS light-curve file as ``dispatcher-plugin-integral-all-sky`` writes it: a ``RATE``
extension with ``TIME`` in s from ``TIMEZERO`` (IJD seconds, TT), ``RATE`` and ``ERROR`` in
count/s and the plugin's header keywords, then ``BURSTS`` with the burst finder's result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..archive.spiacs_data import time_from_ijd_seconds
from .fitsfile import write_hdus

__all__ = ["write_lc"]


def write_lc(path: Path, lc: Any, burst: Any, search_bin: float, params: dict[str, Any]) -> Path:
    """``RATE`` (TIME from TIMEZERO, RATE, ERROR; the plugin's keywords) and ``BURSTS`` (the burst
    finder's result): ``lc`` is a :func:`...science.spiacs.rebin` light curve, ``burst`` a
    :func:`...science.bursts.find_burst` result."""
    cols = [
        fits.Column(name="TIME", format="D", unit="s", array=lc.time),
        fits.Column(name="RATE", format="D", unit="count/s", array=lc.rate),
        fits.Column(name="ERROR", format="D", unit="count/s", array=lc.error),
    ]
    rate = fits.BinTableHDU.from_columns(cols, name="RATE")
    h = rate.header
    start = time_from_ijd_seconds(lc.t_ref + lc.t_start)
    stop = time_from_ijd_seconds(lc.t_ref + lc.t_stop)
    for key, value, comment in [
        ("TIMESYS", "TT", "time system"),
        ("TIMEREF", "LOCAL", "time reference"),
        ("ONTIME", lc.t_stop - lc.t_start, "[s] time covered by the data"),
        ("TASSIGN", "SATELLITE", "time assigned on board"),
        ("TSTART", lc.t_ref + lc.t_start, "[s] start, IJD seconds (TT)"),
        ("TSTOP", lc.t_ref + lc.t_stop, "[s] stop, IJD seconds (TT)"),
        ("DATE-OBS", start.utc.isot, "start (UTC)"),
        ("DATE-END", stop.utc.isot, "stop (UTC)"),
        ("TIMEDEL", lc.time_bin, "[s] bin width"),
        ("MJDREF", 51544.0, "IJD 0 as MJD (TT)"),
        ("TELESCOP", "INTEGRAL", ""),
        ("INSTRUME", "SPI-ACS", ""),
        ("TIMEZERO", lc.t_ref, "[s] IJD seconds of TIME = 0"),
        ("TIMEUNIT", "s", ""),
        ("PROPHECY", "none", "simulated data: no orbit prophecy"),
        ("EPHS", "none", "simulated data: no INTEGRAL ephemeris"),
        ("DATALVL", str(params.get("data_level", "ordinary")), "ordinary or realtime"),
        ("ORIGIN", "mmoda-hub simulation", "simulated SPI-ACS counts"),
        ("SIMULATE", True, "simulated data, not SPI-ACS observations"),
    ]:
        h[key] = (value, comment)
    info = Table(rows=[burst.to_dict()])
    info["search_bin"] = [search_bin]
    for col, unit in [("t_peak", "s"), ("t_start", "s"), ("t_stop", "s"), ("t05", "s"), ("t95", "s"),
                      ("t90", "s"), ("peak_excess", "count/s"), ("background", "count/s"),
                      ("net_counts", "count"), ("search_bin", "s")]:
        info[col].unit = unit
    info.rename_columns(info.colnames, [c.upper() for c in info.colnames])
    info["DETECTED"] = info["DETECTED"].astype(np.int16)
    bursts = fits.table_to_hdu(info)
    bursts.name = "BURSTS"
    bursts.header["TIMEZERO"] = (lc.t_ref, "[s] IJD seconds of time = 0 (same as RATE)")
    bursts.header["COMMENT"] = "Burst finder: polynomial background fitted off-burst, significance vs off-burst scatter"
    write_hdus([fits.PrimaryHDU(), rate, bursts], path)
    return path
