"""JEM-X energy response: PHA channels, the 16 standard spectral bins, effective area, RMF.

Model (``instruments.md`` §2, Lund et al. 2003):

* PHA channels of 0.16 keV (channel k spans [0.16k, 0.16(k+1)] keV); the analysed range
  3.04–34.88 keV is channels 19–217, the edges of the real MMODA Crab LC.
* 16 spectral bins, logarithmic from 3.04 to 34.88 keV rounded to whole PHA channels (what
  the OSA standard 16-bin JEM-X spectra look like; the exact OSA table is not reproduced).
* On-axis effective area A(E) = 490.9 cm² (250 mm disk) × 0.25 (open mask) × Be window
  (250 µm) × Xe gas absorption (90 % Xe, 1.5 bar, 30 mm; L edges at 4.78 keV, K edge
  34.56 keV) × a support/grid transmission fixed so that a Toor & Seward Crab
  (9.7 E^-2.1 ph cm⁻² s⁻¹ keV⁻¹) gives 135 cts/s in 3.04–34.88 keV on axis.
* Gaussian redistribution, FWHM/E = 0.40·√(1/E + 1/60) (E in keV).

The ARF carries the area (on axis, i.e. the "on-axis-equivalent" convention of JEM-X rates)
and the RMF is a pure redistribution, so RMF × ARF = counts per photon.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.special import erf

__all__ = [
    "PHA_KEV",
    "PHA_FIRST",
    "PHA_LAST",
    "SPEC_EDGES",
    "SPEC_PHA",
    "ENERGY_EDGES",
    "CRAB_RATE",
    "effective_area",
    "redistribution",
    "pha_edges",
    "band_channels",
    "crab_flux",
]

PHA_KEV = 0.16
N_PHA = 256
PHA_FIRST, PHA_LAST = 19, 217  # inclusive: 3.04 - 34.88 keV
SPEC_PHA = np.array([19, 22, 26, 30, 35, 41, 47, 55, 64, 75, 87, 102, 118, 138, 161, 187, 218])
SPEC_EDGES = SPEC_PHA * PHA_KEV
#: input photon energies of the response (keV)
ENERGY_EDGES = np.geomspace(2.0, 45.0, 241)
CRAB_RATE = 135.0
DETECTOR_AREA_CM2 = np.pi * 12.5**2
OPEN_FRACTION = 0.25


def pha_edges() -> np.ndarray:
    """Energy edges (keV) of all 256 PHA channels."""
    return np.arange(N_PHA + 1) * PHA_KEV


def crab_flux(e_edges: np.ndarray) -> np.ndarray:
    """Toor & Seward Crab, photons cm⁻² s⁻¹ in each bin (the area calibration target)."""
    e = np.asarray(e_edges, float)
    return 9.7 / 1.1 * (e[:-1] ** -1.1 - e[1:] ** -1.1)


def _be_transmission(e: np.ndarray) -> np.ndarray:
    mu = 6.0 * (e / 3.0) ** -3.0 + 0.17  # cm2/g
    return np.exp(-mu * 1.848 * 0.025)


def _xe_efficiency(e: np.ndarray) -> np.ndarray:
    mu = np.where(e < 4.78, 330.0 * (e / 4.5) ** -2.8, 800.0 * (e / 6.0) ** -2.7)
    mu = np.where(e >= 34.56, mu * 5.5, mu)
    column = 5.89e-3 * 1.5 * 0.9 * 3.0  # g/cm2 of xenon
    return 1.0 - np.exp(-mu * column)


def _bare_area(e: np.ndarray) -> np.ndarray:
    return DETECTOR_AREA_CM2 * OPEN_FRACTION * _be_transmission(e) * _xe_efficiency(e)


def fwhm_kev(e: np.ndarray) -> np.ndarray:
    return 0.40 * e * np.sqrt(1.0 / e + 1.0 / 60.0)


@cache
def _redistribution_cached(n_in: int) -> np.ndarray:
    e = np.sqrt(ENERGY_EDGES[:-1] * ENERGY_EDGES[1:])
    sigma = fwhm_kev(e) / 2.3548
    edges = pha_edges()
    z = (edges[None, :] - e[:, None]) / (np.sqrt(2.0) * sigma[:, None])
    cdf = 0.5 * (1.0 + erf(z))
    out = np.diff(cdf, axis=1)
    out[:, :PHA_FIRST] = 0.0  # below the analysed range (rejected on board)
    out[:, PHA_LAST + 1 :] = 0.0
    out.setflags(write=False)
    return out


def redistribution() -> np.ndarray:
    """P(PHA channel | input energy bin): (len(ENERGY_EDGES)-1, 256), rows sum to ≤ 1."""
    return _redistribution_cached(len(ENERGY_EDGES) - 1)


@cache
def _support_transmission() -> float:
    e = np.sqrt(ENERGY_EDGES[:-1] * ENERGY_EDGES[1:])
    counts = crab_flux(ENERGY_EDGES) * _bare_area(e) @ redistribution()
    return CRAB_RATE / float(counts.sum())


def effective_area(e_kev: np.ndarray | None = None) -> np.ndarray:
    """On-axis effective area (cm²) at energies ``e_kev`` (default: the response grid centres)."""
    if e_kev is None:
        e_kev = np.sqrt(ENERGY_EDGES[:-1] * ENERGY_EDGES[1:])
    return _bare_area(np.asarray(e_kev, float)) * _support_transmission()


def expected_pha_rate(photon_flux: np.ndarray) -> np.ndarray:
    """On-axis count rate per PHA channel for photons cm⁻² s⁻¹ in the ENERGY_EDGES bins."""
    return (np.asarray(photon_flux) * effective_area()) @ redistribution()


def band_channels(e1: float, e2: float) -> tuple[int, int, float, float]:
    """PHA channels [c1, c2] (inclusive) best covering [e1, e2] keV, and their energy edges."""
    c1 = int(np.clip(round(e1 / PHA_KEV), PHA_FIRST, PHA_LAST))
    c2 = int(np.clip(round(e2 / PHA_KEV) - 1, c1, PHA_LAST))
    return c1, c2, c1 * PHA_KEV, (c2 + 1) * PHA_KEV


def spectral_matrix() -> np.ndarray:
    """Redistribution summed into the 16 spectral bins: (n_energy, 16)."""
    r = redistribution()
    return np.stack([r[:, a:b].sum(axis=1) for a, b in zip(SPEC_PHA[:-1], SPEC_PHA[1:], strict=True)], axis=1)
