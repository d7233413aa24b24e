"""Job engine: what an identical request and an overlapping request cost, and durable submits.

Prints ratios measured in one run (``python benchmarks/bench_jobs.py``); no timed assertions.

* identical request: the same job answers from its stored products (no recomputation);
* overlapping request: per-window results come from the provenance cache (``ctx.cache``);
* submit: jobs accepted per second, each committed to SQLite (WAL, synchronous=FULL) first.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from mmoda_ext.access.rights import Rights
from mmoda_ext.instruments.base import Instrument, Product, ProductSet
from mmoda_ext.instruments.params import Integer


def window_image(args: tuple) -> np.ndarray:
    """A stand-in for one science window's work: a seeded 256x256 image smoothed by FFT."""
    index, cache = args

    def compute() -> dict:
        rng = np.random.default_rng(index)
        img = rng.poisson(5.0, (256, 256)).astype(float)
        kernel = np.fft.rfft2(np.outer(np.hanning(256), np.hanning(256)))
        for _ in range(8):
            img = np.fft.irfft2(np.fft.rfft2(img) * kernel, s=img.shape) / kernel[0, 0].real
        return {"image": img}

    if cache is None:
        return compute()["image"]
    key = cache.key(instrument="bench", scw=f"{index:012d}.001", step="image", analysis_version="1")
    return cache.get_or_compute(key, compute)["image"]


def _add(acc, img):
    return img if acc is None else acc + img


class Mosaic(Product):
    name = "mosaic"
    use_cache = True

    def params(self):
        return [Integer("first", default=0), Integer("n", default=10, min=1)]

    def run(self, params, ctx):
        cache = ctx.cache if self.use_cache else None
        items = [(i, cache) for i in range(params["first"], params["first"] + params["n"])]
        total = ctx.map_reduce(window_image, items, _add, None, "window")
        return ProductSet(meta={"sum": float(total.sum())})


class Bench(Instrument):
    name = "bench"

    def __init__(self, use_cache: bool = True) -> None:
        prod = Mosaic()
        prod.use_cache = use_cache
        self.products = {"mosaic": prod}


def _timed(manager, params, rights) -> tuple[float, str]:
    t = time.perf_counter()
    job = manager.submit("bench", "mosaic", params, rights)
    job = manager.wait(job.job_id, 600)
    return time.perf_counter() - t, job.job_id


def main() -> dict:
    from mmoda_ext.jobs.manager import JobManager

    rights = Rights(user="bench", tier="local", requests_per_hour=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        kw = dict(compute="serial", progress_interval=0.0)
        m = JobManager(root=str(Path(tmp) / "a"), instruments={"bench": Bench()}, **kw)
        m.start_sync()
        t_first, _ = _timed(m, {"first": 0, "n": 40}, rights)
        t_again, _ = _timed(m, {"first": 0, "n": 40}, rights)
        t_overlap, _ = _timed(m, {"first": 20, "n": 40}, rights)  # 20 of 40 windows seen
        m.close()

        cold = JobManager(root=str(Path(tmp) / "b"), instruments={"bench": Bench(use_cache=False)}, **kw)
        cold.start_sync()
        t_nocache, _ = _timed(cold, {"first": 20, "n": 40}, rights)
        cold.close()

        store_mgr = JobManager(root=str(Path(tmp) / "c"), instruments={"bench": Bench()}, **kw)
        n = 200
        t = time.perf_counter()
        for i in range(n):
            store_mgr.submit("bench", "mosaic", {"first": i, "n": 1}, rights)  # not started: store only
        t_submit = (time.perf_counter() - t) / n
        store_mgr.close()

    out = {
        "first_request_s": t_first,
        "identical_request_s": t_again,
        "identical_speedup": t_first / t_again,
        "overlap_50pct_s": t_overlap,
        "same_without_cache_s": t_nocache,
        "overlap_speedup": t_nocache / t_overlap,
        "durable_submits_per_s": 1.0 / t_submit,
    }
    print("job engine (serial compute, 40 windows of 256x256 FFT work each):")
    print(f"  first request             {t_first:8.3f} s")
    print(f"  identical request         {t_again:8.3f} s   -> {out['identical_speedup']:.0f}x faster (stored products)")
    print(f"  50% overlapping request   {t_overlap:8.3f} s   vs {t_nocache:.3f} s without cache "
          f"-> {out['overlap_speedup']:.2f}x")
    print(f"  durable submits           {out['durable_submits_per_s']:8.0f} /s (validate + hash + SQLite commit)")
    return out


if __name__ == "__main__":
    main()
