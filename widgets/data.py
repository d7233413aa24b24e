"""Product data as arrays with units, for the plots and the sky view (no ipywidgets here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = ["Curve", "light_curve", "significance_hdu", "spectrum", "spectral_fit"]


@dataclass
class Curve:
    """x ± xerr, y ± yerr with units; ``model`` (same x) when a fit is known."""

    name: str
    x: np.ndarray
    y: np.ndarray
    yerr: np.ndarray
    x_unit: str
    y_unit: str
    xerr: np.ndarray | None = None
    model: np.ndarray | None = None

    @property
    def residuals(self) -> np.ndarray | None:
        """(data − model) / error, where the error is positive."""
        if self.model is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.yerr > 0, (self.y - self.model) / self.yerr, np.nan)


def _table(hdul: fits.HDUList, *cols: str) -> fits.BinTableHDU:
    for hdu in hdul:
        if isinstance(hdu, fits.BinTableHDU) and set(cols) <= set(hdu.columns.names):
            return hdu
    raise ValueError(f"no table with columns {', '.join(cols)}")


def light_curve(prod: Any) -> Curve:
    """A light-curve product as a :class:`Curve` (columns named by its meta, else TIME/RATE/ERROR)."""
    t, r, e = (prod.meta.get(k) or d for k, d in (("time", "TIME"), ("rate", "RATE"), ("rate_err", "ERROR")))
    hdu = _table(prod.hdul, t, r, e)
    d, c = hdu.data, hdu.columns
    name = prod.meta.get("src_name")
    unit = c[t].unit or hdu.header.get("TIMEUNIT", "s")
    mjdref = hdu.header.get("MJDREF", hdu.header.get("MJDREFI"))
    if mjdref is not None and float(mjdref) == 51544.0:  # INTEGRAL's days: say which, on the axis
        unit = f"{unit}, IJD = MJD − 51544"
    return Curve(name if name and name != "lc" else prod.name, np.asarray(d[t], float),
                 np.asarray(d[r], float), np.asarray(d[e], float), unit, c[r].unit or "count/s")


def spectrum(pha: Any, rmf: Any) -> Curve:
    """An OGIP PHA (rates) and its RMF's EBOUNDS as counts/s/keV against energy (bad channels out)."""
    spe = _table(pha.hdul, "CHANNEL", "RATE", "STAT_ERR")
    eb = _table(rmf.hdul, "CHANNEL", "E_MIN", "E_MAX").data
    lo, hi = np.asarray(eb["E_MIN"], float), np.asarray(eb["E_MAX"], float)
    rate, err = np.asarray(spe.data["RATE"], float), np.asarray(spe.data["STAT_ERR"], float)
    good = (np.asarray(spe.data["QUALITY"]) == 0) if "QUALITY" in spe.columns.names else np.ones(rate.size, bool)
    good &= err > 0
    w = hi - lo
    return Curve(pha.meta.get("src_name") or pha.name, np.sqrt(lo * hi)[good], (rate / w)[good],
                 (err / w)[good], "keV", "count/s/keV", xerr=(w / 2)[good])


def spectral_fit(prod: Any) -> tuple[Curve, dict[str, tuple[float, float, str]]]:
    """A ``spectral_fit`` product: data, model and residuals, and {parameter: (value, error, unit)}."""
    spec = _table(prod.hdul, "E_MIN", "E_MAX", "RATE", "MODEL").data
    par = _table(prod.hdul, "PARAM", "VALUE").data
    lo, hi = np.asarray(spec["E_MIN"], float), np.asarray(spec["E_MAX"], float)
    keep = np.asarray(spec["FITTED"], bool) if "FITTED" in spec.names else np.ones(lo.size, bool)
    w = hi - lo
    curve = Curve(prod.meta.get("src_name") or prod.name, np.sqrt(lo * hi)[keep],
                  (np.asarray(spec["RATE"], float) / w)[keep], (np.asarray(spec["STAT_ERR"], float) / w)[keep],
                  "keV", "count/s/keV", xerr=(w / 2)[keep], model=(np.asarray(spec["MODEL"], float) / w)[keep])
    params = {str(p).strip(): (float(v), float(e), str(u).strip())
              for p, v, e, u in zip(par["PARAM"], par["VALUE"], par["ERROR"], par["UNIT"], strict=True)}
    return curve, params


def significance_hdu(prod: Any) -> fits.ImageHDU:
    """The mosaic's significance map alone (float32, one HDU: Aladin shows a FITS's last HDU)."""
    for hdu in prod.hdul:
        if hdu.is_image and hdu.header.get("IMATYPE", "").upper() == "SIGNIFICANCE":
            return fits.ImageHDU(np.asarray(hdu.data, np.float32), hdu.header)
    raise ValueError(f"product {prod.name} has no SIGNIFICANCE image")
