"""INTEGRAL JEM-X: the ``jemx`` instrument with ``jemx_image``, ``jemx_spectrum``, ``jemx_lc``.

The same machinery as ISGRI (shared balanced decoder, mosaic, peak search, PIF fits), with the
JEM-X optics of :mod:`..science.jemx` and per-unit event lists (:mod:`..archive.jemx_data`).
Rates are on-axis-equivalent (vignetting corrected) count rates, as in OSA's JEM-X products.
One Dask task per science window; results are folded as they arrive (bounded memory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from ..access.rights import Rights
from ..archive import jemx_data
from ..errors import NoDataError, ParameterError
from ..products import isgri as common_out
from ..products import jemx as out
from ..science import coded_mask, jemx, sources
from ..science.mosaic import MosaicAccumulator, mosaic_frame, reproject_window
from ._catalog import MATCH_RADIUS_DEG, catalog_params, is_catalogued, selected_sources
from ._integral_select import Selection, check_common, select_windows, used_of
from ._isgri_window import (
    ArchiveRef,
    _sky_jacobian,
    add_position_evidence,
    cache_root,
    cached_decoded,
    decoded_key,
    empty_mosaic,
    field_centre,
)
from .base import Instrument, Product, ProductFile, ProductSet, progress_span
from .isgri import detect, rates_at_refined_positions
from .params import Float, Integer, ScwList, Select

__all__ = ["Jemx", "jemx_params", "jemx_windows"]

E_MIN_KEV, E_MAX_KEV = 3.0, 35.0
FIELD_DEG = 7.0  # sources further than this from the axis do not reach the detector
PSF_FWHM_PIX = 2.2  # measured on decoded point sources (3.3 mm elements on 1.65 mm pixels)
MIN_RESPONSE = 0.05  # windows where the target's vignetting is below this are not used


def jemx_params() -> list:
    return [
        Select("jemx_num", default=2, choices=(1, 2), help="JEM-X unit"),
        Float("E1_keV", default=3.0, unit="keV", min=E_MIN_KEV, max=E_MAX_KEV, help="Lower energy bound"),
        Float("E2_keV", default=20.0, unit="keV", min=E_MIN_KEV, max=E_MAX_KEV, help="Upper energy bound"),
        Float("radius", default=4.0, unit="deg", min=0.0, max=180.0,
              help="Science windows whose pointing axis is within this radius of RA/DEC"),
        Integer("max_pointings", default=50, min=1, max=100000,
                help="At most this many science windows (a reproducible random subset above it)"),
        ScwList("scw_list", default=None, help="Explicit science windows (overrides the search)"),
        Select("osa_version", default="OSA11.2", choices=("OSA10.2", "OSA11.0", "OSA11.2", "OSA11.2-beta"),
               help="Offline Science Analysis version"),
        Select("integral_data_rights", default="public", choices=("public", "all-private"),
               help="Include private science windows (needs the private-data right)"),
    ]


def jemx_windows(params: dict[str, Any], archive: Any, rights: Rights) -> tuple[list[Any], list[str]]:
    """Selected windows in which the requested unit was on; refuse if it was off in all."""
    windows, messages = select_windows(params, archive, rights)
    unit = int(params["jemx_num"])
    on = [w for w in windows if jemx_data.unit_on(unit, w.revolution)]
    if not on:
        revs = sorted({w.revolution for w in windows})
        other = [u for u in (1, 2) if u != unit and any(jemx_data.unit_on(u, w.revolution) for w in windows)]
        hint = f" Use jemx_num={other[0]}, which was on." if other else ""
        raise NoDataError(
            f"JEM-X{unit} was switched off in all {len(windows)} selected science windows "
            f"(revolutions {revs[0]}–{revs[-1]}).{hint}", parameter="jemx_num", value=unit)
    if len(on) < len(windows):
        messages.append(f"{len(windows) - len(on)} science window(s) left out: JEM-X{unit} was off")
    return Selection(on, windows.matched), messages


def _catalogue(archive: Any, scw: Any, frame) -> list[tuple[str, float, float]]:
    """Catalogued sources in the field (uncatalogued ones are found and cleaned as new sources)."""
    cat = []
    for src in archive.sky.near(scw.ra, scw.dec, FIELD_DEG):
        if not is_catalogued(src):
            continue
        x, y = frame.to_pixel(src.ra, src.dec)
        if np.isfinite(x):
            cat.append((src.name, float(x), float(y)))
    return cat


def _shifts(frame, positions: list[tuple[float, float]]) -> list[tuple[float, float]]:
    c = jemx.geometry(2).sky_centre
    out_ = []
    for ra, dec in positions:
        x, y = frame.to_pixel(ra, dec)
        out_.append((float(y) - c, float(x) - c))
    return out_


def _sep_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(np.radians, (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _fit_positions(archive: Any, scw: Any, reported: tuple) -> list[tuple[float, float]]:
    """The reported sources first, then the other catalogued sources in the field (fitted
    jointly, not reported). Sources simulated but unknown to the catalogue are not used."""
    pos = [(float(ra), float(dec)) for _, ra, dec in reported]
    for src in archive.sky.near(scw.ra, scw.dec, FIELD_DEG):
        if is_catalogued(src) and all(_sep_deg(src.ra, src.dec, ra, dec) > 0.05 for ra, dec in pos):
            pos.append((float(src.ra), float(src.dec)))
    return pos


def jemx_sources(archive: Any, windows: list[Any], params: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(name, ra, dec) of the sources to extract: ``selected_catalog`` if given, else the
    catalogued sources in the windows' fields plus the requested position (named ``src_name``
    unless a catalogued source lies within 0.2° of it), as MMODA does."""
    selected = selected_sources(params)
    if selected is not None:
        return selected
    out: dict[str, tuple[str, float, float]] = {}
    for w in windows:
        for src in archive.sky.near(w.ra, w.dec, FIELD_DEG):
            if is_catalogued(src) and src.name not in out:
                out[src.name] = (src.name, float(src.ra), float(src.dec))
    ra, dec = float(params["RA"]), float(params["DEC"])
    if not any(_sep_deg(ra, dec, x[1], x[2]) < MATCH_RADIUS_DEG for x in out.values()):
        name = str(params.get("src_name") or "query")
        out.setdefault(name, (name, ra, dec))
    return list(out.values())


