"""Writing a product's FITS file: the one place every product file passes through, so that no
HDU of simulated data can leave without ``SIMULATE = T`` (issue 9: marked in every product).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from astropy.io import fits

__all__ = ["write_hdus"]

#: the comment of the mark when a writer did not give its own
SIMULATE_COMMENT = "simulated data (MMODA Hub), not observations"


def write_hdus(hdus: Iterable[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU], path: Path | str,
               simulated: bool = True) -> Path:
    """Write ``hdus`` to ``path`` with ``SIMULATE`` in every header.

    A header that already says ``SIMULATE`` keeps it, and the first one given sets the value of
    the others (ANTARES's real public sample is written with ``SIMULATE = F``).
    """
    hdul = fits.HDUList(list(hdus))
    given = next((h for h in (hdu.header for hdu in hdul) if "SIMULATE" in h), None)
    value, comment = ((bool(given["SIMULATE"]), given.comments["SIMULATE"]) if given is not None
                      else (bool(simulated), SIMULATE_COMMENT))
    for hdu in hdul:
        if "SIMULATE" not in hdu.header:
            hdu.header["SIMULATE"] = (value, comment)
    hdul.writeto(path, overwrite=True)
    return Path(path)
