"""ANTARES neutrino flux upper limits, exactly as the MMODA ANTARES service computes them.

The algorithm is the one of ``oda-hub/antares-backend`` (``multiMessenger.cc`` for the counts,
the Feldman–Cousins limit and the acceptance; ``analysis.py`` for the E² envelope), described in
``reference/instruments.md`` §4. Its quirks are reproduced on purpose so that the numbers match:

* inputs are read with ``std::stof`` (float32), then used as doubles;
* π is 3.14159 everywhere, except the event right ascension, converted with 3.14169/180;
* events are counted with a strict ``angle < RoI``;
* when ``n_obs <= int(n_bkg)`` the upper limit is the *sensitivity* (Poisson-weighted mean
  Feldman–Cousins limit over n = 0..19), else the Feldman–Cousins limit (90 % CL, MuMax 200,
  MuStep 0.01);
* the acceptance is interpolated bilinearly in (sin δ, Γ) on the 16 × 20 table;
* 50 indices Γᵢ = Γmin + (Γmax − Γmin)/50 · (i + 1); envelope E² · maxᵢ Φᵢ E^−Γᵢ on
  logspace(−1, 6, 100) GeV.

Which events are searched (the service reads only the first 5921 lines of the public file) is
the data reader's business (:mod:`mmoda_ext.archive.antares_data`); this module takes arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .feldman_cousins import fc_interval, sensitivity

__all__ = [
    "PI_CPP",
    "PI_CPP_EVENT_RA",
    "UpperLimitResult",
    "acceptance",
    "background_count",
    "count_events",
    "envelope",
    "index_grid",
    "n_upper_limit",
    "upper_limits",
]

PI_CPP = 3.14159
PI_CPP_EVENT_RA = 3.14169  # the typo of multiMessenger.cc, kept to reproduce its counts
FC_CL, FC_MU_MAX, FC_MU_STEP = 0.9, 200.0, 0.01
N_INDEX = 50


def background_count(dec_deg: float, roi_deg: float, coeffs: np.ndarray) -> float:
    """Expected background events in a circle of ``roi_deg`` around declination ``dec_deg``.

    ``coeffs`` p₀…p₆ give the cumulative count below δ (degrees), N(<δ) = Σ pᵢ δⁱ.
    """
    lo, hi = dec_deg - roi_deg, dec_deg + roi_deg
    poly = np.polynomial.polynomial.polyval
    band = poly(hi, coeffs) - poly(lo, coeffs)
    solid = abs(2 * PI_CPP * (np.sin(hi * PI_CPP / 180) - np.sin(lo * PI_CPP / 180)))
    return float(band / solid * PI_CPP * (roi_deg * PI_CPP / 180) ** 2)


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray, pi_ra: float) -> np.ndarray:
    # TVector3 with theta = (dec + 90)·π/180 and phi = ra·π/180, as the C++ builds them
    theta = (np.asarray(dec_deg, dtype=float) + 90.0) * PI_CPP / 180.0
    phi = np.asarray(ra_deg, dtype=float) * pi_ra / 180.0
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=-1)


def count_events(ra_deg: float, dec_deg: float, roi_deg: float, ev_ra: np.ndarray, ev_dec: np.ndarray) -> int:
    """Events closer than ``roi_deg`` (strict) to (``ra_deg``, ``dec_deg``)."""
    src = _unit_vectors(np.array(ra_deg), np.array(dec_deg), PI_CPP)
    ev = _unit_vectors(ev_ra, ev_dec, PI_CPP_EVENT_RA)
    cosang = np.clip(ev @ src, -1.0, 1.0)
    return int(np.count_nonzero(np.arccos(cosang) < roi_deg * PI_CPP / 180.0))


def n_upper_limit(n_bkg: float, n_obs: int) -> tuple[float, float, str]:
    """(upper limit, lower limit, branch) on the number of signal events."""
    lower = fc_interval(n_obs, n_bkg, FC_CL, FC_MU_MAX, FC_MU_STEP)[0]
    if n_obs <= int(n_bkg):
        return sensitivity(n_bkg, FC_CL, FC_MU_MAX, FC_MU_STEP), lower, "sensitivity"
    return fc_interval(n_obs, n_bkg, FC_CL, FC_MU_MAX, FC_MU_STEP)[1], lower, "feldman-cousins"


def index_grid(index_min: float, index_max: float, n_index: int = N_INDEX) -> np.ndarray:
    """Γᵢ = Γmin + (Γmax − Γmin)/n · (i + 1), i = 0..n−1 (the grid starts one step above Γmin)."""
    i = np.arange(n_index, dtype=float)
    return index_min + ((index_max - index_min) / float(n_index)) * (i + 1.0)


def acceptance(dec_deg: float, gamma: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Expected events for Φ₀ = 1e-8 GeV⁻¹ cm⁻² s⁻¹, bilinear in (sin δ, Γ) on ``table`` (16 × 20)."""
    gamma = np.atleast_1d(np.asarray(gamma, dtype=float))
    pos_a = (np.sin(dec_deg * PI_CPP / 180.0) + 1.0) * 10.0
    ia = int(np.floor(pos_a))
    fa = pos_a - ia
    ia1 = min(ia + 1, table.shape[1] - 1)
    along_a = (1.0 - fa) * table[:, ia] + fa * table[:, ia1]  # one value per Γ row
    pos_g = gamma * 10.0 - 15.0
    ig = np.clip(np.floor(pos_g).astype(int), 0, table.shape[0] - 1)
    fg = np.where(ig >= table.shape[0] - 1, 0.0, pos_g - ig)  # Γ = 3.0: sin δ interpolation only
    ig1 = np.minimum(ig + 1, table.shape[0] - 1)
    return (1.0 - fg) * along_a[ig] + fg * along_a[ig1]