def _usable(win, frame, reported: tuple, positions: list[tuple[float, float]]):
    """Shifts to fit (positions that reach the detector) and, per reported source seen at
    ≥ MIN_RESPONSE, (name, column, vignetting, shift). Positions off the sky grid are dropped."""
    shifts, index = [], []
    for i, s in enumerate(_shifts(frame, positions)):
        if not (np.isfinite(s[0]) and np.isfinite(s[1])):
            continue
        resp = _response(win, s)
        if resp <= 0.0:
            continue
        shifts.append(s)
        if i < len(reported) and resp >= MIN_RESPONSE:
            index.append((reported[i][0], len(shifts) - 1, resp, s))
    return shifts, index


# -- per-window tasks (top-level, picklable) ---------------------------------------------------


@dataclass(frozen=True)
class Plan:
    archive: ArchiveRef
    unit: int
    e1: float
    e2: float
    ra: float = 0.0
    dec: float = 0.0
    mosaic: Any = None
    clean_threshold: float = 5.0
    sources: tuple = ()  # ((name, ra, dec), ...) reported by spectra and light curves
    origin: float = 0.0  # IJD of light-curve bin 0
    bin_d: float = 0.0  # light-curve bin width (d)
    cache: str = ""  # provenance-cache root of image_task ("" = none), see _isgri_window


