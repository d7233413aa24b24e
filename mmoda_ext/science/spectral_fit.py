"""Forward-folded spectral fits through an ARF and RMF (what MMODA's ``spectral_fit`` does with XSPEC).

Models (XSPEC names and conventions, E in keV, N(E) in ph cm⁻² s⁻¹ keV⁻¹):

``powerlaw``  K E^-Γ                   (K at 1 keV)
``cutoffpl``  K E^-Γ exp(-E/E_c)

The model is integrated over the response's input-energy bins with the simulation's exact
integrator (:func:`.spectra.integrate`), multiplied by the ARF and folded through
the RMF. Internally the normalisation is fitted at a pivot energy (less correlated with Γ)
and reported at 1 keV, as XSPEC does.

Statistics: ``chi2`` (default; σ² = STAT_ERR² + (SYS_ERR·RATE)²) fitted with
``scipy.optimize.least_squares``; ``cash`` (C = 2 Σ (m − d ln m) on counts = rate × exposure)
with ``scipy.optimize.minimize``. Cash needs Poisson counts: the ISGRI rates come from a PIF fit
with the background subtracted, so the ISGRI product uses χ². Errors: 1σ from the covariance
(χ²) and, for every parameter, the Δstat = 1 interval of the profile (other parameters
re-fitted), as XSPEC's ``error 1.0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize

from . import spectra

__all__ = ["MODELS", "FitResult", "fit_spectrum", "model_rates", "photon_flux", "energy_flux",
           "UNITS"]

MODELS = ("powerlaw", "cutoffpl")
PIVOT_KEV = 50.0
_PARAMS = {"powerlaw": ("PhoIndex", "norm"), "cutoffpl": ("PhoIndex", "HighECut", "norm")}
#: units of the XSPEC parameters
UNITS = {"PhoIndex": "", "HighECut": "keV", "norm": "ph/(cm2 s keV) at 1 keV"}


def _shape(model: str, gamma: float, ecut: float = math.nan):
    kind = "pl" if model == "powerlaw" else "cutoffpl"
    return lambda e: spectra.shape(kind, e, PIVOT_KEV, gamma, math.nan, math.nan, ecut)


def photon_flux(model: str, theta: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """ph cm⁻² s⁻¹ in each bin of ``edges`` for internal parameters (Γ, [E_c,] ln K_pivot)."""
    gamma, ecut = theta[0], (theta[1] if model == "cutoffpl" else math.nan)
    return math.exp(theta[-1]) * spectra.integrate(_shape(model, gamma, ecut), edges)


def energy_flux(model: str, theta: np.ndarray, e1: float, e2: float) -> float:
    """erg cm⁻² s⁻¹ between e1 and e2 keV."""
    gamma, ecut = theta[0], (theta[1] if model == "cutoffpl" else math.nan)
    kev = spectra.integrate(_shape(model, gamma, ecut), np.array([e1, e2]), moment=1)[0]
    return float(math.exp(theta[-1]) * kev * spectra.KEV_TO_ERG)


def model_rates(model: str, theta: np.ndarray, e_in: np.ndarray, arf: np.ndarray,
                rmf: np.ndarray) -> np.ndarray:
    """Predicted count rate per channel: (flux per input bin × ARF) @ RMF."""
    return (photon_flux(model, theta, e_in) * arf) @ rmf


@dataclass
class FitResult:
    model: str
    names: tuple[str, ...]
    values: dict[str, float]
    errors: dict[str, float]  # 1σ from the covariance
    lower: dict[str, float]  # Δstat = 1 interval
    upper: dict[str, float]
    statistic: str
    stat: float
    dof: int
    flux: float  # erg cm⁻² s⁻¹ in flux_band
    flux_err: float
    flux_band: tuple[float, float]
    channels: np.ndarray = field(repr=False, default=None)  # mask of the fitted channels
    model_rate: np.ndarray = field(repr=False, default=None)  # per channel (all channels)
    theta: np.ndarray = field(repr=False, default=None)

    def summary(self) -> str:
        parts = [f"{n} = {self.values[n]:.4g} (+{self.upper[n] - self.values[n]:.2g}"
                 f" -{self.values[n] - self.lower[n]:.2g})" for n in self.names]
        return (f"{self.model}: " + ", ".join(parts) + f"; {self.statistic} = {self.stat:.1f} / "
                f"{self.dof} dof; flux {self.flux_band[0]:g}-{self.flux_band[1]:g} keV = "
                f"{self.flux:.3e} ± {self.flux_err:.1e} erg/cm2/s")


def _public(model: str, theta: np.ndarray) -> dict[str, float]:
    """Internal (Γ, [E_c,] ln K_pivot) -> XSPEC parameters (K at 1 keV)."""
    gamma = theta[0]
    norm = math.exp(theta[-1]) * PIVOT_KEV**gamma
    out = {"PhoIndex": float(gamma), "norm": float(norm)}
    if model == "cutoffpl":
        out["HighECut"] = float(theta[1])
    return out


def fit_spectrum(rate: np.ndarray, error: np.ndarray, e_in: np.ndarray, arf: np.ndarray,
                 rmf: np.ndarray, channels: np.ndarray, model: str = "powerlaw", *,
                 statistic: str = "chi2", exposure: float = 1.0, sys_err: np.ndarray | float = 0.0,
                 flux_band: tuple[float, float] = (20.0, 100.0)) -> FitResult:
    """Fit ``model`` to the channels where ``channels`` is True; see the module doc."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    sel = np.asarray(channels, bool) & np.isfinite(rate) & np.isfinite(error) & (error > 0)
    sigma = np.sqrt(error**2 + (np.asarray(sys_err) * rate) ** 2)
    d, s = rate[sel], sigma[sel]
    m_sel = rmf[:, sel]

    def pred(th):
        return (photon_flux(model, th, e_in) * arf) @ m_sel

    def resid(th):
        return (pred(th) - d) / s

    def cash(th):
        m = np.maximum(pred(th) * exposure, 1e-30)
        c = np.maximum(d * exposure, 0.0)
        return float(2.0 * np.sum(m - c * np.log(m)))

    def stat(th):
        return float(np.sum(resid(th) ** 2)) if statistic == "chi2" else cash(th)

    # start: Γ = 2, K from the total rate
    th0 = [2.0, 200.0, 0.0] if model == "cutoffpl" else [2.0, 0.0]
    th0 = np.array(th0)
    unit = pred(th0).sum()
    th0[-1] = math.log(max(d.sum(), 1e-6 * abs(d).sum() + 1e-12) / unit) if unit > 0 else 0.0
    lo = [-3.0, 1.0, -np.inf][: len(th0)] if model == "cutoffpl" else [-3.0, -np.inf]
    hi = [8.0, 1e4, np.inf][: len(th0)] if model == "cutoffpl" else [8.0, np.inf]
    if statistic == "chi2":
        res = optimize.least_squares(resid, th0, bounds=(lo, hi), x_scale="jac")
        best = res.x
        cov = np.linalg.pinv(res.jac.T @ res.jac)
    elif statistic == "cash":
        res = optimize.minimize(cash, th0, method="Nelder-Mead",
                                options={"xatol": 1e-6, "fatol": 1e-6, "maxiter": 4000})
        best = res.x
        cov = np.linalg.pinv(_hessian(cash, best) / 2.0)
    else:
        raise ValueError(f"statistic must be 'chi2' or 'cash', not {statistic!r}")
    smin = stat(best)
    names = _PARAMS[model]
    lower, upper = _profile_bounds(stat, best, smin, cov, lo, hi)
    # internal -> public values and errors
    vals = _public(model, best)
    errs = {"PhoIndex": float(np.sqrt(cov[0, 0]))}
    lo_d = {"PhoIndex": lower[0]}
    hi_d = {"PhoIndex": upper[0]}
    if model == "cutoffpl":
        errs["HighECut"] = float(np.sqrt(cov[1, 1]))
        lo_d["HighECut"], hi_d["HighECut"] = lower[1], upper[1]
    # norm at 1 keV = exp(lnK)·pivot^Γ: propagate through the covariance
    g = np.zeros(len(best))
    g[0], g[-1] = math.log(PIVOT_KEV), 1.0
    errs["norm"] = float(vals["norm"] * math.sqrt(max(g @ cov @ g, 0.0)))
    lo_d["norm"] = vals["norm"] * math.exp(-math.sqrt(max(g @ cov @ g, 0.0)))
    hi_d["norm"] = vals["norm"] * math.exp(math.sqrt(max(g @ cov @ g, 0.0)))
    flux = energy_flux(model, best, *flux_band)
    grad = np.array([(energy_flux(model, best + h, *flux_band) - flux) / h[np.nonzero(h)[0][0]]
                     for h in np.eye(len(best)) * 1e-5])
    flux_err = float(math.sqrt(max(grad @ cov @ grad, 0.0)))
    return FitResult(model, names, vals, errs, lo_d, hi_d, statistic, smin,
                     int(sel.sum() - len(best)), flux, flux_err, tuple(flux_band), sel,
                     model_rates(model, best, e_in, arf, rmf), best)


