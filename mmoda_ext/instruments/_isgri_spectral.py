"""ISGRI ``isgri_spectrum``, ``isgri_lc`` and ``spectral_fit`` products.

Sources: the catalogued sky-model sources within reach of the selected windows plus the
requested position (named ``src_name``, unless a catalogue source lies within 0.2° of it).
Every window fits all of them jointly (PIF + background, :func:`..science.spectrum.fit_cube`):
per archive channel for spectra, per time bin for light curves. One Dask task per window;
results are folded as they arrive. Rates are on the OSA10.2 scale in the archive and follow
the requested ``osa_version`` (:func:`..science.ibis.osa_scale`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..access.rights import Rights
from ..archive.isgri_data import FIELD_RADIUS_DEG, band_channels, load_window
from ..errors import NoDataError, ParameterError
from ..products import isgri_lc, isgri_spectrum
from ..products.spectral_fit import plot_fit, write_fit
from ..science import ibis, lightcurve, spectral_fit, spectrum
from ..science.spectrum import MIN_CODING
from ._catalog import catalog_params, is_catalogued, selected_sources
from ._integral_rules import check_osa_version, check_osa_windows
from ._integral_select import check_common, select_windows, windows_label
from ._isgri_window import ArchiveRef
from .base import Product, ProductFile, ProductSet
from .params import Float, Select, String

__all__ = ["IsgriSpectrum", "IsgriLightCurve", "IsgriSpectralFit", "field_sources"]

MATCH_DEG = 0.2
FLUX_BAND = (20.0, 100.0)


# -- sources and shifts ----------------------------------------------------------------------------

def field_sources(archive: Any, windows: list[Any], params: dict[str, Any]
                  ) -> tuple[list[tuple], int, set[str]]:
    """([(name, ra, dec, id)], index of the requested source, names to report).

    Without ``selected_catalog``: the catalogued sources of the windows' fields plus the
    requested position (named ``src_name``), all reported. With it: its sources, reported,
    then the other catalogued field sources, fitted jointly but not reported (so that a bright
    neighbour left out of the user's catalogue does not leak into the background).
    """
    seen: dict[str, tuple] = {}
    for w in windows:
        for s in archive.sky.near(w.ra, w.dec, FIELD_RADIUS_DEG):
            if is_catalogued(s) and s.name not in seen:
                seen[s.name] = (s.name, float(s.ra), float(s.dec), int(s.id))
    ra, dec = float(params["RA"]), float(params["DEC"])
    selected = selected_sources(params)
    if selected is not None:
        srcs = []
        for name, sra, sdec in selected:
            known = archive.sky.find(name)
            srcs.append((name, sra, sdec, int(known.id) if known is not None else -1))
        for s in seen.values():
            if s[0] not in {x[0] for x in srcs} and all(
                    _sep_deg(s[1], s[2], x[1], x[2]) > MATCH_DEG for x in srcs):
                srcs.append(s)
        names = [x[0] for x in selected]
        wanted = str(params.get("src_name") or "")
        target = next((i for i, x in enumerate(selected) if x[0] == wanted),
                      next((i for i, x in enumerate(selected) if _sep_deg(x[1], x[2], ra, dec) < MATCH_DEG), 0))
        return srcs, target, set(names)
    srcs = list(seen.values())
    near = [s for s in archive.sky.near(ra, dec, MATCH_DEG) if s.name in seen]
    if near:
        return srcs, [s[0] for s in srcs].index(near[0].name), {s[0] for s in srcs}
    srcs.append((str(params.get("src_name") or "query"), ra, dec, -1))
    return srcs, len(srcs) - 1, {s[0] for s in srcs}


def _sep_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Angular distance (deg)."""
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _shifts(scw: Any, positions: tuple) -> tuple[list[int], list[tuple[float, float]]]:
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    idx, shifts = [], []
    for i, (_, ra, dec, *_rest) in enumerate(positions):
        x, y = frame.to_pixel(ra, dec)
        ky, kz = float(y) - ibis.SKY_CENTRE[0], float(x) - ibis.SKY_CENTRE[1]
        if np.isfinite(x) and abs(ky) < ibis.SKY_CENTRE[0] and abs(kz) < ibis.SKY_CENTRE[1]:
            idx.append(i)
            shifts.append((ky, kz))
    return idx, shifts


# -- per-window tasks (top level, picklable) ----------------------------------------------------------

@dataclass(frozen=True)
class SpecPlan:
    archive: ArchiveRef
    sources: tuple  # ((name, ra, dec, id), ...)


def spectrum_task(plan: SpecPlan, scw: Any) -> dict[str, Any]:
    """Per source in the field: rates and errors in every archive channel of one window."""
    win = load_window(plan.archive.get(), scw)
    idx, shifts = _shifts(scw, plan.sources)
    out: dict[str, Any] = {"scw": scw, "exposure": win.exposure, "sources": {}}
    if not idx:
        return out
    fit = spectrum.fit_cube(win.counts, win.efficiency, win.background, win.exposure, shifts)
    for j, i in enumerate(idx):
        coded = spectrum.coded_fraction(win.efficiency, *shifts[j])
        if coded >= MIN_CODING:
            out["sources"][plan.sources[i][0]] = (fit.rates[:, j], fit.errors[:, j], coded)
    return out


@dataclass(frozen=True)
class LcPlan:
    archive: ArchiveRef
    sources: tuple
    e1: float
    e2: float
    origin: float  # IJD of bin 0
    bin_s: float


def _expected_per_bin(archive: Any, win: Any, scw: Any, beta: float, ks: np.ndarray,
                      good_s: np.ndarray, plan: LcPlan, i0: int, i1: int) -> np.ndarray:
    """Expected band counts per bin and pixel from the simulation's own sky model (the split)."""
    from ..science.sources import source_model

    width = plan.bin_s / lightcurve.DAY
    lo = np.maximum(plan.origin + ks * width, scw.tstart)
    hi = np.minimum(plan.origin + (ks + 1) * width, scw.tstop)
    t_mid = 0.5 * (lo + hi)
    per_s = beta * win.efficiency * win.background / max(float(scw.ontime), 1.0)
    exp = np.multiply.outer(good_s, per_s)
    resp = ibis.response_matrix(scw.revolution)[:, i0:i1].sum(axis=1)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    for src in archive.sky.near(scw.ra, scw.dec, FIELD_RADIUS_DEG):  # all simulated sources
        x, y = frame.to_pixel(src.ra, src.dec)
        if not np.isfinite(x):
            continue
        m = source_model(win.efficiency, float(scw.deadc), float(y) - ibis.SKY_CENTRE[0],
                         float(x) - ibis.SKY_CENTRE[1])
        if not m.any():
            continue
        rates = np.atleast_2d(src.photon_flux(ibis.E_IN, t_mid)) @ resp  # (n_bin,)
        exp += np.multiply.outer(good_s * np.maximum(rates, 0.0), m)
    return exp


def lc_task(plan: LcPlan, scw: Any) -> dict[str, Any]:
    """Per source: PIF-fitted rates in the grid bins one window covers (split counts, see module)."""
    archive = plan.archive.get()
    win = load_window(archive, scw)
    shd, _ = win.band(plan.e1, plan.e2)
    i0, i1 = band_channels(plan.e1, plan.e2)
    ks, good_s = lightcurve.bin_overlaps(scw.gti, plan.origin, plan.bin_s)
    idx, shifts = _shifts(scw, plan.sources)
    out: dict[str, Any] = {"scw": scw, "sources": {}}
    if not idx or ks.size == 0:
        return out
    expo = good_s * float(scw.deadc)
    if ks.size == 1:
        cube = shd[None]
    else:
        whole = spectrum.fit_cube(shd[None], win.efficiency, win.background, win.exposure, shifts)
        expected = _expected_per_bin(archive, win, scw, float(whole.background[0]), ks, good_s,
                                     plan, i0, i1)
        seed = [int(scw.seed), i0, i1, int(round(plan.bin_s * 1000)),
                int(round(plan.origin * 86400.0))]
        cube = lightcurve.split_counts(shd, expected, np.random.default_rng(seed))
    fit = spectrum.fit_cube(cube, win.efficiency, win.background, expo, shifts)
    bm_sum = float((win.efficiency * win.background)[win.efficiency > 0].sum())
    brate = fit.background * bm_sum / expo
    berr = fit.background_err * bm_sum / expo
    for j, i in enumerate(idx):
        if spectrum.coded_fraction(win.efficiency, *shifts[j]) >= MIN_CODING:
            out["sources"][plan.sources[i][0]] = (ks, fit.rates[:, j], fit.errors[:, j], good_s,
                                                  fit.counts, brate, berr, expo)
    return out


# -- products ---------------------------------------------------------------------------------------

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9+\-]+", "_", name).strip("_") or "source"


