"""ISGRI spectra as OGIP files, in OSA's layouts (``instruments.md`` §6.5): PHA ``ISGR-EVTS-SPE``,
ARF ``SPECRESP``, RMF ``EBOUNDS`` + ``SPECRESP MATRIX``.

The content (rates, effective area, redistribution) comes from :mod:`...science.spectrum`;
this module only lays it out as MMODA delivers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..archive.fitsutil import standard_header
from ..science.spectrum import CHANNELS, E_IN, SourceSum, channel_scale, rmf_matrix
from .fitsfile import write_hdus

__all__ = ["write_pha", "write_arf", "write_rmf"]

def _ogip(h: fits.Header, clas1: str, clas2: str | None = None, clas3: str | None = None) -> None:
    h["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
    h["HDUCLAS1"] = clas1
    if clas2:
        h["HDUCLAS2"] = clas2
    if clas3:
        h["HDUCLAS3"] = clas3


def _primary(s: SourceSum) -> fits.PrimaryHDU:
    h = standard_header("IBIS", s.tstart, s.tstop)
    h["DETNAM"] = "ISGRI"
    h["CREATOR"] = "mmoda-hub isgri_spectrum"
    return fits.PrimaryHDU(header=h)


def write_pha(path: Path, s: SourceSum, meta: dict[str, Any]) -> Path:
    """OGIP type I PHA, extension ISGR-EVTS-SPE, rates (HDUCLAS3 = RATE), total (source) spectrum.

    Loadable by XSPEC as written: RESPFILE / ANCRFILE name the RMF and ARF delivered with it
    (``meta["respfile"]``, ``meta["ancrfile"]``); QUALITY is 1 where a channel has no data and
    2 (dubious) outside the calibrated band ``meta["calibrated"]`` = (E_lo, E_hi) keV.
    """
    scale = channel_scale(meta["osa_version"])
    rate, err = s.rate * scale, s.error * scale
    good = np.isfinite(rate) & np.isfinite(err)
    n = rate.size
    lo, hi = meta.get("calibrated", (CHANNELS[0], CHANNELS[-1]))
    calibrated = (CHANNELS[:-1] >= lo - 1e-6) & (CHANNELS[1:] <= hi + 1e-6)
    quality = np.where(~good, 1, np.where(calibrated, 0, 2)).astype(np.int16)
    cols = fits.ColDefs([
        fits.Column("CHANNEL", "J", array=np.arange(n, dtype=np.int32)),
        fits.Column("RATE", "E", unit="count/s", array=np.where(good, rate, 0.0)),
        fits.Column("SYS_ERR", "E", array=np.zeros(n)),
        fits.Column("STAT_ERR", "E", unit="count/s", array=np.where(good, err, 0.0)),
        fits.Column("QUALITY", "I", array=quality),
        fits.Column("GROUPING", "I", array=np.ones(n, np.int16)),
    ])
    revs = sorted(s.revolutions)
    h = standard_header("IBIS", s.tstart, s.tstop, revol=revs[0] if revs else None,
                        extname="ISGR-EVTS-SPE")
    _ogip(h, "SPECTRUM", "TOTAL", "RATE")
    h["HDUCLAS4"] = "TYPE:I"
    h["HDUVERS"] = "1.2.1"
    h["DETNAM"] = "ISGRI"
    h["FILTER"] = "NONE"
    h["CHANTYPE"] = "PI"
    h["DETCHANS"] = (n, "archive channels 15-1000 keV")
    h["TLMIN1"], h["TLMAX1"] = 0, n - 1
    h["POISSERR"] = (False, "errors from the PIF fit")
    h["EXPOSURE"] = (s.exposure, "[s] sum of ONTIME x DEADC of the windows used")
    h["EXP_SRC"] = (s.exp_src, "[s] exposure x coded fraction at the source")
    h["ONTIME"] = (s.ontime, "[s] sum of window ONTIMEs")
    h["DEADC"] = (s.exposure / s.ontime if s.ontime > 0 else 1.0, "mean dead-time correction")
    h["NAME"] = (s.name, "source name")
    h["RA_OBJ"] = (s.ra, "[deg] source RA (J2000)")
    h["DEC_OBJ"] = (s.dec, "[deg] source Dec (J2000)")
    h["SOURCEID"] = (f"J{s.source_id:07d}" if s.source_id >= 0 else "NONE", "catalogue id")
    h["REVOL_N"] = (len(revs), "number of revolutions")
    h["NUM_SCW"] = (s.n_scw, "science windows summed")
    h["BKGPARAM"] = ("fitted", "map scale fitted per window, channel")
    h["OFFCORR"] = ("PIF", "on-axis equivalent rates")
    h["OSA_VERS"] = (meta["osa_version"], "rate scale of the rates")
    h["BACKFILE"], h["CORRFILE"] = "NONE", "NONE"
    for key, what in (("RESPFILE", "RMF"), ("ANCRFILE", "ARF")):
        name = meta.get(key.lower(), "NONE")  # a long file name leaves no room for a comment
        h[key] = (name, f"{what} delivered with this spectrum" if len(name) < 32 else "")
    h["CAL_EMIN"], h["CAL_EMAX"] = (float(lo), "[keV] QUALITY 0 from"), (float(hi), "[keV] QUALITY 0 to")
    h["AREASCAL"], h["BACKSCAL"], h["CORRSCAL"] = 1.0, 1.0, 0.0
    hdu = fits.BinTableHDU.from_columns(cols, header=h)
    write_hdus([_primary(s), hdu], path)
    return path


def write_arf(path: Path, s: SourceSum, meta: dict[str, Any]) -> Path:
    cols = fits.ColDefs([
        fits.Column("ENERG_LO", "E", unit="keV", array=E_IN[:-1]),
        fits.Column("ENERG_HI", "E", unit="keV", array=E_IN[1:]),
        fits.Column("SPECRESP", "E", unit="cm**2", array=s.arf),
    ])
    h = standard_header("IBIS", s.tstart, s.tstop, extname="SPECRESP")
    _ogip(h, "RESPONSE", "SPECRESP")
    h["HDUVERS"] = "1.1.0"
    h["DETNAM"] = "ISGRI"
    h["NAME"] = s.name
    h["OSA_VERS"] = meta["osa_version"]
    hdu = fits.BinTableHDU.from_columns(cols, header=h)
    write_hdus([_primary(s), hdu], path)
    return path


def write_rmf(path: Path, s: SourceSum, meta: dict[str, Any], threshold: float = 1e-7) -> Path:
    """RMF as OSA ships it: HDU 1 ``EBOUNDS``, HDU 2 ``SPECRESP MATRIX`` (one channel group per
    energy, fixed width), so that ``rmf.data_unit[2].data['MATRIX']`` works as on MMODA."""
    m = rmf_matrix(meta["osa_version"])
    n_e, n_c = m.shape
    f_chan = np.zeros(n_e, np.int32)
    n_chan = np.zeros(n_e, np.int32)
    n_grp = np.zeros(n_e, np.int16)
    rows = []
    for i in range(n_e):
        nz = np.nonzero(m[i] > threshold)[0]
        if nz.size:
            f_chan[i], n_chan[i], n_grp[i] = nz[0], nz[-1] - nz[0] + 1, 1
            rows.append(m[i, nz[0]:nz[-1] + 1].astype(np.float32))
        else:
            rows.append(np.zeros(0, np.float32))
    # fixed-width MATRIX (OGIP allows it: N_CHAN values used per row, zero padded): unlike a
    # variable-length column it survives the pickled FITS_rec of the oda_api wire encoding
    width = max(1, int(n_chan.max()))
    matrix = np.zeros((n_e, width), np.float32)
    for i, row in enumerate(rows):
        matrix[i, : row.size] = row
    cols = fits.ColDefs([
        fits.Column("ENERG_LO", "E", unit="keV", array=E_IN[:-1]),
        fits.Column("ENERG_HI", "E", unit="keV", array=E_IN[1:]),
        fits.Column("N_GRP", "I", array=n_grp),
        fits.Column("F_CHAN", "J", array=f_chan),
        fits.Column("N_CHAN", "J", array=n_chan),
        fits.Column("MATRIX", f"{width}E", array=matrix),
    ])
    h = standard_header("IBIS", s.tstart, s.tstop, extname="SPECRESP MATRIX")
    _ogip(h, "RESPONSE", "RSP_MATRIX", "REDIST")
    h["HDUVERS"] = "1.3.0"
    h["DETNAM"] = "ISGRI"
    h["CHANTYPE"] = "PI"
    h["DETCHANS"] = n_c
    h["TLMIN4"] = 0
    h["LO_THRES"] = (threshold, "lower threshold of stored matrix values")
    h["EFFAREA"] = (1.0, "the area is in the ARF")
    h["OSA_VERS"] = (meta["osa_version"], "channel rate scale folded into the matrix")
    mat = fits.BinTableHDU.from_columns(cols, header=h)
    eb_h = standard_header("IBIS", s.tstart, s.tstop, extname="EBOUNDS")
    _ogip(eb_h, "RESPONSE", "EBOUNDS")
    eb_h["HDUVERS"] = "1.2.0"
    eb_h["CHANTYPE"] = "PI"
    eb_h["DETCHANS"] = n_c
    eb = fits.BinTableHDU.from_columns(fits.ColDefs([
        fits.Column("CHANNEL", "J", array=np.arange(n_c, dtype=np.int32)),
        fits.Column("E_MIN", "E", unit="keV", array=CHANNELS[:-1]),
        fits.Column("E_MAX", "E", unit="keV", array=CHANNELS[1:]),
    ]), header=eb_h)
    write_hdus([_primary(s), eb, mat], path)
    return path
