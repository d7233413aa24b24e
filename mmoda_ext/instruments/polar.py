"""POLAR (Tiangong-2 GRB polarimeter): light curves (``polar_lc``).

As ``dispatcher-plugin-polar``: parameters T1, T2, time_bin, E1_keV (0), E2_keV (10000); a FITS
binary table ``POLAR_LC`` with lower-case columns ``time`` (Unix s, bin centre), ``rate`` and
``rate_err`` (cts/s); preview "Time (s)" against "Rate (cts/s)", titled "Start Time: T1".
Data: :class:`~mmoda_ext.archive.polar_data.PolarArchive` (simulated; mission window, SAA gaps,
GRBs at real times). Unlike the real service, an inverted range or a request outside the mission
is refused with a message that says why, instead of "no data".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..access.rights import Rights
from ..archive.polar_data import (
    E_HI,
    E_LO,
    MISSION_START,
    MISSION_STOP,
    NATIVE,
    PolarArchive,
    band_fraction,
)
from ..errors import NoDataError, ParameterError, PublicError
from ..products.plots import plot_light_curve
from ..products.polar import write_lc, write_root
from .base import Instrument, Product, ProductFile, ProductSet
from .params import Float, to_time

__all__ = ["Polar", "PolarLightCurve"]

WINDOW = f"{MISSION_START.isot[:19]} to {MISSION_STOP.isot[:19]} UTC"


def _archive(ctx_archive: Any) -> PolarArchive:
    found = getattr(ctx_archive, "polar", None)
    return found if isinstance(found, PolarArchive) else PolarArchive()


class PolarLightCurve(Product):
    name = "polar_lc"
    description = "POLAR count-rate light curve (50-500 keV polarimeter on Tiangong-2, 2016-09-22 to 2017-04-04)"

    def params(self):
        return [
            Float("time_bin", default=1000.0, unit="s", min=NATIVE, help="Bin width (multiple of 0.1 s)"),
            Float("E1_keV", default=0.0, unit="keV", min=0.0, max=10000.0, help="Lower energy bound"),
            Float("E2_keV", default=10000.0, unit="keV", min=0.0, max=10000.0, help="Upper energy bound"),
        ]

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        t1, t2 = to_time(params["T1"]), to_time(params["T2"])
        if t2 <= t1:
            raise ParameterError("T2", params["T2"], f"a time after T1 = {params['T1']}",
                                 "The time range T1-T2 is inverted or empty")
        if t2 <= MISSION_START or t1 >= MISSION_STOP:
            raise NoDataError(
                f"No POLAR data for T1 = {params['T1']} to T2 = {params['T2']}: POLAR took data only from "
                f"{WINDOW} (it failed on 2017-04-04). Choose T1 and T2 inside that window.",
                parameter="T1", value=params["T1"])
        if params["E2_keV"] <= params["E1_keV"]:
            raise ParameterError("E2_keV", params["E2_keV"], f"a value above E1_keV = {params['E1_keV']:g}",
                                 "The energy range is inverted or empty")
        if band_fraction(params["E1_keV"], params["E2_keV"], 1.0) == 0.0:
            raise ParameterError("E1_keV", params["E1_keV"], "an energy range overlapping 5-1000 keV",
                                 "POLAR records no counts in this band")
        archive = PolarArchive()
        span = float((min(t2, MISSION_STOP) - max(t1, MISSION_START)).to_value("s"))
        if span > archive.max_span:
            raise PublicError(
                f"POLAR light curves are limited to {archive.max_span:.0f} s ({archive.max_span / 86400:g} days) "
                f"per request; T1 = {params['T1']} to T2 = {params['T2']} covers {span:.0f} s of mission data. "
                f"Ask for a shorter interval.", parameter="T2", value=params["T2"])
        if params["time_bin"] > span:
            raise ParameterError("time_bin", params["time_bin"], f"at most the interval length, {span:g} s")

    def run(self, params: dict[str, Any], ctx) -> ProductSet:
        archive = _archive(getattr(ctx, "archive", None))
        t1, t2 = to_time(params["T1"]), to_time(params["T2"])
        u1, u2 = max(t1.unix, archive.start), min(t2.unix, archive.stop)
        messages = []
        if u1 > t1.unix or u2 < t2.unix:
            messages.append(f"Only the part of T1-T2 inside the POLAR mission ({WINDOW}) has data.")
        ctx.progress(0.1, "reading POLAR counts")
        time, rate, err, live = archive.light_curve(u1, u2, float(params["time_bin"]),
                                                    float(params["E1_keV"]), float(params["E2_keV"]))
        if time.size == 0:
            raise NoDataError(f"No POLAR data between T1 = {params['T1']} and T2 = {params['T2']}: the "
                              f"instrument was in the South Atlantic Anomaly (no science data).", parameter="T1")
        span = u2 - u1
        dead = span - float(live.sum())
        if dead > 0.05 * span:
            messages.append(f"{dead:.0f} s of the interval have no data (South Atlantic Anomaly passages).")
        grbs = archive.bursts_between(u1, u2)
        marks = []
        for row in grbs:
            if u1 <= row["t_peak_unix"] <= u2:
                messages.append(f"GRB in the interval: {row['name']} (trigger {row['t0_utc']} UTC).")
                marks.append((float(row["t_peak_unix"]) - t1.unix, str(row["name"])))

        out = ctx.outdir
        fits_path, png_path = out / "polar_lc.fits", out / "polar_lc.png"
        timedel = max(np.floor(params["time_bin"] / NATIVE + 1e-9), 1) * NATIVE
        write_lc(fits_path, time, rate, err, u1, u2, timedel, params)
        plot_light_curve(png_path, time - t1.unix, rate, err, title=f"Start Time: {t1.utc.isot}",
                         xlabel="Time (s)", ylabel="Rate (cts/s)", marks=marks,
                         subtitle=f"POLAR {max(params['E1_keV'], E_LO):g}-{min(params['E2_keV'], E_HI):g} keV "
                                  f"(the counts' range in the request), {timedel:g} s bins; gaps: SAA, no data")
        meta = {"src_name": "lc", "time_bin": float(params["time_bin"]),
                "time": "time", "rate": "rate", "rate_err": "rate_err"}
        root_path = write_root(out / "polar_lc.root", time, rate, err, t1.unix, timedel, params)
        ctx.progress(1.0, "done")
        return ProductSet([ProductFile("polar_lc", "polar_lc", fits_path, png_path, meta),
                           # the data file is ROOT, not FITS (the REST API serves it as the product's file)
                           ProductFile("polar_lc_root", "polar_root", fits=root_path,
                                       meta={"oda_encoding": "binary_data", "format": "ROOT"})],
                          messages=messages, meta={"instrument": "polar"})


class Polar(Instrument):
    name = "polar"
    instrument_query_name = "polar_parameters"
    description = "POLAR GRB polarimeter on Tiangong-2 (2016-2017): light curves"
    products = {"polar_lc": PolarLightCurve()}


__instruments__ = [Polar]