def image_task(plan: Plan, scw: Any) -> dict[str, Any]:
    """Decode and clean one window (or read it from the provenance cache), then reproject."""
    archive = plan.archive.get()
    frame = jemx.window_frame(scw.ra, scw.dec, scw.pa, plan.unit)

    def compute():
        win = jemx_data.load_window(archive, scw, plan.unit)
        counts, _ = win.band(plan.e1, plan.e2)
        dec = coded_mask.decoder_for(win.efficiency, win.background, optics=jemx.optics())
        img = dec.decode(counts, win.exposure)
        img, cleaned = sources.clean_window(img, dec, counts, win.efficiency, win.background,
                                            win.exposure, _catalogue(archive, scw, frame),
                                            plan.clean_threshold, new_threshold=sources.NEW_SOURCE_SNR,
                                            fwhm_pix=PSF_FWHM_PIX)
        return img, {"exposure": win.exposure, "ontime": win.ontime}, [c.name for c in cleaned]

    key = decoded_key("jemx", scw, plan.e1, plan.e2, archive, clean_threshold=plan.clean_threshold,
                      data_version=jemx_data.GENERATOR_VERSION, unit=plan.unit) if plan.cache else ""
    img, extra, hit = cached_decoded(plan.cache, key, compute)
    return {"part": reproject_window(img, frame, plan.mosaic), "exposure": extra["exposure"],
            "ontime": extra["ontime"], "cached": hit}


def _fit(win, counts: np.ndarray, exposure: float, shifts) -> tuple[np.ndarray, np.ndarray, float]:
    return sources.pif_fit(counts, win.efficiency, win.background, exposure, shifts, jemx.optics())


def _response(win, shift) -> float:
    return jemx.geometry(win.unit).response(shift, win.efficiency)


def rate_task(plan: Plan, positions: tuple, scw: Any, refine: tuple = ()) -> tuple[np.ndarray, ...]:
    """PIF fit of sources at ``positions`` in one window: (Σ R/σ², Σ 1/σ², F, g) contributions.

    For sources with ``refine`` set, the window's position offset from the detector counts
    (:func:`..science.sources.position_offsets`) goes into F = C⁻¹ and g = C⁻¹·offset (arcmin,
    ξ = ΔRA·cos Dec, η = ΔDec), as ISGRI's ``rate_task`` does, so that
    :func:`.isgri.refine_position` moves the detection off the mosaic's resampled pixels.
    """
    archive = plan.archive.get()
    win = jemx_data.load_window(archive, scw, plan.unit)
    counts, _ = win.band(plan.e1, plan.e2)
    frame = jemx.window_frame(scw.ra, scw.dec, scw.pa, plan.unit)
    shifts = _shifts(frame, list(positions))
    keep = [i for i, s in enumerate(shifts) if _response(win, s) >= MIN_RESPONSE]
    n = len(positions)
    wr, w = np.zeros(n), np.zeros(n)
    fisher, grad = np.zeros((n, 2, 2)), np.zeros((n, 2))
    if not keep:
        return wr, w, fisher, grad
    fit_shifts = [shifts[i] for i in keep]
    rates, errs, _ = _fit(win, counts, win.exposure, fit_shifts)
    for j, i in enumerate(keep):
        if np.isfinite(rates[j]) and errs[j] > 0:
            wr[i], w[i] = rates[j] / errs[j] ** 2, 1.0 / errs[j] ** 2
    want = [j for j, i in enumerate(keep) if i < len(refine) and refine[i] and w[i] > 0]
    if want:
        r, e, off, cov = sources.position_offsets(counts, win.efficiency, win.background, win.exposure,
                                                  fit_shifts, jemx.optics())
        c = jemx.geometry(plan.unit).sky_centre
        for j in want:
            i = keep[j]
            if not (np.isfinite(r[j]) and r[j] > 5 * e[j] and np.all(np.isfinite(cov[j]))):
                continue
            ky, kz = fit_shifts[j]
            jac = _sky_jacobian(frame, kz + c, ky + c, float(positions[i][1]))  # arcmin per (x, y) pixel
            add_position_evidence(fisher, grad, i, jac, off[j], cov[j])
    return wr, w, fisher, grad


