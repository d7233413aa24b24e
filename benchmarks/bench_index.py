"""Science-window index: build, disk cache, and cone search against a brute-force astropy search.

Prints ratios measured in one run (``python benchmarks/bench_index.py``); no timed assertions.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time


def _best(func, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> dict:
    from mmoda_ext.archive.index import ScwIndex

    t_build = _best(lambda: ScwIndex.build(), repeat=2)
    index = ScwIndex.build()
    with tempfile.TemporaryDirectory() as tmp:
        path = index.save(ScwIndex.cache_path(Path(tmp)))
        t_load = _best(lambda: ScwIndex.load(path), repeat=3)
        size_mb = path.stat().st_size / 1e6

    crab = (83.633, 22.015)
    whole = (Time("2002-10-01"), Time("2025-03-01"))
    t_cone_time = _best(lambda: index.cone(*crab, 15.0, *whole))  # incl. 2 astropy Time -> TT
    ijd = (1000.0, 9200.0)
    t_cone = _best(lambda: index.cone(*crab, 15.0, *ijd))
    t_select = _best(lambda: index.select(*crab, 15.0, Time("2016-02-01"), Time("2016-03-01"), 50))
    coords = SkyCoord(index.ra, index.dec, unit="deg")
    target = SkyCoord(*crab, unit="deg")

    def brute():
        return np.nonzero(coords.separation(target).deg <= 15.0)[0]

    t_brute = _best(brute, repeat=3)
    assert set(brute()) - set(index.cone(*crab, 15.0, *whole, include_private=True)) == set()
    out = {
        "pointings": index.n_pointings,
        "build_s": round(t_build, 3),
        "load_s": round(t_load, 3),
        "cache_MB": round(size_mb, 1),
        "load_vs_build": round(t_build / t_load, 1),
        "cone_whole_mission_ms": round(1e3 * t_cone, 2),
        "cone_with_Time_args_ms": round(1e3 * t_cone_time, 2),
        "select_demo_ms": round(1e3 * t_select, 2),
        "brute_astropy_vs_cone": round(t_brute / t_cone, 1),
    }
    for k, v in out.items():
        print(f"{k:24s} {v}")
    return out


if __name__ == "__main__":
    main()
