"""INTEGRAL IBIS/ISGRI: the ``isgri`` instrument and its ``isgri_image`` mosaic product.

``isgri_image`` runs one Dask task per science window (load or generate → decode → clean →
reproject, :mod:`._isgri_window`) folded into an inverse-variance mosaic as results arrive
(bounded memory), then searches the mosaic, fits positions with a PSF, refines bright sources'
positions from the windows' detector counts and fits rates with per-window PIF fits at the
refined positions (:func:`rates_at_refined_positions`). Rates are on the OSA10.2 scale in the
data and multiplied by :func:`..science.ibis.osa_scale` for OSA11.x.

The reference catalogue (cleaning, names) is the sky model minus sources whose ``kind`` is
``uncatalogued``: those are simulated in the data but unknown to the analysis, so that an
operator or a test can inject a source that must be found as ``NEW_1``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from ..access.rights import Rights
from ..science import ibis, sources
from ..science.coded_mask import DecodedImage
from ..science.mosaic import MosaicAccumulator, mosaic_frame
from ._catalog import MATCH_RADIUS_DEG, is_catalogued
from ._integral_select import check_common, select_windows, used_of, windows_label
from ._isgri_spectral import IsgriLightCurve, IsgriSpectralFit, IsgriSpectrum
from ._isgri_window import (
    ArchiveRef,
    ImagePlan,
    RatePlan,
    cache_root,
    empty_mosaic,
    field_centre,
    image_task,
    rate_task,
)
from .base import Instrument, Product, ProductFile, ProductSet, progress_span
from .params import Float, Integer, ScwList, Select

__all__ = ["Isgri", "IsgriImage", "isgri_params", "detect"]

E_MIN_KEV, E_MAX_KEV = 15.0, 800.0
#: a request position farther than this from every window's axis is outside the field (deg;
#: the zero-response half-width is 14.6°)
FIELD_HALF_DEG = 14.0


def isgri_params() -> list:
    """Parameters shared by every ISGRI product."""
    return [
        Float("E1_keV", default=20.0, unit="keV", min=E_MIN_KEV, max=E_MAX_KEV, help="Lower energy bound"),
        Float("E2_keV", default=40.0, unit="keV", min=E_MIN_KEV, max=E_MAX_KEV, help="Upper energy bound"),
        Float("radius", default=15.0, unit="deg", min=0.0, max=180.0,
              help="Science windows whose pointing axis is within this radius of RA/DEC"),
        Integer("max_pointings", default=50, min=1, max=100000,
                help="At most this many science windows (a reproducible random subset above it)"),
        ScwList("scw_list", default=None, help="Explicit science windows (overrides the search)"),
        Select("osa_version", default="OSA11.2", choices=ibis.OSA_VERSIONS,
               help="Offline Science Analysis version (sets the count-rate scale)"),
        Select("integral_data_rights", default="public", choices=("public", "all-private"),
               help="Include private science windows (needs the private-data right)"),
    ]


class IsgriImage(Product):
    name = "isgri_image"
    description = "ISGRI sky mosaic, source catalogue and preview (OSA ii_skyimage + mosaic)"

    def params(self) -> list:
        return [
            Float("detection_threshold", default=7.0, min=0.0, max=1000.0, unit="sigma",
                  help="Catalogue sources and new detections above this significance"),
        ]

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        check_common(params, rights)

    # -- the computation ---------------------------------------------------------------------
    def run(self, params: dict[str, Any], ctx: Any) -> ProductSet:
        from ..products import isgri as out

        archive = ctx.archive
        ctx.progress(0.0, "selecting science windows")
        windows, messages = select_windows(params, archive, ctx.rights)
        e1, e2 = params["E1_keV"], params["E2_keV"]
        scale = ibis.osa_scale(params["osa_version"], e1, e2)
        frames = [ibis.window_frame(w.ra, w.dec, w.pa) for w in windows]
        cra, cdec, note = field_centre(params, windows, FIELD_HALF_DEG)  # the windows define the field
        messages += [note] if note else []
        mframe = mosaic_frame(cra, cdec, frames)
        ref = ArchiveRef.of(archive)
        n = len(windows)

        with progress_span(ctx, 0.02, 0.80):
            plan = ImagePlan(ref, e1, e2, mframe, cache=cache_root(ctx))
            sums = ctx.map_reduce(partial(image_task, plan), windows,
                                  _ImageSums.add, _ImageSums(mframe), label=windows_label(archive, windows),
                                  merge=_ImageSums.merge, start=partial(_ImageSums, mframe))
        summary = {"exposure": sums.exposure, "ontime": sums.ontime, "seconds": sums.seconds}
        if plan.cache:  # per-window decoded images read from / written to the provenance cache
            summary["cache"] = {"hits": sums.hits, "misses": sums.misses}
        mos = sums.mosaic.result()
        if (err := empty_mosaic(mos, n, params)) is not None:
            raise err
        mos = DecodedImage(mos.intensity * scale, mos.variance * scale**2, mos.exposure)
        ctx.progress(0.82, "source search")
        dets = detect(mos, mframe, archive.sky, params["detection_threshold"])
        if dets:
            wr, w = rates_at_refined_positions(
                ctx, dets, windows, lambda pos, refine: partial(rate_task, RatePlan(ref, e1, e2, pos, refine=refine)))
            for d, a, b in zip(dets, wr, w, strict=True):
                d["flux"] = float(a / b * scale) if b > 0 else float("nan")
                d["flux_err"] = float(scale / np.sqrt(b)) if b > 0 else float("nan")
        tstart = min(x.tstart for x in windows)
        tstop = max(x.tstop for x in windows)
        meta = {"e1": e1, "e2": e2, "tstart": tstart, "tstop": tstop, "n_scw": n, "n_scw_matched": windows.matched,
                "osa_version": params["osa_version"], "ontime": summary["ontime"],
                "exposure": summary["exposure"], "threshold": params["detection_threshold"]}
        ctx.progress(0.98, "writing products")
        table = out.catalog_table(dets)
        mos_path = out.write_mosaic(ctx.outdir / "isgri_image_mosaic.fits", mos, mframe, meta)
        png = out.plot_mosaic(ctx.outdir / "isgri_image_mosaic.png", mos, mframe, table, meta)
        cat_path = out.write_catalog(ctx.outdir / "isgri_image_catalog.fits", table, meta)
        reg = out.write_regions(ctx.outdir / "isgri_image_catalog.reg", table)
        ctx.progress(1.0, "done")
        names = ", ".join(f"{d['name']} ({d['significance']:.1f}σ)" for d in dets) or "none"
        messages.append(f"{used_of(windows)}, {summary['exposure'] / 1e3:.1f} ks; detected: {names}")
        return ProductSet(
            products=[
                ProductFile("mosaic", "isgri_mosaic", fits=mos_path, png=png, meta=meta),
                ProductFile("catalog", "isgri_catalog", fits=cat_path,
                            meta={"region": reg.name, "n_sources": len(dets)}),
            ],
            messages=messages,
            meta={"scw_list": [w.scw_id for w in windows], "compute_seconds": summary["seconds"],
                  "catalog": [{k: v for k, v in d.items()} for d in dets],
                  **({"cache": summary["cache"]} if "cache" in summary else {})},
        )


class _ImageSums:
    """Mosaic sums plus exposure bookkeeping; folded on workers, merged on the client."""

    def __init__(self, frame) -> None:
        self.mosaic = MosaicAccumulator(frame)
        self.exposure = self.ontime = self.seconds = 0.0
        self.hits = self.misses = 0  # provenance-cache lookups of the windows

    def add(self, res) -> _ImageSums:
        self.exposure += res.exposure
        self.ontime += res.ontime
        self.seconds += res.seconds
        self.hits += res.cached is True
        self.misses += res.cached is False
        self.mosaic.add(res.part)
        return self

    def merge(self, other: _ImageSums) -> _ImageSums:
        self.exposure += other.exposure
        self.ontime += other.ontime
        self.seconds += other.seconds
        self.hits += other.hits
        self.misses += other.misses
        self.mosaic.merge(other.mosaic)
        return self


def _sum_pair(acc, res):
    """Element-wise sum of two tuples of arrays (per-window contributions)."""
    return tuple(a + b for a, b in zip(acc, res, strict=True))


#: mosaic significance from which a source's position is refined from the detector counts
REFINE_SNR = 15.0
#: a refinement larger than this (arcmin) is not trusted (the PSF fit position is kept)
MAX_REFINE_ARCMIN = 3.0


def refine_position(det: dict[str, Any], fisher: np.ndarray, grad: np.ndarray) -> float:
    """Move a detection by the joint offset of its windows' PIF position fits (:func:`.rate_task`).

    The mosaic's PSF fit is biased for bright sources by the nearest-neighbour resampling of
    every window (0.4–0.8′); the detector-count fit is not. The 90 % error radius then follows
    the fit's covariance, with the 0.2′ floor of the published PSLA. Returns the move (arcmin,
    0 if none).
    """
    if not np.all(np.isfinite(fisher)) or np.linalg.det(fisher) <= 0:
        return 0.0
    cov = np.linalg.inv(fisher)
    off = cov @ grad  # (ξ, η) arcmin
    if not np.all(np.isfinite(off)) or np.hypot(*off) > MAX_REFINE_ARCMIN:
        return 0.0
    det["dec"] = float(det["dec"] + off[1] / 60.0)
    det["ra"] = float((det["ra"] + off[0] / 60.0 / np.cos(np.radians(det["dec"]))) % 360.0)
    sigma = float(np.sqrt(max(np.linalg.eigvalsh(cov).max(), 0.0)))  # arcmin, worst axis
    det["err_rad"] = float(np.hypot(2.15 * sigma, 0.2) / 60.0)  # 90 % of a 2-D Gaussian: 2.15σ
    det["position"] = "pif"
    return float(np.hypot(*off))


#: PIF-fit passes of an image catalogue: position refinements (bright sources), then the rates
REFINE_PASSES = 4
#: the refinement stops once no source moves more than this (arcmin)
REFINE_CONVERGED_ARCMIN = 0.1


def rates_at_refined_positions(ctx: Any, dets: list[dict[str, Any]], windows: Any,
                               task_for: Callable[[tuple, tuple], Callable]) -> tuple[np.ndarray, np.ndarray]:
    """Σ R/σ², Σ 1/σ² of the detections' per-window PIF fits at their refined positions.

    ``task_for(positions, refine)`` gives the per-window task returning (Σ R/σ², Σ 1/σ², F, g).
    Bright detections (:data:`REFINE_SNR`) are moved by :func:`refine_position` (linearised, so
    iterated until they move < 0.1′) and the rates are those of the final positions: a PIF fit at
    the mosaic's PSF position, 1-2′ off in off-axis windows (resampling), loses 3-14 % of the flux.
    """
    refine = tuple(d["significance"] >= REFINE_SNR for d in dets)
    k = len(dets)
    zero = (np.zeros(k), np.zeros(k), np.zeros((k, 2, 2)), np.zeros((k, 2)))
    wr, w = zero[0], zero[1]
    for it in range(REFINE_PASSES):
        last = it == REFINE_PASSES - 1 or not any(refine)
        with progress_span(ctx, 0.83 + 0.14 * it / REFINE_PASSES, 0.83 + 0.14 * (it + 1) / REFINE_PASSES):
            pos = tuple((d["ra"], d["dec"]) for d in dets)
            wr, w, fisher, grad = ctx.map_reduce(
                task_for(pos, () if last else refine), windows, _sum_pair, zero,
                label="PIF fits" if it == 0 else "PIF fits at the refined positions")
        if last:
            break
        moved = [refine_position(d, f, g) for d, f, g in zip(dets, fisher, grad, strict=True)]
        if max(moved) < REFINE_CONVERGED_ARCMIN:  # the rates of this pass are those at the final positions
            break
    return wr, w


def detect(mos: DecodedImage, frame, sky: Any, threshold: float,
           fwhm_pix: float = sources.ISGRI_PSF_FWHM_PIX) -> list[dict[str, Any]]:
    """Peaks above ``threshold`` σ, PSF-fitted, named from the sky model (else NEW_k)."""
    sig = mos.significance
    dets: list[dict[str, Any]] = []
    new = 0
    for row, col in sources.find_peaks(sig, threshold):
        fit = sources.psf_fit(mos.intensity, mos.variance, row, col, fwhm_pix=fwhm_pix)
        if any(np.hypot(fit.x - d["x"], fit.y - d["y"]) < fwhm_pix for d in dets):
            continue  # a secondary peak whose fit converged on a source already reported: never twice
        ra, dec = frame.to_sky(fit.x, fit.y)
        ra, dec = float(ra), float(dec)
        snr = float(sig[row, col])
        near = sky.near(ra, dec, MATCH_RADIUS_DEG)
        taken = {d["name"] for d in dets}
        match = next((s for s in near if s.name not in taken and is_catalogued(s)), None)
        if match is not None:
            name, is_new = match.name, False
        else:
            new += 1
            name, is_new = f"NEW_{new}", True
        dets.append({"name": name, "ra": ra, "dec": dec, "significance": snr, "new": is_new,
                     "err_rad": sources.err_rad_deg(snr), "x": fit.x, "y": fit.y,
                     "flux": float("nan"), "flux_err": float("nan")})
    return dets


class Isgri(Instrument):
    name = "isgri"
    description = "INTEGRAL IBIS/ISGRI coded-mask imager, 15 keV – 1 MeV"
    instrument_query_name = "isgri_parameters"

    def __init__(self) -> None:
        self.products = {"isgri_image": IsgriImage(), "isgri_spectrum": IsgriSpectrum(),
                         "isgri_lc": IsgriLightCurve(), "spectral_fit": IsgriSpectralFit()}

    def params(self) -> list:
        return isgri_params()


__instruments__ = [Isgri]