def spectrum_task(plan: Plan, scw: Any) -> dict[str, Any]:
    """Per reported source in the field: Σ R/σ², Σ 1/σ² in the 16 bins, and its exposure."""
    archive = plan.archive.get()
    win = jemx_data.load_window(archive, scw, plan.unit)
    frame = jemx.window_frame(scw.ra, scw.dec, scw.pa, plan.unit)
    shifts, index = _usable(win, frame, plan.sources, _fit_positions(archive, scw, plan.sources))
    out: dict[str, Any] = {}
    if not index:
        return out
    cube = win.spectral_cube()
    nb = cube.shape[0]
    acc = {name: {"wr": np.zeros(nb), "w": np.zeros(nb)} for name, *_ in index}
    for k in range(nb):
        rates, errs, _ = _fit(win, cube[k], win.exposure, shifts)
        for name, j, *_ in index:
            if np.isfinite(rates[j]) and errs[j] > 0:
                acc[name]["wr"][k], acc[name]["w"][k] = rates[j] / errs[j] ** 2, 1.0 / errs[j] ** 2
    for name, *_ in index:
        out[name] = {**acc[name], "exposure": win.exposure, "ontime": win.ontime,
                     "live": win.deadc * win.ontime, "n_scw": 1}
    return out


def lc_bins(scw: Any, origin: float, bin_d: float) -> tuple[int, int]:
    """Global bin indices [k0, k1) of the grid ``origin + k·bin_d`` that a window overlaps."""
    k0 = int(np.floor((scw.tstart - origin) / bin_d + 1e-9))
    k1 = int(np.ceil((scw.tstop - origin) / bin_d - 1e-9))
    return k0, max(k1, k0 + 1)


def lc_task(plan: Plan, scw: Any) -> dict[str, Any]:
    """Per reported source: rates in the bins of the global grid that this window overlaps."""
    archive = plan.archive.get()
    win = jemx_data.load_window(archive, scw, plan.unit)
    frame = jemx.window_frame(scw.ra, scw.dec, scw.pa, plan.unit)
    shifts, index = _usable(win, frame, plan.sources, _fit_positions(archive, scw, plan.sources))
    out: dict[str, Any] = {"sources": {}, "deadc": win.deadc}
    if not index:
        return out
    k0, k1 = lc_bins(scw, plan.origin, plan.bin_d)
    sub = plan.origin + plan.bin_d * np.arange(k0, k1 + 1)
    cubes = win.time_binned(plan.e1, plan.e2, sub)
    good_frac = win.ontime / win.telapse
    g = jemx.geometry(plan.unit)
    # BRATE: background counts in the detector area open to the source (PIF-weighted), per
    # second, divided by the vignetting: the background under the source on RATE's scale
    bsrc = {name: float((g.pif(s) * win.efficiency * win.background).sum()) for name, _, _, s in index}
    rows: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in index}
    for k in range(len(sub) - 1):
        overlap = (min(sub[k + 1], scw.tstop) - max(sub[k], scw.tstart)) * 86400.0
        if overlap <= 0:
            continue
        expo = overlap * good_frac * win.deadc
        rates, errs, beta = _fit(win, cubes[k], expo, shifts)
        for name, j, vign, _ in index:
            if not np.isfinite(rates[j]):
                continue
            rows[name].append({"i": k0 + k, "rate": float(rates[j]), "error": float(errs[j]),
                               "brate": float(beta * bsrc[name] / expo / vign),
                               "berror": float(np.sqrt(max(beta * bsrc[name], 1.0)) / expo / vign),
                               "fracexp": overlap * good_frac / (plan.bin_d * 86400.0),
                               "vignet": vign})
    out["sources"] = rows
    return out


# -- products -------------------------------------------------------------------------------


def _meta(params: dict[str, Any], windows: list[Any]) -> dict[str, Any]:
    return {"unit": int(params["jemx_num"]), "e1": params["E1_keV"], "e2": params["E2_keV"],
            "tstart": min(w.tstart for w in windows), "tstop": max(w.tstop for w in windows),
            "n_scw": len(windows), "n_scw_matched": getattr(windows, "matched", len(windows)), "osa_version": params["osa_version"],
            "instrument": f"JEM-X{int(params['jemx_num'])}"}


class _JemxProduct(Product):
    def check(self, params: dict[str, Any], rights: Rights) -> None:
        check_common(params, rights)

    def _plan(self, params, ctx, **kw) -> Plan:
        return Plan(ArchiveRef.of(ctx.archive), int(params["jemx_num"]), params["E1_keV"],
                    params["E2_keV"], params["RA"], params["DEC"], **kw)


