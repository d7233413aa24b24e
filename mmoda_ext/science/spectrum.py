"""ISGRI spectra: PIF fits of shadowgram cubes, window summation, OGIP PHA / ARF / RMF.

**Fit** (:func:`fit_cube`): every layer of a cube (an energy channel, or a time bin of a light
curve) is fitted with the background map plus the exact PIF of every source in the field —
``D = β·W·U + Σ R_s · T·W·PIF_s/N0`` — by weighted least squares with weights 1/(β₀ W U): the
same model and weights as :func:`.sources.pif_fit` (which the image product uses per band),
solved for all layers at once because the design matrix is shared. For one source and a
known background this is ``R = Σ PIF·(D − B)·w / Σ PIF²·w``.

**Summation** (:class:`SourceSum`): per channel, inverse-variance weighted mean of the window
rates, ``R = Σ(R_i/σ_i²)/Σ(1/σ_i²)``, ``σ = 1/√Σ(1/σ_i²)``; windows where a source is coded
at less than ``min_coding`` of the on-axis response are not used for it.

**Channels.** The archive's 58 fine channels (15–1000 keV, :data:`..ibis.ISGRI_CHANNELS`) are
the spectral channels (DETCHANS = 58): OSA10.2's 62-channel binning is finer than the
archive below 100 keV and cannot be made from it.

**Response** (OGIP, as OSA ships it and MMODA renames it): ``SPECRESP`` ARF = the
effective area (:func:`..ibis.effective_area`, low threshold of each revolution, weighted
like the rates); ``SPECRESP MATRIX`` RMF = the Gaussian redistribution (8 % FWHM at 60 keV,
∝√E) on the same input-energy grid as the simulation, times the OSA version's channel rate
scale :func:`..ibis.osa_scale` (1 for OSA10.2), so that a fit gives the same physical flux
whatever the version while the rates follow the version's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from ..archive.fitsutil import standard_header
from . import ibis
from .sources import source_model

__all__ = [
    "CHANNELS", "CubeFit", "fit_cube", "coded_fraction", "channel_scale", "SourceSum",
    "rmf_matrix", "write_pha", "write_arf", "write_rmf", "E_IN",
]

CHANNELS = ibis.ISGRI_CHANNELS
E_IN = ibis.E_IN
#: sources coded at less than this fraction of the on-axis response are not fitted in a window
MIN_CODING = 0.05


@dataclass
class CubeFit:
    """Per layer and source: rate (cts/s), 1σ error; per layer: background scale β and counts."""

    rates: np.ndarray  # (n_layer, n_src), NaN for a source with no illuminated good pixel
    errors: np.ndarray  # (n_layer, n_src)
    background: np.ndarray  # (n_layer,) β: background counts = β · W · U
    background_err: np.ndarray  # (n_layer,)
    counts: np.ndarray  # (n_layer,) total counts on the good pixels


def fit_cube(cube: np.ndarray, efficiency: np.ndarray, background: np.ndarray,
             exposures: np.ndarray | float, shifts: list[tuple[float, float]]) -> CubeFit:
    """Joint PIF + background least-squares fit of every layer of ``cube`` (n_layer, y, z).

    ``exposures`` (s, dead-time corrected) per layer or one value; ``shifts`` are the sources'
    (ky, kz) sky-pixel shifts from the pointing axis.
    """
    cube = np.asarray(cube)
    n_layer = cube.shape[0]
    expo = np.broadcast_to(np.asarray(exposures, float), (n_layer,))
    good = efficiency > 0
    d = cube[:, good].astype(float)  # (n_layer, n_pix)
    bm = (efficiency * background)[good].astype(float)
    # source columns for a unit exposure: the model of a layer is exposure × column
    cols = [source_model(efficiency, 1.0, ky, kz)[good] for ky, kz in shifts]
    n_src = len(cols)
    src = np.stack(cols, axis=1) if cols else np.zeros((bm.size, 0))
    seen = src.sum(axis=0) > 1e-3
    keep = np.nonzero(seen)[0]
    w = 1.0 / np.maximum(bm, 1e-9)
    x = np.concatenate([bm[:, None], src[:, keep]], axis=1)
    gram = (x * w[:, None]).T @ x  # shared by every layer
    proj = (x * w[:, None]).T @ d.T  # (n_par, n_layer)
    rates = np.full((n_layer, n_src), np.nan)
    errors = np.full((n_layer, n_src), np.nan)
    beta = np.full(n_layer, np.nan)
    beta_err = np.full(n_layer, np.nan)
    counts = d.sum(axis=1)
    beta0 = counts / bm.sum()  # the scalar weight normaliser of each layer (as in pif_fit)
    inv = np.linalg.inv(gram)
    for j in range(n_layer):
        if expo[j] <= 0:
            continue
        # source columns scale with the layer's exposure: parameters = D⁻¹ · (unit-exposure solution)
        scale = np.concatenate([[1.0], np.full(keep.size, 1.0 / expo[j])])
        sol = scale * (inv @ proj[:, j])
        var = scale**2 * np.diag(inv) * max(beta0[j], 1e-12)
        beta[j], beta_err[j] = sol[0], np.sqrt(var[0])
        rates[j, keep] = sol[1:]
        errors[j, keep] = np.sqrt(var[1:])
    return CubeFit(rates, errors, beta, beta_err, counts)


def coded_fraction(efficiency: np.ndarray, ky: float, kz: float) -> float:
    """Response at a sky shift relative to on-axis (0 outside the field)."""
    full = source_model(efficiency, 1.0, 0.0, 0.0).sum()
    return float(source_model(efficiency, 1.0, ky, kz).sum() / full) if full > 0 else 0.0


def channel_scale(osa_version: str, edges: np.ndarray = CHANNELS) -> np.ndarray:
    """The OSA version's rate scale per channel (:func:`..ibis.osa_scale` on each channel)."""
    return np.array([ibis.osa_scale(osa_version, lo, hi) for lo, hi in zip(edges[:-1], edges[1:],
                                                                              strict=True)])


