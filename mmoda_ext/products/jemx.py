"""Writers for the JEM-X products: mosaic, catalogue, OGIP spectrum + RMF + ARF, light curve.

Names follow OSA/MMODA (``instruments.md`` §2, §6.4–6.5): mosaic images ``JMXi-MOSA-IMA``
with IMATYPE RECONSTRUCTED (intensity), VARIANCE, SIGNIFICANCE, EXPOSURE (j_ima_mosaic
order); catalogue ``JMXi-SRCL-RES``; spectrum ``JMXi-PHA1-SPE`` (OGIP type I, 16 channels)
with the RMF as ``EBOUNDS`` + ``SPECRESP MATRIX`` (OSA's order) and the ARF as ``SPECRESP`` (MMODA's renamed
``JMXi-RMF.-RSP`` / ``JMXi-FBDS-MOD`` / ``JMXi-AXIS-ARF``); light curve ``JMXi-SRC.-LCR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..archive.fitsutil import standard_header
from ..science import jemx_response as resp
from ..science.coded_mask import DecodedImage
from ..science.tangent import TangentFrame
from .fitsfile import write_hdus

__all__ = ["write_mosaic", "write_catalog", "write_spectrum", "write_rmf", "write_arf", "write_lc",
           "IMATYPES"]

IMATYPES = ("RECONSTRUCTED", "VARIANCE", "SIGNIFICANCE", "EXPOSURE")
_BUNIT = {"RECONSTRUCTED": "count/s", "VARIANCE": "count2/s2", "SIGNIFICANCE": "", "EXPOSURE": "s"}


def _instr(unit: int) -> str:
    return f"JMX{unit}"


def write_mosaic(path: Path, image: DecodedImage, frame: TangentFrame, meta: dict[str, Any]) -> Path:
    u = meta["unit"]
    prim = fits.PrimaryHDU(header=standard_header(_instr(u), meta["tstart"], meta["tstop"]))
    prim.header["CREATOR"] = ("mmoda-hub jemx_image", "program that made this file")
    arrays = dict(zip(IMATYPES, (image.intensity, image.variance, image.significance, image.exposure),
                      strict=True))
    hdus: list[Any] = [prim]
    for kind in IMATYPES:
        h = standard_header(_instr(u), meta["tstart"], meta["tstop"], extname=f"JMX{u}-MOSA-IMA")
        h["HDUCLAS1"] = "IMAGE"
        h["IMATYPE"] = (kind, "type of image")
        h["BUNIT"] = _BUNIT[kind]
        h["E_MIN"], h["E_MAX"] = (float(meta["e1"]), "[keV]"), (float(meta["e2"]), "[keV]")
        h["ONTIME"] = (float(meta["ontime"]), "[s] sum of window ONTIMEs")
        h["EXPOSURE"] = (float(meta["exposure"]), "[s] sum of window exposures")
        h["NUM_SCW"] = (int(meta["n_scw"]), "science windows in the mosaic")
        h["NSCW_ALL"] = (int(meta.get("n_scw_matched", meta["n_scw"])), "science windows that matched")
        h["OSA_VERS"] = meta["osa_version"]
        wcs = frame.wcs().to_header()
        for key in ("MJDREF", "DATE-OBS", "MJD-OBS", "DATEREF", "TIMESYS", "TIMEUNIT"):
            wcs.remove(key, ignore_missing=True)
        h.update(wcs)
        hdus.append(fits.ImageHDU(np.asarray(arrays[kind], np.float32), header=h))
    write_hdus(hdus, path)
    return path


def write_catalog(path: Path, table, meta: dict[str, Any]) -> Path:
    u = meta["unit"]
    hdu = fits.table_to_hdu(table)
    hdu.name = f"JMX{u}-SRCL-RES"
    hdu.header["RADECSYS"] = "FK5"
    hdu.header["E_MIN"], hdu.header["E_MAX"] = float(meta["e1"]), float(meta["e2"])
    hdu.header["DET_THR"] = (float(meta["threshold"]), "detection threshold (sigma)")
    prim = fits.PrimaryHDU(header=standard_header(_instr(u), meta["tstart"], meta["tstop"]))
    write_hdus([prim, hdu], path)
    return path


def write_spectrum(path: Path, rate: np.ndarray, error: np.ndarray, meta: dict[str, Any]) -> Path:
    """OGIP type-I PHA, 16 channels, rates on the on-axis-equivalent scale."""
    u = meta["unit"]
    n = len(rate)
    bad = ~np.isfinite(rate) | ~np.isfinite(error)
    cols = fits.ColDefs([
        fits.Column("CHANNEL", "J", array=np.arange(1, n + 1)),
        fits.Column("RATE", "E", unit="count/s", array=np.where(bad, 0.0, rate)),
        fits.Column("SYS_ERR", "E", array=np.zeros(n)),
        fits.Column("STAT_ERR", "E", unit="count/s", array=np.where(bad, 0.0, error)),
        fits.Column("QUALITY", "I", array=bad.astype(np.int16)),
        fits.Column("GROUPING", "I", array=np.ones(n, np.int16)),
    ])
    h = standard_header(_instr(u), meta["tstart"], meta["tstop"], extname=f"JMX{u}-PHA1-SPE")
    for k, v in {"HDUCLASS": "OGIP", "HDUCLAS1": "SPECTRUM", "HDUVERS": "1.2.1", "HDUCLAS2": "NET",
                 "HDUCLAS3": "RATE", "CHANTYPE": "PI", "DETCHANS": n, "POISSERR": False,
                 "AREASCAL": 1.0, "BACKSCAL": 1.0, "CORRSCAL": 0.0, "BACKFILE": "NONE",
                 "CORRFILE": "NONE", "ANCRFILE": meta.get("ancrfile", "NONE"),
                 "RESPFILE": meta.get("respfile", "NONE"), "FILTER": "NONE"}.items():
        h[k] = v
    h["EXPOSURE"] = (float(meta["exposure"]), "[s] dead-time corrected exposure")
    h["EXP_SRC"] = (float(meta["exposure"]), "[s] exposure on the source")
    h["ONTIME"] = (float(meta["ontime"]), "[s]")
    h["DEADC"] = float(meta["deadc"])
    h["NAME"] = meta["name"]
    h["RA_OBJ"], h["DEC_OBJ"] = float(meta["ra"]), float(meta["dec"])
    h["NUM_SCW"] = int(meta["n_scw"])
    h["OSA_VERS"] = meta["osa_version"]
    prim = fits.PrimaryHDU(header=standard_header(_instr(u), meta["tstart"], meta["tstop"]))
    write_hdus([prim, fits.BinTableHDU.from_columns(cols, header=h)], path)
    return path


def _ebounds(unit: int) -> fits.BinTableHDU:
    e = resp.SPEC_EDGES
    cols = fits.ColDefs([
        fits.Column("CHANNEL", "J", array=np.arange(1, len(e))),
        fits.Column("E_MIN", "E", unit="keV", array=e[:-1]),
        fits.Column("E_MAX", "E", unit="keV", array=e[1:]),
    ])
    h = fits.Header({"EXTNAME": "EBOUNDS", "HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE",
                     "HDUCLAS2": "EBOUNDS", "HDUVERS": "1.2.0", "CHANTYPE": "PI",
                     "DETCHANS": len(e) - 1, "TELESCOP": "INTEGRAL", "INSTRUME": _instr(unit)})
    return fits.BinTableHDU.from_columns(cols, header=h)


def write_rmf(path: Path, unit: int) -> Path:
    """Redistribution into the 16 bins (area in the ARF): ``EBOUNDS`` then ``SPECRESP MATRIX``
    (OSA's order: the matrix is HDU 2)."""
    m = resp.spectral_matrix()
    e = resp.ENERGY_EDGES
    n_e, n_c = m.shape
    cols = fits.ColDefs([
        fits.Column("ENERG_LO", "E", unit="keV", array=e[:-1]),
        fits.Column("ENERG_HI", "E", unit="keV", array=e[1:]),
        fits.Column("N_GRP", "I", array=np.ones(n_e, np.int16)),
        fits.Column("F_CHAN", "I", array=np.ones(n_e, np.int16)),
        fits.Column("N_CHAN", "I", array=np.full(n_e, n_c, np.int16)),
        fits.Column("MATRIX", f"{n_c}E", array=m.astype(np.float32)),
    ])
    h = fits.Header({"EXTNAME": "SPECRESP MATRIX", "HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE",
                     "HDUCLAS2": "RSP_MATRIX", "HDUCLAS3": "REDIST", "HDUVERS": "1.3.0",
                     "CHANTYPE": "PI", "DETCHANS": n_c, "TLMIN4": 1, "TELESCOP": "INTEGRAL",
                     "INSTRUME": _instr(unit), "LO_THRES": 0.0})
    mat = fits.BinTableHDU.from_columns(cols, header=h)
    write_hdus([fits.PrimaryHDU(), _ebounds(unit), mat], path)
    return path


def write_arf(path: Path, unit: int) -> Path:
    e = resp.ENERGY_EDGES
    cols = fits.ColDefs([
        fits.Column("ENERG_LO", "E", unit="keV", array=e[:-1]),
        fits.Column("ENERG_HI", "E", unit="keV", array=e[1:]),
        fits.Column("SPECRESP", "E", unit="cm**2", array=resp.effective_area()),
    ])
    h = fits.Header({"EXTNAME": "SPECRESP", "HDUCLASS": "OGIP", "HDUCLAS1": "RESPONSE",
                     "HDUCLAS2": "SPECRESP", "HDUVERS": "1.1.0", "TELESCOP": "INTEGRAL",
                     "INSTRUME": _instr(unit)})
    write_hdus([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, header=h)], path)
    return path


