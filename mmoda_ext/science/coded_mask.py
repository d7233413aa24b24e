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
cached (:func:`decoder_for`), so a window costs one forward and two inverse rFFTs.
This is OSA's "efficiency-weighted" form (weights W on the corrected shadowgram D/W).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import fft

from . import ibis

__all__ = ["Decoder", "DecodedImage", "decoder_for", "correlate_floor", "FFT_SHAPE"]

FFT_SHAPE = (375, 375)  # next fast length >= 367, 363
_PLACE = (ibis.SKY_SHAPE[0] - ibis.DECODE_N, ibis.SKY_SHAPE[1] - ibis.DECODE_N)  # (133, 129)
#: sky pixels coded at less than this fraction of the on-axis response are left out
MIN_CODING = 0.02


def _rfft(x: np.ndarray) -> np.ndarray:
    return fft.rfft2(x, s=FFT_SHAPE, workers=1)


@cache
def _mask_ffts(dtype: str = "complex64") -> dict[str, np.ndarray]:
    """FFTs of the resampled mask parts, placed so that the output is the sky image."""
    m_open, support = ibis.decoding_arrays()
    closed = support - m_open
    out = {}
    for name, arr in {
        "p": m_open, "m": closed, "pp": m_open**2, "pm": m_open * closed, "mm": closed**2
    }.items():
        pad = np.zeros(FFT_SHAPE)
        pad[_PLACE[0] : _PLACE[0] + ibis.DECODE_N, _PLACE[1] : _PLACE[1] + ibis.DECODE_N] = arr
        out[name] = fft.rfft2(pad, workers=1).astype(dtype)
    return out


def _corr(x_hat_conj: np.ndarray, g_hat: np.ndarray) -> np.ndarray:
    out = fft.irfft2(x_hat_conj * g_hat, s=FFT_SHAPE, workers=1)
    return out[: ibis.SKY_SHAPE[0], : ibis.SKY_SHAPE[1]]


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

    def __init__(self, efficiency: np.ndarray, background: np.ndarray) -> None:
        eff = np.asarray(efficiency, float)
        self.good = (eff > 0).astype(np.float32)
        bm = eff * np.asarray(background, float) * self.good
        self.bm_sum = float(bm.sum())
        g = _mask_ffts("complex128")
        bm_hat = np.conj(fft.rfft2(bm, s=FFT_SHAPE, workers=1))
        w_hat = np.conj(fft.rfft2(eff * self.good, s=FFT_SHAPE, workers=1))
        p_b, m_b = _corr(bm_hat, g["p"]), _corr(bm_hat, g["m"])
        resp_full = _corr(w_hat, g["pp"])
        valid = (m_b > 1e-6 * m_b.max()) & (resp_full > 0)
        balance = np.where(valid, p_b / np.where(valid, m_b, 1.0), 0.0)
        resp = (resp_full - balance * _corr(w_hat, g["pm"])) / ibis.N_ON_AXIS
        vb = _corr(bm_hat, g["pp"]) - 2 * balance * _corr(bm_hat, g["pm"]) + balance**2 * _corr(bm_hat, g["mm"])
        # reference: the on-axis response of a perfect detector (all module pixels, unit efficiency)
        ref = _reference_response()
        valid &= resp > MIN_CODING * ref
        self.valid = valid
        self.balance = balance.astype(np.float32)
        self.response = np.where(valid, resp, np.nan)  # per second of exposure
        self.var_shape = np.where(valid, vb, np.nan) / self.response**2
        self.coding = np.where(valid, resp / ref, 0.0)

    def numerator(self, counts: np.ndarray) -> np.ndarray:
        """Balanced correlation of a shadowgram (counts) with the mask: 1 rFFT + 2 inverse."""
        g = _mask_ffts()
        x = np.asarray(counts, np.float32) * self.good
        xh = np.conj(fft.rfft2(x, s=FFT_SHAPE, workers=1))
        return _corr(xh, g["p"]) - self.balance * _corr(xh, g["m"])

    def decode(self, counts: np.ndarray, exposure_s: float) -> DecodedImage:
        """Intensity, variance and exposure maps of one shadowgram."""
        beta = float((np.asarray(counts, float) * self.good).sum()) / self.bm_sum
        intensity = self.numerator(counts) / (exposure_s * self.response)
        variance = beta * self.var_shape / exposure_s**2
        return DecodedImage(intensity, variance, exposure_s * self.coding)

    def model_image(self, model_counts: np.ndarray, exposure_s: float) -> np.ndarray:
        """What the decoding makes of a model shadowgram (source + ghosts + sidelobes)."""
        return self.numerator(model_counts) / (exposure_s * self.response)


@cache
def _reference_response() -> float:
    g = _mask_ffts("complex128")
    perfect = (ibis.module_map() >= 0).astype(float)
    w_hat = np.conj(fft.rfft2(perfect, s=FFT_SHAPE, workers=1))
    cy, cz = ibis.SKY_CENTRE
    # the closed-part term is second order on axis; the ratio only sets the coding scale
    return float(_corr(w_hat, g["pp"])[cy, cz]) / ibis.N_ON_AXIS


_CACHE: OrderedDict[str, Decoder] = OrderedDict()
_CACHE_SIZE = 16


def decoder_for(efficiency: np.ndarray, background: np.ndarray, *, reuse: bool = True) -> Decoder:
    """A :class:`Decoder`, reused across windows that share the same maps (per process)."""
    if not reuse:
        return Decoder(efficiency, background)
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(efficiency, np.float32).tobytes())
    h.update(np.ascontiguousarray(background, np.float32).tobytes())
    key = h.hexdigest()
    dec = _CACHE.get(key)
    if dec is None:
        dec = _CACHE[key] = Decoder(efficiency, background)
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
