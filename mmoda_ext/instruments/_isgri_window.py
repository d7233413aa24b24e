"""Per-science-window ISGRI tasks, reusable by every ISGRI product.

Each task is a top-level function of a small picklable plan and one :class:`ScienceWindow`,
so it runs unchanged in-process or on a Dask worker. The worker re-opens the archive from
its root and sky-model files (``default_archive`` is cached per process), and decoding
operators are cached per (efficiency, background) maps, i.e. per revolution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..science import coded_mask, ibis, sources
from ..science.mosaic import MosaicPart, reproject_window
from ..science.tangent import TangentFrame

__all__ = ["ArchiveRef", "ImagePlan", "window_image", "image_task", "RatePlan", "rate_task"]


@dataclass(frozen=True)
class ArchiveRef:
    """How a worker finds the archive: its root and extra sky-model files."""

    root: str
    extra: str = ""

    @classmethod
    def of(cls, archive: Any) -> ArchiveRef:
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


@dataclass
class WindowResult:
    scw_id: str
    part: MosaicPart | None
    exposure: float
    ontime: float
    cleaned: list[str] = field(default_factory=list)
    seconds: float = 0.0


def window_image(archive: Any, scw: Any, e1: float, e2: float, *, clean: bool = True,
                 clean_threshold: float = 5.0, reuse: bool = True):
    """Decode (and clean) one window: ``(DecodedImage, frame, window, cleaned sources)``."""
    from ..archive.isgri_data import load_window

    win = load_window(archive, scw, bands=((e1, e2),))
    counts, _ = win.band(e1, e2)
    dec = coded_mask.decoder_for(win.efficiency, win.background, reuse=reuse)
    img = dec.decode(counts, win.exposure)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    cleaned = []
    if clean:
        cat = []
        from .isgri import is_catalogued

        for src in archive.sky.near(scw.ra, scw.dec, 21.0):
            if not is_catalogued(src):
                continue
            x, y = frame.to_pixel(src.ra, src.dec)
            if np.isfinite(x):
                cat.append((src.name, float(x), float(y)))
        img, cleaned = sources.clean_window(
            img, dec, counts, win.efficiency, win.background, win.exposure, cat, clean_threshold
        )
    return img, frame, win, cleaned


def image_task(plan: ImagePlan, scw: Any) -> WindowResult:
    """Load/generate → decode → clean → reproject onto the mosaic grid."""
    t0 = time.perf_counter()
    archive = plan.archive.get()
    img, frame, win, cleaned = window_image(
        archive, scw, plan.e1, plan.e2, clean=plan.clean, clean_threshold=plan.clean_threshold,
        reuse=plan.reuse,
    )
    part = reproject_window(img, frame, plan.mosaic)
    return WindowResult(scw.scw_id, part, win.exposure, float(scw.ontime),
                        [c.name for c in cleaned], time.perf_counter() - t0)


@dataclass(frozen=True)
class RatePlan:
    archive: ArchiveRef
    e1: float
    e2: float
    positions: tuple[tuple[float, float], ...]  # (ra, dec) of the detected sources
    min_coding: float = 0.05


def rate_task(plan: RatePlan, scw: Any) -> tuple[np.ndarray, np.ndarray]:
    """PIF fit of every detected source in one window: (Σ R/σ², Σ 1/σ²) contributions."""
    from ..archive.isgri_data import load_window

    archive = plan.archive.get()
    win = load_window(archive, scw, bands=((plan.e1, plan.e2),))
    counts, _ = win.band(plan.e1, plan.e2)
    frame = ibis.window_frame(scw.ra, scw.dec, scw.pa)
    n = len(plan.positions)
    wr, w = np.zeros(n), np.zeros(n)
    if n == 0:
        return wr, w
    ra = np.array([p[0] for p in plan.positions])
    dec = np.array([p[1] for p in plan.positions])
    x, y = frame.to_pixel(ra, dec)
    ky, kz = y - ibis.SKY_CENTRE[0], x - ibis.SKY_CENTRE[1]
    inside = np.isfinite(x) & (np.abs(ky) < ibis.SKY_CENTRE[0]) & (np.abs(kz) < ibis.SKY_CENTRE[1])
    idx = np.nonzero(inside)[0]
    if idx.size == 0:
        return wr, w
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
    return wr, w