def _label(what: str, ctx: Any, windows: list) -> str:
    """Progress stage of the per-window pass (how many windows' data are generated first)."""
    return f"{what}: {windows_label(ctx.archive, windows)}"


def _prepare(params: dict[str, Any], ctx: Any) -> tuple[list, list[str], list[tuple], int, set[str]]:
    ctx.progress(0.0, "selecting science windows")
    windows, messages = select_windows(params, ctx.archive, ctx.rights)
    check_osa_windows(params, windows)
    srcs, target, report = field_sources(ctx.archive, windows, params)
    return windows, messages, srcs, target, report


def _none_coded(params: dict[str, Any], report: set[str]) -> NoDataError:
    """No product: say which sources were asked for and what to change."""
    if params.get("selected_catalog"):
        return NoDataError(
            f"none of the {len(report)} source(s) of selected_catalog ({', '.join(sorted(report))}) is "
            "coded in the selected science windows; select windows pointed nearer to them (RA/DEC, "
            "radius, scw_list) or send the catalogue of an image of these windows",
            parameter="selected_catalog", value=sorted(report))
    return NoDataError("no catalogue source is coded in the selected science windows",
                       parameter="RA", value=params["RA"])


def _fit_band(revolutions: set[int]) -> tuple[float, float]:
    """OSA manual: ignore < 22 keV after rev 1000 and < 30 keV after rev 1600."""
    last = max(revolutions) if revolutions else 0
    return (30.0 if last > 1600 else 22.0 if last > 1000 else 20.0), 500.0


