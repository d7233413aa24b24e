"""ANTARES upper-limit tables as FITS (``SPECTRA_UPPER_LIMIT``, ``UL_BY_INDEX``), each header
saying whether the events are simulated or the real public 2007-2017 sample.
"""

from __future__ import annotations

from pathlib import Path

from astropy.io import fits
from astropy.table import Table

from .fitsfile import write_hdus

__all__ = ["write_fits"]


def write_fits(path: Path, table: Table, extname: str, simulated: bool, source: str) -> Path:
    """One table extension ``extname``; both headers say ANTARES, simulated or the real public
    sample, and the source of the events."""
    hdu = fits.table_to_hdu(table)
    hdu.name = extname
    prim = fits.PrimaryHDU()
    for h in (prim.header, hdu.header):
        h["TELESCOP"] = "ANTARES"
        h["SIMULATE"] = (simulated, "simulated events" if simulated else "real public 2007-2017 sample")
        h["ORIGIN"] = ("MMODA-Hub", source[:60])
    write_hdus([prim, hdu], path)
    return path
