"""ISGRI spectra: PIF fits of shadowgram cubes, window summation, the response (ARF, RMF matrix).

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
whatever the version while the rates follow the version's scale. The OGIP files (PHA, ARF,
RMF) are written by :mod:`...products.isgri_spectrum`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import ibis
from .sources import source_model

__all__ = [
    "CHANNELS", "CubeFit", "fit_cube", "coded_fraction", "channel_scale", "SourceSum",
    "rmf_matrix", "E_IN", "MIN_CODING",
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