def barycentric_ijd(ijd: np.ndarray, ra: float, dec: float) -> np.ndarray:
    """BARYTIME: IJD (TT) of arrival at the solar-system barycentre (TDB), for the geocentre.

    INTEGRAL is up to 0.5 light-second from the geocentre; its orbit is not simulated, so this
    part of the correction (< 0.5 s) is left out.
    """
    from astropy.coordinates import EarthLocation, SkyCoord
    from astropy.time import Time

    if len(ijd) == 0:
        return np.asarray(ijd, float)
    t = Time(np.asarray(ijd, float) + 51544.0, format="mjd", scale="tt",
             location=EarthLocation.from_geocentric(0.0, 0.0, 0.0, unit="m"))
    ltt = t.light_travel_time(SkyCoord(ra, dec, unit="deg"), kind="barycentric")
    return (t.tdb + ltt).mjd - 51544.0


def write_lc(path: Path, lc: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """``JMXi-SRC.-LCR``: TIME (IJD, bin centre), RATE, ERROR, BRATE, BERROR, BARYTIME, FRACEXP, TIMEDEL.

    RATE is the on-axis-equivalent (vignetting-corrected) source rate of the PIF fit. BRATE is
    the fitted detector background under the source on the same scale: background counts in
    the detector area open to the source (Σ PIF·W·U), per second, divided by the vignetting,
    i.e. ≈ 0.25 × the whole-detector background (≈ 300 cts/s for the ≈ 1300 cts/s calibrated
    in :mod:`.jemx_data`). OSA's BRATE (6.2 cts/s in the real Crab LC of ``instruments.md``
    §2) uses a normalisation that is not documented there and is not reproduced; what is
    calibrated on that LC is the noise (ERROR and DETSIG), not BRATE's absolute value.
    """
    u = meta["unit"]
    cols = fits.ColDefs([
        fits.Column("TIME", "D", unit="d", array=lc["time"]),
        fits.Column("RATE", "E", unit="count/s", array=lc["rate"]),
        fits.Column("ERROR", "E", unit="count/s", array=lc["error"]),
        fits.Column("BRATE", "E", unit="count/s", array=lc["brate"]),
        fits.Column("BERROR", "E", unit="count/s", array=lc["berror"]),
        fits.Column("BARYTIME", "D", unit="d", array=barycentric_ijd(lc["time"], meta["ra"], meta["dec"])),
        fits.Column("FRACEXP", "E", array=lc["fracexp"]),
        fits.Column("TIMEDEL", "D", unit="d", array=lc["timedel"]),
    ])
    h = standard_header(_instr(u), meta["tstart"], meta["tstop"], extname=f"JMX{u}-SRC.-LCR")
    h["TIMEPIXR"] = (0.5, "TIME is the bin centre")
    h["TIMEDEL"] = (float(meta["timedel"]), "[d] bin width")
    h["NAME"] = meta["name"]
    h["RA_OBJ"], h["DEC_OBJ"] = float(meta["ra"]), float(meta["dec"])
    h["E_MIN"], h["E_MAX"] = (float(meta["e1"]), "[keV]"), (float(meta["e2"]), "[keV]")
    h["DEADC"] = float(meta["deadc"])
    if "vignet" in meta:
        h["VIGNET"] = (float(meta["vignet"]), "mean vignetting of the source")
    if "detsig" in meta:
        h["DETSIG"] = (float(meta["detsig"]), "significance of the mean rate")
    h["SW_TYPE"] = "POINTING"
    h["NUM_SCW"] = int(meta["n_scw"])
    h["OSA_VERS"] = meta["osa_version"]
    prim = fits.PrimaryHDU(header=standard_header(_instr(u), meta["tstart"], meta["tstop"]))
    write_hdus([prim, fits.BinTableHDU.from_columns(cols, header=h)], path)
    return path