class JemxImage(_JemxProduct):
    name = "jemx_image"
    description = "JEM-X sky mosaic, source catalogue and preview (OSA j_ima_iros + j_ima_mosaic)"

    def params(self) -> list:
        return [Float("detection_threshold", default=7.0, min=0.0, max=1000.0, unit="sigma",
                      help="Catalogue sources and new detections above this significance")]

    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        windows, messages = jemx_windows(params, ctx.archive, ctx.rights)
        meta = _meta(params, windows)
        unit = meta["unit"]
        frames = [jemx.window_frame(w.ra, w.dec, w.pa, unit) for w in windows]
        cra, cdec, note = field_centre(params, windows, 6.5)  # zero response at 6.6° off axis
        messages += [note] if note else []
        mframe = mosaic_frame(cra, cdec, frames, pixel_deg=jemx.PIXEL_DEG)
        plan = self._plan(params, ctx, mosaic=mframe, cache=cache_root(ctx))
        tot = {"exposure": 0.0, "ontime": 0.0}
        lookups = {"hits": 0, "misses": 0}  # provenance cache

        def fold(acc: MosaicAccumulator, res: dict[str, Any]) -> MosaicAccumulator:
            tot["exposure"] += res["exposure"]
            tot["ontime"] += res["ontime"]
            if res.get("cached") is not None:
                lookups["hits" if res["cached"] else "misses"] += 1
            return acc.add(res["part"])

        with progress_span(ctx, 0.02, 0.80):
            acc = ctx.map_reduce(partial(image_task, plan), windows, fold, MosaicAccumulator(mframe),
                                 label=f"JEM-X{unit} science windows")
        mos = acc.result()
        if (err := empty_mosaic(mos, len(windows), params)) is not None:
            raise err
        ctx.progress(0.82, "source search")
        dets = detect(mos, mframe, ctx.archive.sky, params["detection_threshold"], fwhm_pix=PSF_FWHM_PIX)
        if dets:
            # bright sources' rates at their positions refined from the detector counts: the
            # mosaic's PSF position, 0.6-1' off in off-axis windows, lost 8-14 % of the flux
            wr, w = rates_at_refined_positions(
                ctx, dets, windows, lambda pos, refine: partial(rate_task, plan, pos, refine=refine))
            for d, a, b in zip(dets, wr, w, strict=True):
                d["flux"] = float(a / b) if b > 0 else float("nan")
                d["flux_err"] = float(1.0 / np.sqrt(b)) if b > 0 else float("nan")
        meta.update(tot, threshold=params["detection_threshold"])
        table = common_out.catalog_table(dets)
        stem = ctx.outdir / f"jemx{unit}_image"
        mos_path = out.write_mosaic(stem.with_name(stem.name + "_mosaic.fits"), mos, mframe, meta)
        png = common_out.plot_mosaic(stem.with_name(stem.name + "_mosaic.png"), mos, mframe, table, meta)
        cat_path = out.write_catalog(stem.with_name(stem.name + "_catalog.fits"), table, meta)
        reg = common_out.write_regions(stem.with_name(stem.name + "_catalog.reg"), table)
        ctx.progress(1.0, "done")
        names = ", ".join(f"{d['name']} ({d['significance']:.1f}σ)" for d in dets) or "none"
        messages.append(f"{used_of(windows)}, {tot['exposure'] / 1e3:.1f} ks; detected: {names}")
        return ProductSet(
            products=[ProductFile("mosaic", "jemx_mosaic", fits=mos_path, png=png, meta=meta),
                      ProductFile("catalog", "jemx_catalog", fits=cat_path,
                                  meta={"region": reg.name, "n_sources": len(dets)})],
            messages=messages,
            meta={"scw_list": [w.scw_id for w in windows], "catalog": dets,
                  **({"cache": lookups} if plan.cache else {})},
        )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9+\-]+", "_", name).strip("_") or "source"


