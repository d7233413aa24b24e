"""Balanced, efficiency-weighted FFT cross-correlation decoding of ISGRI shadowgrams.

For sky pixel ``k`` (integer shift of the mask shadow) with ``G+`` the open and ``G-`` the
closed part of the resampled mask (:func:`..ibis.decoding_arrays`), ``g`` the good-pixel
mask, ``W`` the efficiency and ``U`` the background shape (``Bm = W·U`` expected background
counts up to a scale):

* numerator ``S = G+ ⋆ gD − B · G− ⋆ gD`` with the balance ``B = (G+ ⋆ gBm) / (G− ⋆ gBm)``,
  so that a background of any amplitude with the shape of the map cancels exactly;
* response ``N = T/N0 · [G+² ⋆ gW − B · (G+G−) ⋆ gW]`` (exact: at integer shifts the PIF is the
  resampled mask, so a source reads its rate from 0° to the edge of the field);
* variance ``Var(S) = β · [G+² − 2B·G+G− + B²·G−²] ⋆ gBm`` with ``β = ΣgD/ΣgBm``.

Everything except ``G± ⋆ gD`` depends only on (W, U): it is computed once per maps and
cached (:func:`decoder_for`), so a window costs one forward and two inverse rFFTs. Building an
operator costs as much as the whole decoding floor (nine FFTs and the element-wise algebra), so
a caller may also keep operators across processes: ``decoder_for(..., store=...)`` with any
object having ``get(key) -> dict | None`` and ``put(key, dict)`` (the archive's per-revolution
store, :func:`..archive.isgri_data.decoder_store`); a stored operator is the computed one,
array for array, so results never depend on whether it was stored.
This is OSA's "efficiency-weighted" form (weights W on the corrected shadowgram D/W).

The instrument comes in as a :class:`MaskOptics` (decoding arrays, detector shape, rate
normaliser, optional collimator transmission on the sky grid); the default is ISGRI
(:func:`isgri_optics`), JEM-X passes its own (``science/jemx.py``).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from scipy import fft

from . import ibis

__all__ = ["Decoder", "DecodedImage", "MaskOptics", "decoder_for", "isgri_optics", "correlate_floor",
           "FFT_SHAPE", "DECODER_VERSION"]

FFT_SHAPE = (375, 375)  # next fast length >= 367, 363
_PLACE = (ibis.SKY_SHAPE[0] - ibis.DECODE_N, ibis.SKY_SHAPE[1] - ibis.DECODE_N)  # (133, 129)
#: sky pixels coded at less than this fraction of the on-axis response are left out
MIN_CODING = 0.02
#: bump when what a Decoder holds changes (keys of stored operators include it)
DECODER_VERSION = 1
#: the arrays that make a Decoder (see Decoder.state)
_STATE = ("good", "valid", "balance", "response", "var_shape", "coding", "bm_sum")


@dataclass(eq=False)
class MaskOptics:
    """What the decoder needs of a coded-mask instrument (all on the detector pixel pitch).

    ``open``/``support``: the mask resampled on the pixel grid (closed part = support − open),
    such that ``open[i + offset + k]`` is the PIF at detector pixel ``i`` of a source at
    integer sky shift ``k``; ``perfect``: detector-shaped map of an ideal detector (sets the
    coding reference); ``n_on_axis``: the rate normaliser (pixel counts = T·R·PIF·eff/N);
    ``transmission``: optional sky-shaped factor on the response (e.g. a collimator).
    """

    name: str
    open: np.ndarray
    support: np.ndarray
    det_shape: tuple[int, int]
    n_on_axis: float
    perfect: np.ndarray
    fft_shape: tuple[int, int] | None = None
    transmission: np.ndarray | None = None
    #: PIF at a fractional sky shift (ky, kz) -> detector-shaped array (for rate fits, cleaning)
    pif: Callable[[float, float], np.ndarray] | None = None
    #: sky pixels between a source and its full-strength ghosts of a cyclic mask (0: none)
    ghost_period: float = 0.0
    _ffts: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.fft_shape is None:
            self.fft_shape = tuple(fft.next_fast_len(n, real=True) for n in self.sky_shape)

    @property
    def sky_shape(self) -> tuple[int, int]:
        return (self.det_shape[0] + self.open.shape[0] - 1, self.det_shape[1] + self.open.shape[1] - 1)

    @property
    def place(self) -> tuple[int, int]:
        return (self.sky_shape[0] - self.open.shape[0], self.sky_shape[1] - self.open.shape[1])

    @property
    def sky_centre(self) -> tuple[int, int]:
        return (
            self.det_shape[0] - 1 + (self.open.shape[0] - self.det_shape[0]) // 2,
            self.det_shape[1] - 1 + (self.open.shape[1] - self.det_shape[1]) // 2,
        )


@cache
def isgri_optics() -> MaskOptics:
    m_open, support = ibis.decoding_arrays()
    return MaskOptics("isgri", m_open, support, ibis.DET_SHAPE, ibis.N_ON_AXIS,
                      (ibis.module_map() >= 0).astype(float), fft_shape=FFT_SHAPE, pif=ibis.pif_at,
                      ghost_period=53 * ibis.ELEMENT_MM / ibis.PITCH_MM)  # MURA-53


def _rfft(x: np.ndarray, optics: MaskOptics | None = None) -> np.ndarray:
    return fft.rfft2(x, s=(optics or isgri_optics()).fft_shape, workers=1)


def _mask_ffts(dtype: str = "complex64", optics: MaskOptics | None = None) -> dict[str, np.ndarray]:
    """FFTs of the resampled mask parts, placed so that the output is the sky image."""
    o = optics or isgri_optics()
    if dtype in o._ffts:
        return o._ffts[dtype]
    m_open, support = o.open, o.support
    closed = support - m_open
    (py, px), (ny, nx) = o.place, m_open.shape
    out = {}
    for name, arr in {
        "p": m_open, "m": closed, "pp": m_open**2, "pm": m_open * closed, "mm": closed**2
    }.items():
        pad = np.zeros(o.fft_shape)
        pad[py : py + ny, px : px + nx] = arr
        out[name] = fft.rfft2(pad, workers=1).astype(dtype)
    o._ffts[dtype] = out
    return out


def _corr(x_hat_conj: np.ndarray, g_hat: np.ndarray, optics: MaskOptics | None = None) -> np.ndarray:
    o = optics or isgri_optics()
    out = fft.irfft2(x_hat_conj * g_hat, s=o.fft_shape, workers=1)
    return out[: o.sky_shape[0], : o.sky_shape[1]]


@dataclass
class DecodedImage:
    """One window's sky images (cts/s on the raw rate scale) on :func:`ibis.window_frame`."""

    intensity: np.ndarray
    variance: np.ndarray
    exposure: np.ndarray  # s, on-axis-equivalent (vignetting and efficiency included)

    @property
    def significance(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.intensity / np.sqrt(self.variance)


class Decoder:
    """Balanced decoding operator for one (efficiency, background-shape) pair of maps."""

    def __init__(self, efficiency: np.ndarray, background: np.ndarray,
                 optics: MaskOptics | None = None) -> None:
        self.optics = o = optics or isgri_optics()
        eff = np.asarray(efficiency, float)
        self.good = (eff > 0).astype(np.float32)
        bm = eff * np.asarray(background, float) * self.good
        self.bm_sum = float(bm.sum())
        # single precision: ample for these sums of ~1e4 positive terms, and twice as fast
        g = _mask_ffts("complex64", o)
        bm_hat = np.conj(fft.rfft2(bm.astype(np.float32), s=o.fft_shape, workers=1))
        w_hat = np.conj(fft.rfft2((eff * self.good).astype(np.float32), s=o.fft_shape, workers=1))
        p_b = _corr(bm_hat, g["p"], o).astype(np.float64)
        m_b = _corr(bm_hat, g["m"], o).astype(np.float64)
        resp_full = _corr(w_hat, g["pp"], o)
        valid = (m_b > 1e-6 * m_b.max()) & (resp_full > 0)
        balance = np.where(valid, p_b / np.where(valid, m_b, 1.0), 0.0)
        resp = (resp_full - balance * _corr(w_hat, g["pm"], o)) / o.n_on_axis
        if o.transmission is not None:
            resp = resp * o.transmission
            valid &= o.transmission > 0
        vb = (_corr(bm_hat, g["pp"], o) - 2 * balance * _corr(bm_hat, g["pm"], o)
              + balance**2 * _corr(bm_hat, g["mm"], o))
        # reference: the on-axis response of a perfect detector (all module pixels, unit efficiency)
        ref = _reference_response(o)
        valid &= resp > MIN_CODING * ref
        self.valid = valid
        self.balance = balance.astype(np.float32)
        self.response = np.where(valid, resp, np.nan)  # per second of exposure
        self.var_shape = np.where(valid, vb, np.nan) / self.response**2
        self.coding = np.where(valid, resp / ref, 0.0)

    def state(self) -> dict[str, np.ndarray]:
        """The arrays that make this operator (to store it; see :meth:`from_state`)."""
        return {k: np.asarray(getattr(self, k)) for k in _STATE}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], optics: MaskOptics | None = None) -> Decoder:
        """The operator whose :meth:`state` was ``state`` (no FFT)."""
        dec = cls.__new__(cls)
        dec.optics = optics or isgri_optics()
        for k in _STATE:
            setattr(dec, k, np.asarray(state[k]))
        dec.bm_sum = float(dec.bm_sum)
        return dec

    def numerator(self, counts: np.ndarray) -> np.ndarray:
        """Balanced correlation of a shadowgram (counts) with the mask: 1 rFFT + 2 inverse."""
        o = self.optics
        g = _mask_ffts("complex64", o)
        x = np.asarray(counts, np.float32) * self.good
        xh = np.conj(fft.rfft2(x, s=o.fft_shape, workers=1))
        return _corr(xh, g["p"], o) - self.balance * _corr(xh, g["m"], o)

    def decode(self, counts: np.ndarray, exposure_s: float) -> DecodedImage:
        """Intensity, variance and exposure maps of one shadowgram."""
        beta = float((np.asarray(counts, float) * self.good).sum()) / self.bm_sum
        intensity = self.numerator(counts) / (exposure_s * self.response)
        variance = beta * self.var_shape / exposure_s**2
        return DecodedImage(intensity, variance, exposure_s * self.coding)

    def model_image(self, model_counts: np.ndarray, exposure_s: float) -> np.ndarray:
        """What the decoding makes of a model shadowgram (source + ghosts + sidelobes)."""
        return self.numerator(model_counts) / (exposure_s * self.response)