def _fit(s: spectrum.SourceSum, version: str, model: str) -> spectral_fit.FitResult | None:
    scale = spectrum.channel_scale(version)
    lo, hi = _fit_band(s.revolutions)
    edges = spectrum.CHANNELS
    chans = (edges[:-1] >= lo - 1e-6) & (edges[1:] <= hi + 1e-6)
    rate, err = s.rate * scale, s.error * scale
    ok = chans & np.isfinite(rate) & (err > 0)
    if ok.sum() < 4 or np.nansum(rate[ok]) / np.sqrt(np.nansum(err[ok] ** 2)) < 3.0:
        return None
    return spectral_fit.fit_spectrum(rate, err, spectrum.E_IN, s.arf, spectrum.rmf_matrix(version),
                                     chans, model, exposure=s.exposure, flux_band=FLUX_BAND)


def _sum_spectra(params: dict[str, Any], ctx: Any, windows, srcs, only: set[str] | None = None):
    sums = {s[0]: spectrum.SourceSum(s[0], s[1], s[2], s[3]) for s in srcs
            if only is None or s[0] in only}

    def fold(acc, res):
        for name, (r, e, coded) in res["sources"].items():
            if name in acc:
                acc[name].add(r, e, res["scw"], res["exposure"], coded)
        return acc

    plan = SpecPlan(ArchiveRef.of(ctx.archive), tuple(srcs))
    return ctx.map_reduce(partial(spectrum_task, plan), windows, fold, sums,
                          label=_label("spectra", ctx, windows))