def _none_coded(params: dict[str, Any], sources: list[tuple[str, float, float]], unit: int) -> NoDataError:
    names = ", ".join(s[0] for s in sources)
    if params.get("selected_catalog"):
        return NoDataError(
            f"none of the {len(sources)} source(s) of selected_catalog ({names}) is inside the JEM-X{unit} "
            "field of view in the selected science windows; select windows pointed nearer to them "
            "(RA/DEC, radius, scw_list)", parameter="selected_catalog", value=[s[0] for s in sources])
    return NoDataError(
        f"no catalogue source and not the requested position (RA={params['RA']:.3f}, DEC={params['DEC']:.3f}) "
        f"is inside the JEM-X{unit} field of view in the selected science windows ({names or 'none in reach'}); "
        "JEM-X sees 13° across: use windows pointed within a few degrees of the source",
        parameter="RA", value=params["RA"])


class JemxSpectrum(_JemxProduct):
    name = "jemx_spectrum"
    description = ("JEM-X spectra (16 channels) with RMF and ARF: one triple per source of "
                   "selected_catalog, else per catalogue source in the field")

    def params(self) -> list:
        return catalog_params()

    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        from ..products.jemx_plots import plot_spectrum

        windows, messages = jemx_windows(params, ctx.archive, ctx.rights)
        meta = _meta(params, windows)
        unit = meta["unit"]
        srcs = jemx_sources(ctx.archive, windows, params)

        def fold(acc, res):
            for name, r in res.items():
                if name in acc:
                    acc[name] = {k: acc[name][k] + r[k] for k in r}
                else:
                    acc[name] = dict(r)
            return acc

        with progress_span(ctx, 0.02, 0.95):
            acc = ctx.map_reduce(partial(spectrum_task, self._plan(params, ctx, sources=tuple(srcs))),
                                 windows, fold, {}, label=f"JEM-X{unit} spectra")
        products = []
        for name, ra, dec in srcs:
            a = acc.get(name)
            if not a or a["exposure"] <= 0:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(a["w"] > 0, a["wr"] / a["w"], np.nan)
                err = np.where(a["w"] > 0, 1.0 / np.sqrt(a["w"]), np.nan)
            m = dict(meta, name=name, ra=ra, dec=dec, exposure=a["exposure"], ontime=a["ontime"],
                     deadc=a["live"] / max(a["ontime"], 1e-9), n_scw=a["n_scw"])
            stem = f"jemx{unit}_spectrum_{_safe(name)}"
            m.update(respfile=f"{stem}_rmf.fits", ancrfile=f"{stem}_arf.fits")  # XSPEC loads the triple
            pha = out.write_spectrum(ctx.outdir / f"{stem}.fits", rate, err, m)
            rmf = out.write_rmf(ctx.outdir / f"{stem}_rmf.fits", unit)
            arf = out.write_arf(ctx.outdir / f"{stem}_arf.fits", unit)
            png = plot_spectrum(ctx.outdir / f"{stem}.png", rate, err, m)
            for kind, path, p in (("jemx_spectrum", pha, png), ("jemx_arf", arf, None), ("jemx_rmf", rmf, None)):
                products.append(ProductFile(f"{kind}_{_safe(name)}", kind, fits=path, png=p,
                                            meta={"product": kind, "src_name": name}))
        if not products:
            raise _none_coded(params, srcs, unit)
        ctx.progress(1.0, "done")
        return ProductSet(products=products, messages=messages,
                          meta={"scw_list": [w.scw_id for w in windows],
                                "sources": [p.meta["src_name"] for p in products[::3]]})


#: at most this many light-curve bins per request (counted over the windows used)
MAX_LC_BINS = 200000


