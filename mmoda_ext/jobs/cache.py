"""Provenance cache: per-science-window intermediate results shared by overlapping requests.

A request for 100 science windows that overlaps an earlier one by 60 recomputes only 40:
each per-window result is stored under a key that is a hash of everything it depends on
(its provenance), never of the request it came from.

The key
-------
:func:`cache_key` hashes, as canonical JSON (sorted keys, no whitespace), the dict::

    {"instrument": "isgri", "scw": "066500220010.001", "step": "image",
     "band": [20.0, 40.0], "osa_version": "OSA11.2", "analysis_version": "1", ...}

with SHA-256; any extra keyword (pixel size, catalogue hash, ...) joins the dict. Whoever
changes the algorithm of a step bumps its ``analysis_version``, so old entries are simply
never asked for again. Values are dicts of numpy arrays stored as ``<root>/<k[:2]>/<k>.npz``,
written to a temporary file and renamed, so a reader (another worker, another user's job)
sees either nothing or a whole entry. The cache object is a path and nothing else, so it
pickles to Dask workers; the folder must be shared by the workers (it is, on one machine).

Products reach it as ``ctx.cache`` (``None`` when a context has no cache)::

    def per_window(scw):
        key = ctx.cache.key(instrument="isgri", scw=scw, step="image", band=[e1, e2],
                            osa_version=osa, analysis_version="1")
        return ctx.cache.get_or_compute(key, lambda: {"counts": ..., "exposure": ...})

Tasks on Dask workers get the cache's root folder inside their (picklable) plan, never the
context, and reopen ``ProvenanceCache(root)`` there.

Users
-----
``isgri_image`` and ``jemx_image`` cache each window's decoded and cleaned sky image (step
``"decoded-cleaned"``): the key adds the science window's seed and pointing, the band, the
cleaning switch and threshold, the sky-model content digest (an extra sky file changes it),
the data-generator version and the analysis version; the requested OSA version is *not* in
it, since its rate scale multiplies the finished mosaic. Entries hold the intensity,
variance and exposure maps (float32), the window's live exposure and the names of the
cleaned sources. See :mod:`mmoda_ext.instruments._isgri_window`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ProvenanceCache", "cache_key"]

log = logging.getLogger(__name__)


def _canonical(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _canonical(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_canonical(v) for v in o]
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    return o


def cache_key(**provenance: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``provenance`` (key order does not matter)."""
    text = json.dumps(_canonical(provenance), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ProvenanceCache:
    """Content-addressed on-disk store of dicts of numpy arrays (npz)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ProvenanceCache({str(self.root)!r})"

    key = staticmethod(cache_key)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None (a damaged entry counts as missing)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            try:
                os.utime(path)  # last use, for the server's retention policy
            except OSError:
                pass
            return arrays
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        except (OSError, ValueError, EOFError):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
            return None

    def put(self, key: str, arrays: dict[str, Any]) -> Path:
        """Store ``arrays`` under ``key`` atomically; the last writer of an equal key wins."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
        os.replace(tmp, path)
        return path

    def get_or_compute(
        self, key: str, compute: Callable[[], dict[str, Any]]
    ) -> dict[str, np.ndarray]:
        """The cached arrays, or ``compute()`` stored then returned."""
        return self.fetch(key, compute)[0]

    def fetch(
        self, key: str, compute: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, np.ndarray], bool]:
        """Like :meth:`get_or_compute`, plus whether it was a hit (for hit/miss counts).

        On a miss the arrays returned are the ones stored (``np.savez`` keeps dtypes and
        values), so the caller sees exactly what a later hit gives.
        """
        hit = self.get(key)
        if hit is not None:
            return hit, True
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        try:
            self.put(key, arrays)
        except OSError as exc:  # a full or read-only cache folder must not fail the request
            log.warning("provenance cache %s: not stored (%s)", self.root, exc)
        return arrays, False

    def size(self) -> int:
        """Number of entries (for tests and the operator)."""
        return sum(1 for _ in self.root.glob("*/*.npz")) if self.root.exists() else 0
