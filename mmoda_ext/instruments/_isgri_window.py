"""Per-science-window ISGRI tasks, reusable by every ISGRI product.

Each task is a top-level function of a small picklable plan and one :class:`ScienceWindow`,
so it runs unchanged in-process or on a Dask worker. The worker re-opens the archive from
its root and sky-model files (``default_archive`` is cached per process), and decoding
operators are cached per (efficiency, background) maps, i.e. per revolution.

Provenance cache
----------------
With a cache root in the plan (``ImagePlan.cache``, from ``ctx.cache``), the decoded and
cleaned sky image of a window (intensity, variance, exposure maps as float32, its live
exposure and the names of the cleaned sources) is stored by
:class:`..jobs.cache.ProvenanceCache` under :func:`decoded_key`, the SHA-256 of::

    {"instrument": "isgri", "scw": <scw_id>, "scw_seed": <seed>, "pointing": [ra, dec, pa],
     "step": "decoded-cleaned", "band": [E1, E2], "scale": "raw",
     "clean": true, "clean_threshold": 5.0, "sky": <archive.sky.digest>,
     "data_version": <isgri_data.DATA_VERSION>, "analysis_version": ANALYSIS_VERSION}

``scale: raw``: the images are on the OSA10.2 rate scale; the requested ``osa_version`` only
multiplies the finished mosaic, so every OSA version shares the entry. ``sky`` is the digest
of the sky-model content (built-in plus extra files): it sets both the simulated counts and
the cleaning catalogue, so an extra sky file gives other keys. Reprojection onto the request's
mosaic frame stays outside the cache (it depends on the request). Without a cache (``""``),
nothing is read or written and the images keep their float64 precision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..science import coded_mask, ibis, sources
from ..science.coded_mask import DecodedImage
from ..science.mosaic import MosaicPart, reproject_window
from ..science.tangent import TangentFrame
from ._catalog import is_catalogued

__all__ = ["ArchiveRef", "ImagePlan", "window_image", "image_task", "RatePlan", "rate_task",
           "decoded_key", "cached_decoded", "cache_root", "ANALYSIS_VERSION", "DECODED_STEP"]

#: bump when decoding or cleaning changes what a window's cached image holds
ANALYSIS_VERSION = "2"  # 2: new (uncatalogued) sources cleaned in every window
DECODED_STEP = "decoded-cleaned"


@dataclass(frozen=True)
class ArchiveRef:
    """How a worker finds the archive: its root and extra sky-model files."""

    root: str
    extra: str = ""

    @classmethod
    def of(cls, archive: Any) -> ArchiveRef:
        worker_ref = getattr(archive, "worker_ref", None)  # RemoteArchive: picklable url + token
        if worker_ref is not None:
            return worker_ref()
        return cls(str(archive.root), str(getattr(archive, "extra_sources", "") or ""))

    def get(self) -> Any:
        from ..archive import default_archive

        return default_archive(self.root, extra_sources=self.extra or None)


@dataclass(frozen=True)
class ImagePlan:
    archive: ArchiveRef
    e1: float
    e2: float
    mosaic: TangentFrame
    clean: bool = True
    clean_threshold: float = 5.0
    reuse: bool = True
    #: root folder of the provenance cache ("" = no cache); a path pickles to any worker
    cache: str = ""


def cache_root(ctx: Any) -> str:
    """The picklable cache reference of a compute context: its root folder, or ""."""
    cache = getattr(ctx, "cache", None)
    return str(cache.root) if cache is not None else ""


@dataclass
class WindowResult:
    scw_id: str
    part: MosaicPart | None
    exposure: float
    ontime: float
    cleaned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: True read from the provenance cache, False computed and stored, None no cache
    cached: bool | None = None


def decoded_key(instrument: str, scw: Any, e1: float, e2: float, archive: Any, *,
                clean: bool = True, clean_threshold: float = 5.0, data_version: Any = None,
                **extra: Any) -> str:
    """Provenance key of a window's decoded+cleaned image (see the module docstring)."""
    from ..archive.isgri_data import sky_digest
    from ..jobs.cache import cache_key

    if data_version is None:
        from ..archive.isgri_data import DATA_VERSION as data_version
    return cache_key(
        instrument=instrument, scw=str(scw.scw_id), scw_seed=int(getattr(scw, "seed", 0)),
        pointing=[float(scw.ra), float(scw.dec), float(scw.pa)], step=DECODED_STEP,
        band=[float(e1), float(e2)], scale="raw", clean=bool(clean),
        clean_threshold=float(clean_threshold) if clean else None, sky=sky_digest(archive.sky),
        data_version=data_version, analysis_version=ANALYSIS_VERSION, **extra,
    )