def _reference_response(optics: MaskOptics | None = None) -> float:
    o = optics or isgri_optics()
    if "ref" not in o._ffts:
        g = _mask_ffts("complex128", o)
        w_hat = np.conj(fft.rfft2(o.perfect, s=o.fft_shape, workers=1))
        cy, cz = o.sky_centre
        # the closed-part term is second order on axis; the ratio only sets the coding scale
        o._ffts["ref"] = float(_corr(w_hat, g["pp"], o)[cy, cz]) / o.n_on_axis
    return o._ffts["ref"]


_CACHE: OrderedDict[str, Decoder] = OrderedDict()
_CACHE_SIZE = 16


def decoder_for(efficiency: np.ndarray, background: np.ndarray, *, reuse: bool = True,
                optics: MaskOptics | None = None, store: Any = None) -> Decoder:
    """A :class:`Decoder`, reused across windows that share the same maps (per process, and
    through ``store`` across processes and runs; see the module docstring)."""
    if not reuse:
        return Decoder(efficiency, background, optics)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{(optics or isgri_optics()).name}/{DECODER_VERSION}/{MIN_CODING!r}".encode())
    h.update(np.ascontiguousarray(efficiency, np.float32).tobytes())
    h.update(np.ascontiguousarray(background, np.float32).tobytes())
    key = h.hexdigest()
    dec = _CACHE.get(key)
    if dec is None:
        state = store.get(key) if store is not None else None
        try:
            dec = Decoder.from_state(state, optics) if state is not None else None
        except KeyError:  # a partial entry (an array removed by a cache cleaning): rebuild it
            dec = None
        if dec is None:
            dec = Decoder(efficiency, background, optics)
            if store is not None:
                store.put(key, dec.state())
        _CACHE[key] = dec
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return dec


def correlate_floor(shadowgram: np.ndarray, kernels: list[np.ndarray]) -> list[np.ndarray]:
    """The bare FFT floor: plain rFFT cross-correlations, numpy alone (benchmark baseline)."""
    out = []
    for k in kernels:
        a = np.fft.rfft2(shadowgram, s=FFT_SHAPE)
        b = np.fft.rfft2(k, s=FFT_SHAPE)
        out.append(np.fft.irfft2(np.conj(a) * b, s=FFT_SHAPE))
    return out
