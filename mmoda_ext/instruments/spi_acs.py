"""INTEGRAL SPI-ACS: the all-sky total-rate light curve (``spi_acs_lc``) and a burst search.

Data come from :class:`~mmoda_ext.archive.spiacs_data.SpiAcsArchive` (simulated, 50 ms), the
product follows ``dispatcher-plugin-integral-all-sky``: a ``RATE`` extension with ``TIME`` in s
from ``TIMEZERO`` (IJD seconds, TT, midpoint of the data), ``RATE`` and ``ERROR`` in count/s, the
plugin's header keywords, and the plugin's rebinning rule (:mod:`mmoda_ext.science.spiacs`).
A second extension ``BURSTS`` reports the burst finder (:mod:`mmoda_ext.science.bursts`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from astropy.time import Time

from ..access.rights import Rights
from ..archive.spiacs_data import SpiAcsArchive, ijd_seconds, time_from_ijd_seconds
from ..errors import AccessError, NoDataError, ParameterError, PublicError
from ..products.plots import plot_light_curve
from ..products.spi_acs import write_lc
from ..science.bursts import find_burst
from ..science.spiacs import NATIVE_BIN, effective_bin, rebin
from .base import Instrument, Product, ProductFile, ProductSet
from .params import Float, Select, to_time

__all__ = ["SpiAcs", "SpiAcsLightCurve"]

MIN_NATIVE_BINS = 100
REALTIME_ROLE = "integral-realtime"
#: the burst search needs a light curve with at least this many bins
MIN_SEARCH_BINS = 30


def _archive(ctx_archive: Any) -> SpiAcsArchive:
    found = getattr(ctx_archive, "spiacs", None)
    return found if isinstance(found, SpiAcsArchive) else SpiAcsArchive()


def interval(params: dict[str, Any]) -> tuple[Time, Time]:
    return to_time(params["T1"]), to_time(params["T2"])


class SpiAcsLightCurve(Product):
    name = "spi_acs_lc"
    description = "SPI-ACS total count rate (80 keV - 10 MeV, no direction), 50 ms native resolution"

    def params(self):
        return [
            Float("time_bin", default=1000.0, unit="s", min=NATIVE_BIN,
                  help="Bin width; floored to a multiple of the 0.05 s native bin"),
            Select("data_level", default="ordinary", choices=("ordinary", "realtime"),
                   help="'realtime' (near-real-time telemetry) needs the integral-realtime role"),
        ]

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        t1, t2 = interval(params)
        if t2 <= t1:
            raise ParameterError("T2", params["T2"], f"a time after T1 = {params['T1']}",
                                 "The time interval is empty or inverted")
        span = float((t2 - t1).to_value("s"))
        archive = SpiAcsArchive()
        if span > archive.max_span:
            raise PublicError(
                f"SPI-ACS backend refuses to process this request, due to resource constraints: "
                f"T1 = {params['T1']} to T2 = {params['T2']} spans {span:.0f} s, the limit is "
                f"{archive.max_span:.0f} s ({archive.max_span / 86400:g} days). Ask for a shorter interval.",
                parameter="T2", value=params["T2"], status=400)
        n_native = int(np.floor(span / NATIVE_BIN + 1e-9))
        if n_native <= MIN_NATIVE_BINS:
            raise ParameterError("T2", params["T2"],
                                 f"an interval longer than {MIN_NATIVE_BINS * NATIVE_BIN:g} s "
                                 f"(more than {MIN_NATIVE_BINS} native 0.05 s bins)",
                                 f"T1-T2 spans {span:g} s, only {n_native} native bins")
        s1, s2 = ijd_seconds(t1), ijd_seconds(t2)
        if s2 <= archive.mission_start or s1 >= archive.mission_stop:
            raise NoDataError(
                f"No SPI-ACS data between T1 = {params['T1']} and T2 = {params['T2']}: the server reports NoData. "
                f"SPI-ACS data exist from {time_from_ijd_seconds(archive.mission_start).utc.isot[:10]} "
                f"to {time_from_ijd_seconds(archive.mission_stop).utc.isot[:10]}.",
                parameter="T1", value=params["T1"])
        if params.get("data_level") == "realtime" and REALTIME_ROLE not in rights.roles:
            raise AccessError(
                f"data_level = 'realtime' reads the near-real-time INTEGRAL telemetry, which needs the role "
                f"'{REALTIME_ROLE}'; your account ({rights.user}) does not have it. Use data_level = 'ordinary' "
                f"or ask the MMODA team for the role.", parameter="data_level", value="realtime")

    def run(self, params: dict[str, Any], ctx) -> ProductSet:
        archive = _archive(getattr(ctx, "archive", None))
        t1, t2 = interval(params)
        ctx.progress(0.05, "reading SPI-ACS 50 ms counts")
        t_native, counts = archive.counts(ijd_seconds(t1), ijd_seconds(t2))
        if t_native.size <= MIN_NATIVE_BINS:
            raise NoDataError(f"SPI-ACS returned {t_native.size} native bins between T1 = {params['T1']} and "
                              f"T2 = {params['T2']}, fewer than the {MIN_NATIVE_BINS} needed.", parameter="T1")
        lc = rebin(t_native, counts, float(params["time_bin"]))
        ctx.progress(0.5, "searching for bursts")
        search, search_bin = lc, lc.time_bin
        if lc.time.size < MIN_SEARCH_BINS:
            span = lc.t_stop - lc.t_start
            search_bin, _ = effective_bin(max(span / 300.0, NATIVE_BIN))
            search = rebin(t_native, counts, search_bin)
        burst = find_burst(search.time, search.rate, search.exposure)
        known = archive.bursts_between(float(t_native[0]), float(t_native[-1] + NATIVE_BIN))
        known = known[(known["t_peak_ijd_s"] >= t_native[0]) & (known["t_peak_ijd_s"] <= t_native[-1])]

        out = ctx.outdir
        fits_path = out / "spi_acs_lc_query.fits"
        write_lc(fits_path, lc, burst, search_bin, params)
        messages = [self._burst_message(burst, lc.t_ref, search_bin)]
        marks = []
        for row in known:
            messages.append(f"Catalogued burst in the interval: {row['name']} (peak at "
                            f"{time_from_ijd_seconds(float(row['t_peak_ijd_s'])).utc.isot}).")
            marks.append((float(row["t_peak_ijd_s"]) - lc.t_ref, str(row["name"])))
        png_path = out / "spi_acs_lc_query.png"
        span = (burst.t05 + search.t_ref - lc.t_ref, burst.t95 + search.t_ref - lc.t_ref) if burst.detected else None
        # one time origin everywhere: the axis zero (the product's TIMEZERO) is named in the title
        t0 = time_from_ijd_seconds(lc.t_ref).utc.isot[:23]
        # robust bin-to-bin scatter (MAD of successive differences / √2): slow trends and a burst's
        # few steep bins do not count
        diff = np.diff(lc.rate)
        mad = 1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2.0) if diff.size > 10 else np.nan
        excess = float(mad / np.median(lc.error)) if diff.size > 10 else float("nan")
        if np.isfinite(excess):
            messages.append(f"Scatter of the rates outside bursts: {excess:.2f} x the Poisson ERROR column "
                            "(ERROR is Poisson, as MMODA's; SPI-ACS has excess variance, 1.1-1.6 x in real data).")
        plot_light_curve(
            png_path, lc.time, lc.rate, lc.error,
            title=f"INTEGRAL SPI-ACS · T0 = {t0} UTC",
            xlabel=f"Time since T0 = {t0} UTC (s)",
            subtitle=(f"T1–T2 {t1.utc.isot[:19]} – {to_time(params['T2']).utc.isot[11:19]} · {lc.time_bin:g} s bins · "
                      f"error bars Poisson (measured scatter {excess:.2f}×)"),
            marks=marks, span=span,
        )
        meta = {"src_name": "query", "time_bin": lc.time_bin, "time": "TIME", "rate": "RATE", "rate_err": "ERROR"}
        product = ProductFile(name="spi_acs_lc", kind="spi_acs_lc", fits=fits_path, png=png_path, meta=meta)
        ctx.progress(1.0, "done")
        return ProductSet([product], messages=messages,
                          meta={"instrument": "spi_acs", "burst": burst.to_dict(), "data_level": params["data_level"]})

    @staticmethod
    def _burst_message(burst, t_ref: float, search_bin: float) -> str:
        when = time_from_ijd_seconds(t_ref + burst.t_peak).utc.isot
        if not burst.detected:
            return (f"No burst above {burst.threshold:g} sigma (brightest excess {burst.significance:.1f} sigma at "
                    f"{when}, {search_bin:g} s bins).")
        return (f"Burst detected at {burst.significance:.1f} sigma ({search_bin:g} s bins): peak at {when} UTC, "
                f"excess {burst.peak_excess:.4g} cts/s over a background of {burst.background:.4g} cts/s, "
                f"T90 ~ {burst.t90:.3g} s, net counts {burst.net_counts:.3g}; off-burst scatter "
                f"{burst.noise_ratio:.2f} x Poisson.")


class SpiAcs(Instrument):
    name = "spi_acs"
    instrument_query_name = "spiacs_parameters"
    description = "INTEGRAL SPI anticoincidence shield: all-sky 50 ms count rate, GRB light curves"
    products = {"spi_acs_lc": SpiAcsLightCurve()}


__instruments__ = [SpiAcs]
