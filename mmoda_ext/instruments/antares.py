"""ANTARES: 90 % CL neutrino flux upper limits for a point source (``antares_spectrum``).

Same parameters, algorithm and output tables as the MMODA ANTARES service
(``dispatcher-plugin-antares`` + ``antares-backend``; see :mod:`mmoda_ext.science.antares`).
There is no time selection: the whole 2007–2017 sample is always used, so ``T1``/``T2`` are not
declared (and are ignored if a client sends them, as every MMODA instrument accepts them).

Data: a simulated sample by default; the real public sample when ``MMODA_ANTARES_DATA`` (or
``AntaresData.data_dir``) points at it, read with the service's 5921-event truncation unless
``AntaresData.plugin_truncation`` is False (see :mod:`mmoda_ext.archive.antares_data`).
"""

from __future__ import annotations

import io
from typing import Any

from astropy import units as u
from astropy.table import Table

from ..access.rights import Rights
from ..archive.antares_data import AntaresData
from ..products.antares import write_fits
from ..products.plots import plot_upper_limits
from ..science.antares import upper_limits
from .base import Instrument, Product, ProductFile, ProductSet
from .params import Float, ParamSet

__all__ = ["Antares", "AntaresSpectrum"]

NORM_UNIT = u.Unit("GeV-1 cm-2 s-1")
SED_UNIT = u.Unit("GeV / (cm2 s)")
IGNORED = ("T1", "T2", "T_format")


def _data(ctx_archive: Any) -> AntaresData:
    found = getattr(ctx_archive, "antares", None)
    return found if isinstance(found, AntaresData) else AntaresData()


def _ecsv(table: Table) -> str:
    buf = io.StringIO()
    table.write(buf, format="ascii.ecsv")
    return buf.getvalue()


class AntaresSpectrum(Product):
    name = "antares_spectrum"
    description = "ANTARES 2007-2017 track events: 90% CL upper limits on a power-law neutrino flux"

    def params(self):
        return [
            Float("DEC", default=-29.74516667, unit="deg", min=-80.0, max=50.0,
                  help="Declination (J2000); ANTARES sees -80 to +50 deg"),
            Float("radius", default=2.5, unit="deg", min=0.1, max=2.5, help="Radius of the region of interest"),
            Float("index_min", default=1.5, min=1.5, max=3.0, help="Lower end of the spectral indices scanned"),
            Float("index_max", default=3.0, min=1.5, max=3.0, help="Upper end of the spectral indices scanned"),
        ]

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        """Bounds are enforced by the declarations; nothing else can fail before reading the data."""

    def run(self, params: dict[str, Any], ctx) -> ProductSet:
        data = _data(getattr(ctx, "archive", None))
        ctx.progress(0.05, "reading the ANTARES sample")
        sample = data.load()
        ra, dec, roi = float(params["RA"]), float(params["DEC"]), float(params["radius"])
        ctx.progress(0.2, "Feldman-Cousins upper limit")
        res = upper_limits(ra, dec, roi, float(params["index_min"]), float(params["index_max"]),
                           sample.ra, sample.dec, sample.bkg_coeffs, sample.acc_table)
        meta = {"RA": ra, "DEC": dec, "RoI": roi}
        byind = Table([res.index, res.norm], names=["Index", "1GeV_norm"], meta=dict(meta))
        byind["Index"].description = "photon index"
        byind["1GeV_norm"].unit = NORM_UNIT
        byind["1GeV_norm"].description = "flux normalisation upper limit at 1 GeV"
        sed = Table([res.energy, res.e2flux], names=["E", "flux_UL * E^2"], meta=dict(meta))
        sed["E"].unit = u.GeV
        sed["flux_UL * E^2"].unit = SED_UNIT

        out = ctx.outdir
        tag = f"ra{ra:.2f}_dec{dec:.2f}_roi{roi:.1f}"
        sed_fits, byind_fits = out / f"ant_ul_{tag}.fits", out / f"byind_ant_ul_{tag}.fits"
        simulated = sample.source.lower().startswith("simulated")
        write_fits(sed_fits, sed, "SPECTRA_UPPER_LIMIT", simulated, sample.source)
        write_fits(byind_fits, byind, "UL_BY_INDEX", simulated, sample.source)
        png = out / f"ant_ul_{tag}.png"
        g2, n2 = res.norm_at(2.0)
        plot_upper_limits(png, res.energy, res.e2flux, index=res.index, norm=res.norm, simulated=simulated,
                          title=f"ANTARES 90% CL UL, RA {ra:.2f} Dec {dec:.2f}, RoI {roi:g} deg "
                                f"(n_obs {res.n_obs}, n_bkg {res.n_bkg:.2f})")
        products = [
            ProductFile(name="Spectra Upper Limit", kind="antares_spectrum", fits=sed_fits, png=png,
                        meta={"table_name": "Spectra Upper Limit", "meta_data": meta, "ecsv": _ecsv(sed)}),
            ProductFile(name="byind", kind="antares_spectrum", fits=byind_fits, png=None,
                        meta={"table_name": "byind", "meta_data": meta, "ecsv": _ecsv(byind)}),
        ]
        messages = [
            f"Data: {sample.source}; {sample.n_used} events searched.",
            f"Expected background {res.n_bkg:.2f} events, observed {res.n_obs} within {roi:g} deg.",
            f"90% CL upper limit {res.n_ul:.2f} signal events "
            + ("(sensitivity: observed <= background)" if res.branch == "sensitivity" else "(Feldman-Cousins)")
            + f"; at index {g2:.2f}: Phi0 < {n2:.3g} GeV-1 cm-2 s-1 at 1 GeV.",
        ]
        ctx.progress(1.0, "done")
        summary = {"n_bkg": res.n_bkg, "n_obs": res.n_obs, "n_ul": res.n_ul, "n_ll": res.n_ll,
                   "branch": res.branch, "source": sample.source, "n_events": sample.n_used}
        return ProductSet(products, messages=messages, meta={"instrument": "antares", "result": summary})


class Antares(Instrument):
    name = "antares"
    source_query_name = "source_query"
    instrument_query_name = "instrument_query"
    description = "ANTARES neutrino telescope, public 2007-2017 point-source sample: flux upper limits"
    products = {"antares_spectrum": AntaresSpectrum()}

    def param_set(self, product: str) -> ParamSet:
        full = super().param_set(product)
        return ParamSet([p for p in full.params if p.name not in IGNORED])

    def parse(self, product: str, raw: dict[str, Any], *, allow_unknown: bool = False) -> dict[str, Any]:
        """No time selection in ANTARES: T1/T2 (accepted by every MMODA instrument) are dropped."""
        raw = {k: v for k, v in raw.items() if k not in IGNORED}
        return super().parse(product, raw, allow_unknown=allow_unknown)


__instruments__ = [Antares]