def envelope(gamma: np.ndarray, norm: np.ndarray, energies: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """E [GeV] and E² · maxᵢ Φᵢ E^−Γᵢ [GeV cm⁻² s⁻¹] on logspace(−1, 6, 100) GeV."""
    e = np.logspace(-1, 6, 100) if energies is None else np.asarray(energies, dtype=float)
    flux = np.max(np.power(e[:, None], -np.asarray(gamma)[None, :]) * np.asarray(norm)[None, :], axis=1)
    return e, flux * e * e


@dataclass
class UpperLimitResult:
    """Everything one ANTARES query computes."""

    ra: float
    dec: float
    roi: float
    n_bkg: float
    n_obs: int
    n_ul: float
    n_ll: float
    branch: str
    index: np.ndarray = field(repr=False)
    norm: np.ndarray = field(repr=False)
    energy: np.ndarray = field(repr=False)
    e2flux: np.ndarray = field(repr=False)

    def norm_at(self, gamma: float) -> tuple[float, float]:
        """(grid index nearest ``gamma``, its Φ₀ upper limit)."""
        i = int(np.argmin(np.abs(self.index - gamma)))
        return float(self.index[i]), float(self.norm[i])


def upper_limits(
    ra: float,
    dec: float,
    roi: float,
    index_min: float,
    index_max: float,
    ev_ra: np.ndarray,
    ev_dec: np.ndarray,
    bkg_coeffs: np.ndarray,
    acc_table: np.ndarray,
) -> UpperLimitResult:
    """Run the whole MMODA ANTARES analysis for one position."""
    # the C++ parses its arguments with std::stof
    ra32, dec32, roi32, gmin32, gmax32 = (float(np.float32(x)) for x in (ra, dec, roi, index_min, index_max))
    n_bkg = background_count(dec32, roi32, np.asarray(bkg_coeffs, dtype=float))
    n_obs = count_events(ra32, dec32, roi32, ev_ra, ev_dec)
    n_ul, n_ll, branch = n_upper_limit(n_bkg, n_obs)
    gamma = index_grid(gmin32, gmax32)
    norm = n_ul / acceptance(dec32, gamma, np.asarray(acc_table, dtype=float)) * 1e-8
    # the C++ prints both columns with 6 significant digits; the ECSV reader makes them float32
    gamma = np.array([float(f"{g:.6g}") for g in gamma], dtype=np.float32)
    norm = np.array([float(f"{v:.6g}") for v in norm], dtype=np.float32)
    energy, e2flux = envelope(gamma.astype(float), norm.astype(float))
    return UpperLimitResult(ra, dec, roi, n_bkg, n_obs, n_ul, n_ll, branch, gamma, norm, energy, e2flux)