class _IsgriProduct(Product):
    def params(self) -> list:
        return catalog_params()

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        check_common(params, rights)
        check_osa_version(params, rights)


class IsgriSpectrum(_IsgriProduct):
    name = "isgri_spectrum"
    description = "ISGRI spectra of the catalogue sources in the field (OSA ii_spectra_extract): PHA + ARF + RMF"

    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        windows, messages, srcs, _, report = _prepare(params, ctx)
        sums = _sum_spectra(params, ctx, windows, srcs, only=report)
        version = params["osa_version"]
        products = []
        meta = {"osa_version": version}
        for s in sums.values():
            if s.n_scw == 0:
                continue
            stem = ctx.outdir / f"isgri_spectrum_{_safe(s.name)}"
            # XSPEC loads the triple as written; QUALITY 0 only in the calibrated band of the revolutions
            files = {"respfile": stem.name + "_rmf.fits", "ancrfile": stem.name + "_arf.fits",
                     "calibrated": _fit_band(s.revolutions)}
            pha = isgri_spectrum.write_pha(stem.with_name(stem.name + "_spectrum.fits"), s, {**meta, **files})
            arf = isgri_spectrum.write_arf(stem.with_name(stem.name + "_arf.fits"), s, meta)
            rmf = isgri_spectrum.write_rmf(stem.with_name(stem.name + "_rmf.fits"), s, meta)
            fit = _fit(s, version, "powerlaw")
            scale = spectrum.channel_scale(version)
            png = plot_fit(
                stem.with_name(stem.name + "_spectrum.png"), spectrum.CHANNELS, s.rate * scale,
                s.error * scale, fit,
                f"ISGRI {s.name} · {s.n_scw} ScW · {s.exposure / 1e3:.1f} ks · {version}")
            for kind, path, p in (("isgri_spectrum", pha, png), ("isgri_arf", arf, None),
                                  ("isgri_rmf", rmf, None)):
                products.append(ProductFile(f"{kind}_{_safe(s.name)}", kind, fits=path, png=p,
                                            meta={"product": kind, "src_name": s.name}))
            if fit is not None:
                messages.append(f"{s.name}: {fit.summary()}")
        if not products:
            raise _none_coded(params, report)
        return ProductSet(products, messages, {"scw_list": [w.scw_id for w in windows],
                                               "sources": [s.name for s in sums.values() if s.n_scw]})


class IsgriSpectralFit(_IsgriProduct):
    name = "spectral_fit"
    description = "Forward-folded fit (powerlaw or cutoffpl) of the requested source's ISGRI spectrum"

    def params(self) -> list:
        return [
            *catalog_params(),
            Select("xspec_model", default="powerlaw", choices=spectral_fit.MODELS,
                   help="Spectral model (XSPEC name)"),
            String("ph_file_name", default="", optional=True,
                   help="Accepted for MMODA compatibility; the spectrum of src_name is extracted anew"),
            String("arf_file_name", default="", optional=True, help="As ph_file_name"),
            String("rmf_file_name", default="", optional=True, help="As ph_file_name"),
        ]

    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        windows, messages, srcs, target, _ = _prepare(params, ctx)
        name = srcs[target][0]
        s = _sum_spectra(params, ctx, windows, srcs, only={name})[name]
        if s.n_scw == 0:
            raise NoDataError(f"{name} is not coded in any selected science window",
                              parameter="src_name", value=params.get("src_name"))
        version, model = params["osa_version"], params["xspec_model"]
        fit = _fit(s, version, model)
        if fit is None:
            raise NoDataError(f"{name} is not detected (below 3σ over the fit band): no fit possible",
                              parameter="src_name", value=params.get("src_name"))
        stem = ctx.outdir / f"spectral_fit_{_safe(name)}_{model}"
        scale = spectrum.channel_scale(version)
        path = write_fit(stem.with_name(stem.name + ".fits"), s, fit, s.rate * scale,
                         s.error * scale, version)
        png = plot_fit(stem.with_name(stem.name + ".png"), spectrum.CHANNELS,
                       s.rate * scale, s.error * scale, fit,
                       f"ISGRI {name} · {model} · {version}")
        messages.append(f"{name}: {fit.summary()}")
        meta = {"product": "spectral_fit", "src_name": name, "xspec_model": model,
                **{k: fit.values[k] for k in fit.names}, "flux": fit.flux, "flux_err": fit.flux_err}
        return ProductSet([ProductFile(f"spectral_fit_{_safe(name)}", "spectral_fit", fits=path,
                                       png=png, meta=meta)], messages,
                          {"scw_list": [w.scw_id for w in windows]})