def cached_decoded(cache: str, key: str, compute) -> tuple[DecodedImage, dict[str, Any], bool | None]:
    """``compute() -> (DecodedImage, scalars, names)`` through the cache at ``cache`` ("" = none).

    Returns the image, ``scalars`` (plus ``"cleaned"``: the names) and whether it was a hit.
    On a miss the stored float32 image is what is returned, so a result never depends on
    whether the cache already held it.
    """
    if not cache:
        img, scalars, names = compute()
        return img, {**scalars, "cleaned": list(names)}, None
    from ..jobs.cache import ProvenanceCache

    def arrays() -> dict[str, Any]:
        img, scalars, names = compute()
        return {"intensity": np.asarray(img.intensity, np.float32),
                "variance": np.asarray(img.variance, np.float32),
                "exposure": np.asarray(img.exposure, np.float32),
                "cleaned": np.array(list(names), dtype=str),
                **{f"s_{k}": np.float64(v) for k, v in scalars.items()}}

    got, hit = ProvenanceCache(cache).fetch(key, arrays)
    img = DecodedImage(got["intensity"], got["variance"], got["exposure"])
    extra = {k[2:]: float(v) for k, v in got.items() if k.startswith("s_")}
    extra["cleaned"] = [str(x) for x in got["cleaned"]]
    return img, extra, hit


def window_image(archive: Any, scw: Any, e1: float, e2: float, *, clean: bool = True,
                 clean_threshold: float = 5.0, reuse: bool = True):
    """Decode (and clean) one window: ``(DecodedImage, frame, window, cleaned sources)``."""
    from ..archive.isgri_data import decoder_store, load_window

    win = load_window(archive, scw, bands=((e1, e2),))
    counts, _ = win.band(e1, e2)
    dec = coded_mask.decoder_for(win.efficiency, win.background, reuse=reuse,
                                 store=decoder_store(archive) if reuse else None)
    img = dec.decode(counts, win.exposure)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    cleaned = []
    if clean:
        near = [src for src in archive.sky.near(scw.ra, scw.dec, 21.0) if is_catalogued(src)]
        xs, ys = frame.to_pixel([s.ra for s in near], [s.dec for s in near])  # one call: ~60 sources
        cat = [(src.name, float(x), float(y)) for src, x, y in zip(near, xs, ys, strict=True) if np.isfinite(x)]
        img, cleaned = sources.clean_window(
            img, dec, counts, win.efficiency, win.background, win.exposure, cat, clean_threshold,
            new_threshold=sources.NEW_SOURCE_SNR,
        )
    return img, frame, win, cleaned


def image_task(plan: ImagePlan, scw: Any) -> WindowResult:
    """Load/generate → decode → clean (or read from the cache) → reproject onto the mosaic grid."""
    t0 = time.perf_counter()
    archive = plan.archive.get()

    def compute():
        img, _, win, cleaned = window_image(
            archive, scw, plan.e1, plan.e2, clean=plan.clean, clean_threshold=plan.clean_threshold,
            reuse=plan.reuse,
        )
        return img, {"live_exposure": win.exposure}, [c.name for c in cleaned]

    key = decoded_key("isgri", scw, plan.e1, plan.e2, archive, clean=plan.clean,
                      clean_threshold=plan.clean_threshold) if plan.cache else ""
    img, extra, hit = cached_decoded(plan.cache, key, compute)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    part = reproject_window(img, frame, plan.mosaic)
    return WindowResult(scw.scw_id, part, extra["live_exposure"], float(scw.ontime),
                        extra["cleaned"], time.perf_counter() - t0, hit)


def field_centre(params: dict[str, Any], windows: list[Any], field_deg: float) -> tuple[float, float, str]:
    """(RA, Dec) of the mosaic centre and a message when it is not the requested RA/DEC.

    The windows define the field: when the requested position lies more than ``field_deg``
    from every window's pointing (e.g. ``scw_list`` alone, with the default RA/DEC), the mosaic
    is centred on the windows' mean pointing instead of an empty sky.
    """
    from ..science.mosaic import mean_pointing

    ra, dec = float(params["RA"]), float(params["DEC"])
    r1, d1 = np.radians(ra), np.radians(dec)
    wr, wd = np.radians([w.ra for w in windows]), np.radians([w.dec for w in windows])
    cos = np.sin(d1) * np.sin(wd) + np.cos(d1) * np.cos(wd) * np.cos(wr - r1)
    if np.degrees(np.arccos(np.clip(cos.max(), -1.0, 1.0))) <= field_deg:
        return ra, dec, ""
    cra, cdec = mean_pointing([w.ra for w in windows], [w.dec for w in windows])
    return cra, cdec, (f"RA={ra:.3f}, DEC={dec:.3f} is outside the field of every selected window: "
                       f"the mosaic is centred on their mean pointing RA={cra:.3f}, DEC={cdec:.3f}")


def empty_mosaic(image: DecodedImage, n_windows: int, params: dict[str, Any]):
    """The error for a mosaic without one exposed pixel (never a product called a success)."""
    from ..errors import NoDataError

    if np.isfinite(image.significance).any() and np.nanmax(image.exposure) > 0:
        return None
    return NoDataError(f"the {n_windows} selected science windows give no exposed sky pixel in the "
                       "mosaic; check scw_list or RA/DEC", parameter="scw_list" if params.get("scw_list") else "RA",
                       value=params.get("scw_list") or params.get("RA"))


