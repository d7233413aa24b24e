"""INTEGRAL time and FITS-header conventions.

INTEGRAL Julian Date: IJD = MJD(TT) - 51544, i.e. days since 2000-01-01T00:00:00 TT. Every
INTEGRAL product header says so with ``TIMESYS='TT'``, ``MJDREF=51544.0``, ``TIMEUNIT='d'``;
``TSTART``/``TSTOP`` are IJD. Keeping this in one place means every writer agrees.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.io import fits
from astropy.time import Time

__all__ = ["MJDREF", "ijd_to_time", "time_to_ijd", "to_ijd", "standard_header"]

#: MJD (TT) of IJD 0
MJDREF = 51544.0


def ijd_to_time(ijd: float | np.ndarray) -> Time:
    """IJD (TT days) -> astropy ``Time`` in the TT scale."""
    return Time(np.asarray(ijd, dtype=float) + MJDREF, format="mjd", scale="tt")


def time_to_ijd(t: Time) -> float | np.ndarray:
    """astropy ``Time`` (any scale) -> IJD (TT days)."""
    tt = t.tt
    # two-part arithmetic keeps sub-microsecond precision
    out = (tt.jd1 - 2400000.5 - MJDREF) + tt.jd2
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=float)


def to_ijd(value: Any) -> float:
    """A time given as ``Time``, ISO string (UTC) or a number (already IJD) -> IJD."""
    if isinstance(value, Time):
        return float(time_to_ijd(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return float(time_to_ijd(Time(str(value).strip(), scale="utc")))


def standard_header(
    instrument: str,
    tstart: float | None = None,
    tstop: float | None = None,
    revol: int | None = None,
    swid: str | None = None,
    extname: str | None = None,
    **extra: Any,
) -> fits.Header:
    """A header with the INTEGRAL conventions (TT, MJDREF 51544, IJD TSTART/TSTOP).

    ``extra`` keywords are appended as given (upper-cased); values may be ``(value, comment)``.
    """
    h = fits.Header()
    if extname:
        h["EXTNAME"] = (extname, "name of this binary table extension")
    h["TELESCOP"] = ("INTEGRAL", "mission name")
    h["INSTRUME"] = (instrument.upper(), "instrument name")
    h["ORIGIN"] = ("MMODA-Hub", "simulated archive, INTEGRAL conventions")
    h["SIMULATE"] = (True, "simulated data, not INTEGRAL observations")
    h["TIMESYS"] = ("TT", "time system")
    h["TIMEREF"] = ("LOCAL", "reference frame for the times")
    h["MJDREF"] = (MJDREF, "modified Julian date of IJD 0 (TT)")
    h["TIMEUNIT"] = ("d", "unit of time keywords")
    if revol is not None:
        h["REVOL"] = (int(revol), "revolution number")
    if swid is not None:
        h["SWID"] = (swid, "science window identifier")
    if tstart is not None:
        h["TSTART"] = (float(tstart), "start time (IJD)")
        h["DATE-OBS"] = (ijd_to_time(tstart).utc.isot, "start date (UTC)")
    if tstop is not None:
        h["TSTOP"] = (float(tstop), "end time (IJD)")
        h["DATE-END"] = (ijd_to_time(tstop).utc.isot, "end date (UTC)")
    if tstart is not None and tstop is not None:
        h["TELAPSE"] = (round((tstop - tstart) * 86400.0, 3), "[s] elapsed time")
    for key, value in extra.items():
        h[key.upper()] = value
    return h
