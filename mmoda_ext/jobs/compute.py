"""Compute contexts: where a product's per-item tasks run.

``DaskContext`` runs them on any ``distributed.Client`` (an embedded ``LocalCluster`` by
default, or a Dask Gateway cluster), folding results as they complete so that memory stays
bounded whatever the number of items: at most ``max_in_flight`` results exist at once.
``SerialContext`` runs in-process, for unit tests and tiny requests.

When a product also gives ``merge`` and ``start`` (a factory of an empty accumulator), the
workers fold batches of items themselves and send one partial accumulator per batch: a
mosaic then crosses the network once per batch instead of once per science window, which
keeps the client (on the same cores, on a laptop) from becoming the bottleneck.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

from ..access.rights import Rights

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]


class _BaseContext:
    def __init__(
        self,
        archive: Any,
        outdir: str | Path,
        rights: Rights | None = None,
        on_progress: ProgressCallback | None = None,
        cache: Any = None,
    ) -> None:
        self.archive = archive
        #: per-science-window provenance cache (``mmoda_ext.jobs.cache.ProvenanceCache``) or None
        self.cache = cache
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.rights = rights or Rights.local()
        self._on_progress = on_progress

    def progress(self, fraction: float, message: str = "") -> None:
        if self._on_progress is not None:
            self._on_progress(min(max(float(fraction), 0.0), 1.0), message)


class SerialContext(_BaseContext):
    """Everything in the calling process, in order."""

    def map_reduce(self, func, items, combine, initial=None, label="", *, merge=None, start=None):
        items = list(items)
        acc = initial
        for i, item in enumerate(items, 1):
            acc = combine(acc, func(item))
            self.progress(i / max(len(items), 1), f"{label} {i}/{len(items)}".strip())
        return acc


class DaskContext(_BaseContext):
    """Per-item tasks on a Dask cluster, reduced on the client as they complete.

    Parameters
    ----------
    client : distributed.Client, optional
        Where to run. Without one, an embedded ``LocalCluster`` sized to the machine is
        started on first use and closed by :meth:`close`.
    max_in_flight : int, optional
        Bound on submitted-but-not-reduced tasks (default 4 per worker thread).
    """

    def __init__(self, archive, outdir, rights=None, on_progress=None, client=None,
                 max_in_flight: int | None = None, n_workers: int | None = None,
                 cache: Any = None) -> None:
        super().__init__(archive, outdir, rights, on_progress, cache)
        self._client = client
        self._own_client = False
        self._n_workers = n_workers
        self.max_in_flight = max_in_flight

    @property
    def client(self):
        if self._client is None:
            self._client = local_client(self._n_workers)
            self._own_client = True
        return self._client

    def map_reduce(self, func, items, combine, initial=None, label="", *, merge=None, start=None):
        """Fold ``func(item)`` into ``initial`` with ``combine`` as results complete.

        With ``merge(acc, partial)`` and ``start()`` given, workers fold batches of items
        into ``start()`` accumulators and the client merges those partials.
        """
        from distributed import as_completed

        items = list(items)
        n = len(items)
        if n == 0:
            return initial
        client = self.client
        threads = sum(client.nthreads().values()) or 1
        limit = self.max_in_flight or 4 * threads
        batched = merge is not None and start is not None
        if batched:
            size = max(1, min(self.max_batch, -(-n // (2 * threads))))
            units = [items[i:i + size] for i in range(0, n, size)]
            task = partial(_fold_batch, func, combine, start)
            fold = merge
        else:
            units, task, fold = items, func, combine
        it = iter(units)
        first = [client.submit(task, unit, pure=False) for unit in islice(it, limit)]
        pool = as_completed(first)
        acc, done = initial, 0
        for fut in pool:
            result = fut.result()
            fut.release()
            acc = fold(acc, result)
            del result
            done = min(n, done + (size if batched else 1))
            self.progress(done / n, f"{label} {done}/{n}".strip())
            nxt = next(it, None)
            if nxt is not None:
                pool.add(client.submit(task, nxt, pure=False))
        return acc

    #: most items one worker folds before sending its partial (bounds progress granularity)
    max_batch = 50

    def close(self) -> None:
        if self._own_client and self._client is not None:
            cluster = self._client.cluster
            self._client.close()
            if cluster is not None:
                cluster.close()
            self._client = None


def _fold_batch(func, combine, start, batch):
    """Worker side of a batched map_reduce: fold one batch into a fresh accumulator."""
    acc = start()
    for item in batch:
        acc = combine(acc, func(item))
    return acc


def local_client(n_workers: int | None = None):
    """An embedded LocalCluster sized to the machine: one single-threaded worker per core.

    Processes, not threads: the per-window kernels hold the GIL in numpy glue code.
    """
    from distributed import Client, LocalCluster

    n = n_workers or max(1, min(os.cpu_count() or 1, 8))
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=logging.WARNING,
    )
    return Client(cluster)