class JemxLightCurve(_JemxProduct):
    name = "jemx_lc"
    description = ("JEM-X light curves (PIF fit per time bin): one per source of selected_catalog, "
                   "else per catalogue source in the field")

    def params(self) -> list:
        return [*catalog_params(),
                Float("time_bin", default=1000.0, unit="s", min=1.0, max=100000.0, help="Time bin")]

    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        from ..products.jemx_plots import plot_lc

        windows, messages = jemx_windows(params, ctx.archive, ctx.rights)
        meta = _meta(params, windows)
        unit = meta["unit"]
        dt = params["time_bin"] / 86400.0
        t0 = meta["tstart"]
        n_bins = sum(k1 - k0 for k0, k1 in (lc_bins(w, t0, dt) for w in windows))
        if n_bins > MAX_LC_BINS:
            span = sum((w.tstop - w.tstart) * 86400.0 for w in windows)
            raise ParameterError(
                "time_bin", params["time_bin"], f"at least {span / MAX_LC_BINS:.0f} s for these {len(windows)} windows",
                f"time_bin={params['time_bin']:g} s gives {n_bins} bins over the {len(windows)} science windows "
                f"used ({span / 1e3:.0f} ks); at most {MAX_LC_BINS} are allowed")
        srcs = jemx_sources(ctx.archive, windows, params)
        plan = self._plan(params, ctx, sources=tuple(srcs), origin=t0, bin_d=dt)

        def fold(acc, res):
            for name, rows in res["sources"].items():
                acc["rows"].setdefault(name, []).extend(rows)
            acc["deadc"].append(res["deadc"])
            return acc

        with progress_span(ctx, 0.02, 0.95):
            acc = ctx.map_reduce(partial(lc_task, plan), windows, fold, {"rows": {}, "deadc": []},
                                 label=f"JEM-X{unit} light curves")
        products = []
        for name, ra, dec in srcs:
            rows = _merge_bins(acc["rows"].get(name, []))
            if not rows:
                continue
            idx = np.array([r["i"] for r in rows])
            lc = {"time": t0 + (idx + 0.5) * dt, "timedel": np.full(idx.size, dt)}
            for k in ("rate", "error", "brate", "berror", "fracexp", "vignet"):
                lc[k] = np.array([r[k] for r in rows])
            w = 1.0 / lc["error"] ** 2
            m = dict(meta, name=name, ra=ra, dec=dec, timedel=dt, deadc=float(np.mean(acc["deadc"])),
                     e1=params["E1_keV"], e2=params["E2_keV"], vignet=float(np.mean(lc["vignet"])),
                     detsig=float(np.sum(w * lc["rate"]) / np.sqrt(np.sum(w))))
            stem = f"jemx{unit}_lc_{_safe(name)}"
            path = out.write_lc(ctx.outdir / f"{stem}.fits", lc, m)
            png = plot_lc(ctx.outdir / f"{stem}.png", lc, m)
            products.append(ProductFile(f"jemx_lc_{_safe(name)}", "jemx_lc", fits=path, png=png,
                                        meta={"src_name": name, "time_bin": params["time_bin"], "time": "TIME",
                                              "rate": "RATE", "rate_err": "ERROR"}))
        if not products:
            raise _none_coded(params, srcs, unit)
        ctx.progress(1.0, "done")
        return ProductSet(products=products, messages=messages,
                          meta={"scw_list": [w.scw_id for w in windows]})


def _merge_bins(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """Combine bins covered by two windows (inverse-variance), sorted by time."""
    by: dict[int, list[dict[str, float]]] = {}
    for r in rows:
        by.setdefault(int(r["i"]), []).append(r)
    out_ = []
    for i in sorted(by):
        rs = by[i]
        if len(rs) == 1:
            out_.append(rs[0])
            continue
        w = np.array([1.0 / r["error"] ** 2 for r in rs])
        wb = np.array([1.0 / max(r["berror"], 1e-9) ** 2 for r in rs])
        out_.append({"i": i, "rate": float(np.sum(w * [r["rate"] for r in rs]) / w.sum()),
                     "vignet": float(np.mean([r["vignet"] for r in rs])),
                     "error": float(1.0 / np.sqrt(w.sum())),
                     "brate": float(np.sum(wb * [r["brate"] for r in rs]) / wb.sum()),
                     "berror": float(1.0 / np.sqrt(wb.sum())),
                     "fracexp": float(min(1.0, sum(r["fracexp"] for r in rs)))})
    return out_


class Jemx(Instrument):
    name = "jemx"
    instrument_query_name = "jemx_parameters"
    description = "INTEGRAL JEM-X coded-mask X-ray monitor (two units), 3–35 keV"

    def __init__(self) -> None:
        self.products = {"jemx_image": JemxImage(), "jemx_spectrum": JemxSpectrum(),
                         "jemx_lc": JemxLightCurve()}

    def params(self) -> list:
        return jemx_params()


__instruments__ = [Jemx]