@dataclass
class SourceSum:
    """Streaming sum of one source's window results (bounded memory, order independent)."""

    name: str
    ra: float
    dec: float
    source_id: int = -1
    n_chan: int = len(CHANNELS) - 1
    wr: np.ndarray = field(default=None)  # Σ R/σ²
    w: np.ndarray = field(default=None)  # Σ 1/σ²
    arf_w: np.ndarray = field(default=None)  # Σ weight · A(E, rev)
    arf_norm: float = 0.0
    exposure: float = 0.0
    exp_src: float = 0.0
    ontime: float = 0.0
    n_scw: int = 0
    revolutions: set = field(default_factory=set)
    tstart: float = np.inf
    tstop: float = -np.inf

    def __post_init__(self) -> None:
        if self.wr is None:
            self.wr, self.w = np.zeros(self.n_chan), np.zeros(self.n_chan)
            self.arf_w = np.zeros(len(E_IN) - 1)

    def add(self, rates: np.ndarray, errors: np.ndarray, scw: Any, exposure: float,
            coded: float) -> None:
        ok = np.isfinite(rates) & np.isfinite(errors) & (errors > 0)
        if not ok.any():
            return
        inv = np.where(ok, 1.0 / np.where(ok, errors, 1.0) ** 2, 0.0)
        self.wr += np.where(ok, rates, 0.0) * inv
        self.w += inv
        weight = float(inv.sum())
        e_mid = np.sqrt(E_IN[1:] * E_IN[:-1])
        self.arf_w += weight * ibis.effective_area(e_mid, scw.revolution)
        self.arf_norm += weight
        self.exposure += exposure
        self.exp_src += exposure * coded
        self.ontime += float(scw.ontime)
        self.n_scw += 1
        self.revolutions.add(int(scw.revolution))
        self.tstart = min(self.tstart, float(scw.tstart))
        self.tstop = max(self.tstop, float(scw.tstop))

    @property
    def rate(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.w > 0, self.wr / np.where(self.w > 0, self.w, 1.0), np.nan)

    @property
    def error(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.where(self.w > 0, 1.0 / np.sqrt(np.where(self.w > 0, self.w, 1.0)), np.nan)

    @property
    def arf(self) -> np.ndarray:
        return self.arf_w / self.arf_norm if self.arf_norm > 0 else np.zeros_like(self.arf_w)


def rmf_matrix(osa_version: str) -> np.ndarray:
    """(n E_IN bins, n channels): redistribution P(channel | E) × the version's channel scale."""
    return ibis._redistribution() * channel_scale(osa_version)[None, :]


# -- OGIP writers --------------------------------------------------------------------------------

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
    h["RESPFILE"] = (meta.get("respfile", "NONE"), "RMF delivered with this spectrum")
    h["ANCRFILE"] = (meta.get("ancrfile", "NONE"), "ARF delivered with this spectrum")
    h["CAL_EMIN"], h["CAL_EMAX"] = (float(lo), "[keV] QUALITY 0 from"), (float(hi), "[keV] QUALITY 0 to")
    h["AREASCAL"], h["BACKSCAL"], h["CORRSCAL"] = 1.0, 1.0, 0.0
    hdu = fits.BinTableHDU.from_columns(cols, header=h)
    fits.HDUList([_primary(s), hdu]).writeto(path, overwrite=True)
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
    fits.HDUList([_primary(s), hdu]).writeto(path, overwrite=True)
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
    fits.HDUList([_primary(s), eb, mat]).writeto(path, overwrite=True)
    return path