def _hessian(f, x: np.ndarray, rel: float = 1e-4) -> np.ndarray:
    n = len(x)
    h = np.maximum(np.abs(x), 1.0) * rel
    out = np.zeros((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            if i == j:
                v = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            else:
                v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h[i] * h[j])
            out[i, j] = out[j, i] = v
    return out


def _profile_bounds(stat, best, smin, cov, lo, hi) -> tuple[list[float], list[float]]:
    """Δstat = 1 bounds of the shape parameters (index 0 and, for cutoffpl, 1), others re-fitted."""
    n = len(best)
    lower, upper = [], []
    for i in range(n - 1):  # the last parameter (ln K) is reported from the covariance
        others = [k for k in range(n) if k != i]

        def prof(v, i=i, others=others):
            def f(o):
                th = np.array(best, float)
                th[i] = v
                th[others] = o
                return stat(th)
            r = optimize.minimize(f, best[others], method="Nelder-Mead",
                                  options={"xatol": 1e-7, "fatol": 1e-7, "maxiter": 2000})
            return r.fun - smin - 1.0

        sd = math.sqrt(max(cov[i, i], 1e-12))
        bounds = []
        for sign, limit in ((-1, lo[i]), (1, hi[i])):
            step, a = sd, best[i]
            b = best[i] + sign * step
            for _ in range(12):
                if (sign < 0 and b <= limit) or (sign > 0 and b >= limit):
                    b = limit
                    break
                if prof(b) > 0:
                    break
                a, step = b, step * 2
                b = best[i] + sign * step
            try:
                bounds.append(float(optimize.brentq(prof, a, b, xtol=1e-4 * sd)) if prof(b) > 0
                              else float(b))
            except ValueError:
                bounds.append(float(b))
        lower.append(bounds[0])
        upper.append(bounds[1])
    return lower, upper