class IsgriLightCurve(_IsgriProduct):
    name = "isgri_lc"
    description = "ISGRI light curves of the catalogue sources in the field (OSA ii_lc_extract)"

    def params(self) -> list:
        return [*catalog_params(), Float("time_bin", default=1000.0, unit="s", min=20.0,
                      help=f"Bin width in seconds, 20 to {lightcurve.MAX_TIME_BIN_S:g}")]

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        if params["time_bin"] > lightcurve.MAX_TIME_BIN_S:
            raise ParameterError(
                "time_bin", params["time_bin"], f"20 to {lightcurve.MAX_TIME_BIN_S:g} s",
                f"MMODA caps ISGRI light-curve bins at {lightcurve.MAX_TIME_BIN_S:g} s (about one "
                "science window); for longer bins rebin the light curve you get")
        super().check(params, rights)

    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        windows, messages, srcs, _, report = _prepare(params, ctx)
        e1, e2 = params["E1_keV"], params["E2_keV"]
        i0, i1 = band_channels(e1, e2)
        be1, be2 = float(spectrum.CHANNELS[i0]), float(spectrum.CHANNELS[i1])
        bin_s = float(params["time_bin"])
        origin = min(w.tstart for w in windows)
        plan = LcPlan(ArchiveRef.of(ctx.archive), tuple(srcs), e1, e2, origin, bin_s)
        sums = {s[0]: lightcurve.LcSum(s[0], s[1], s[2]) for s in srcs if s[0] in report}

        def fold(acc, res):
            for name, arrays in res["sources"].items():
                if name in acc:
                    acc[name].add(*arrays)
            return acc

        sums = ctx.map_reduce(partial(lc_task, plan), windows, fold, sums, label=_label("light curves", ctx, windows))
        scale = ibis.osa_scale(params["osa_version"], be1, be2)
        meta = {"e1": be1, "e2": be2, "time_bin": bin_s, "osa_version": params["osa_version"],
                "tstart": origin, "tstop": max(w.tstop for w in windows)}
        products = []
        for lc in sums.values():
            if not lc.bins:
                continue
            t = lc.table(origin, bin_s, scale)
            stem = ctx.outdir / f"isgri_lc_{_safe(lc.name)}"
            path = isgri_lc.write_lc(stem.with_name(stem.name + ".fits"), lc, t, meta)
            png = isgri_lc.plot_lc(stem.with_name(stem.name + ".png"), lc.name, t, meta)
            products.append(ProductFile(f"isgri_lc_{_safe(lc.name)}", "isgri_lc", fits=path, png=png,
                                        meta={"src_name": lc.name, "time_bin": bin_s, "time": "TIME",
                                              "rate": "RATE", "rate_err": "ERROR"}))
        if (be1, be2) != (e1, e2):
            messages.append(f"energy band {e1:g}–{e2:g} keV taken as the archive channels "
                            f"{be1:g}–{be2:g} keV")
        if not products:
            raise NoDataError("no catalogue source is coded in the selected science windows",
                              parameter="RA", value=params["RA"])
        return ProductSet(products, messages, {"scw_list": [w.scw_id for w in windows]})