@dataclass(frozen=True)
class RatePlan:
    archive: ArchiveRef
    e1: float
    e2: float
    positions: tuple[tuple[float, float], ...]  # (ra, dec) of the detected sources
    min_coding: float = 0.05
    #: per source: refine its position from the detector counts (bright sources, see rate_task)
    refine: tuple[bool, ...] = ()


def rate_task(plan: RatePlan, scw: Any) -> tuple[np.ndarray, ...]:
    """PIF fit of every detected source in one window: (Σ R/σ², Σ 1/σ², F, g) contributions.

    For sources with ``plan.refine`` set, the window's position offset (:func:`..science.sources.
    position_offsets`) is turned into arcmin on the sky (ξ = ΔRA·cos Dec, η = ΔDec) with its
    covariance C: F = C⁻¹ and g = C⁻¹·offset, so that ``solve(ΣF, Σg)`` is the joint
    inverse-variance offset of all windows — a position fit that never goes through the
    mosaic's resampled pixels.
    """
    from ..archive.isgri_data import load_window

    archive = plan.archive.get()
    win = load_window(archive, scw, bands=((plan.e1, plan.e2),))
    counts, _ = win.band(plan.e1, plan.e2)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    n = len(plan.positions)
    wr, w = np.zeros(n), np.zeros(n)
    fisher, grad = np.zeros((n, 2, 2)), np.zeros((n, 2))
    if n == 0:
        return wr, w, fisher, grad
    ra = np.array([p[0] for p in plan.positions])
    dec = np.array([p[1] for p in plan.positions])
    x, y = frame.to_pixel(ra, dec)
    ky, kz = y - ibis.SKY_CENTRE[0], x - ibis.SKY_CENTRE[1]
    inside = np.isfinite(x) & (np.abs(ky) < ibis.SKY_CENTRE[0]) & (np.abs(kz) < ibis.SKY_CENTRE[1])
    idx = np.nonzero(inside)[0]
    if idx.size == 0:
        return wr, w, fisher, grad
    shifts = [(float(ky[i]), float(kz[i])) for i in idx]
    rates, errs, _ = sources.pif_fit(counts, win.efficiency, win.background, win.exposure, shifts)
    # only windows where the source is coded well enough to constrain its rate
    full = sources.source_model(win.efficiency, win.exposure, 0.0, 0.0).sum()
    for j, i in enumerate(idx):
        if not np.isfinite(rates[j]) or errs[j] <= 0:
            continue
        coded = sources.source_model(win.efficiency, win.exposure, *shifts[j]).sum() / full
        if coded < plan.min_coding:
            continue
        wr[i] += rates[j] / errs[j] ** 2
        w[i] += 1.0 / errs[j] ** 2
    want = [j for j, i in enumerate(idx) if i < len(plan.refine) and plan.refine[i] and w[i] > 0]
    if want:
        r, e, off, cov = sources.position_offsets(counts, win.efficiency, win.background, win.exposure, shifts)
        for j in want:
            i = idx[j]
            if not (np.isfinite(r[j]) and r[j] > 5 * e[j] and np.all(np.isfinite(cov[j]))):
                continue
            jac = _sky_jacobian(frame, float(x[i]), float(y[i]), float(dec[i]))  # arcmin per (x, y) pixel
            add_position_evidence(fisher, grad, i, jac, off[j], cov[j])
    return wr, w, fisher, grad


def add_position_evidence(fisher: np.ndarray, grad: np.ndarray, i: int, jac: np.ndarray,
                          off: np.ndarray, cov: np.ndarray) -> None:
    """Add one window's fitted (δky, δkz) shift of source ``i`` and its covariance, turned into
    sky arcmin by ``jac``, to the sums of the windows' Fisher matrices and weighted shifts."""
    c = jac @ cov[::-1, ::-1] @ jac.T
    try:
        f = np.linalg.inv(c)
    except np.linalg.LinAlgError:
        return
    fisher[i] += f
    grad[i] += f @ (jac @ off[::-1])  # (δkz, δky) = (δx, δy)


def _sky_jacobian(frame: TangentFrame, x: float, y: float, dec: float) -> np.ndarray:
    """d(ξ, η)/d(x, y) in arcmin per window-image pixel at (x, y); ξ = ΔRA·cos Dec."""
    ra0, dec0 = (float(v) for v in frame.to_sky(x, y))
    out = np.zeros((2, 2))
    for k, (dx, dy) in enumerate(((1.0, 0.0), (0.0, 1.0))):
        ra1, dec1 = (float(v) for v in frame.to_sky(x + dx, y + dy))
        dra = (ra1 - ra0 + 180.0) % 360.0 - 180.0
        out[:, k] = [dra * np.cos(np.radians(dec)) * 60.0, (dec1 - dec0) * 60.0]
    return out
