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
from contextlib import contextmanager
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
        *,
        check: Callable[[], None] | None = None,
    ) -> None:
        self.archive = archive
        #: per-science-window provenance cache (``mmoda_ext.jobs.cache.ProvenanceCache``) or None
        self.cache = cache
        self.outdir = Path(outdir)
        self.outdir.mkdir(parents=True, exist_ok=True)
        self.rights = rights or Rights.local()
        self._on_progress = on_progress
        self._check = check

    def check(self) -> None:
        """Raise (the manager's interrupt) if the job was cancelled or the server stops."""
        if self._check is not None:
            self._check()

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
                 cache: Any = None, check: Callable[[], None] | None = None) -> None:
        super().__init__(archive, outdir, rights, on_progress, cache, check=check)
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
        from distributed import wait

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
        pending = {client.submit(task, unit, pure=False) for unit in islice(it, limit)}
        acc, done = initial, 0
        try:
            while pending:
                try:
                    finished, pending = wait(pending, timeout=self.poll_interval, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    self.check()  # nothing finished yet: a cancel or a stop still ends the wait
                    continue
                for fut in finished:
                    result = fut.result()
                    fut.release()
                    acc = fold(acc, result)
                    del result
                    done = min(n, done + (size if batched else 1))
                    self.progress(done / n, f"{label} {done}/{n}".strip())
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(client.submit(task, nxt, pure=False))
        except BaseException:
            # cancelled, stopped or failed: no task of this job may keep a worker busy
            if pending:
                client.cancel(list(pending), force=True)
            raise
        return acc

    #: seconds between looks at cancellation while no task completes
    poll_interval = 0.5

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


#: words in the name of an environment variable that only the server may see (never workers)
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE_KEY", "API_KEY")


def is_secret_name(name: str) -> bool:
    """Whether an environment variable looks like a secret (``MMODA_TOKEN_SECRET``, ...)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


@contextmanager
def _without_secrets():
    """Remove secret-looking variables from ``os.environ`` while worker processes are spawned.

    Workers are separate processes that inherit the environment at spawn time; the server's
    token secret or SMTP password must not be readable by code running there.
    """
    saved = {k: os.environ.pop(k) for k in list(os.environ) if is_secret_name(k)}
    try:
        yield
    finally:
        os.environ.update(saved)


def local_client(n_workers: int | None = None):
    """An embedded LocalCluster sized to the machine: one single-threaded worker per core.

    Processes, not threads: the per-window kernels hold the GIL in numpy glue code.
    Hardened: every connection is TLS with temporary credentials held only by this process
    and its workers (a local process cannot submit code), every socket is on 127.0.0.1, the
    scheduler's and workers' HTTP servers answer only ``/health`` (no dashboard, no
    ``/json/identity.json``), and no secret of the server is in the workers' environment.
    """
    import dask
    from distributed import Client, LocalCluster
    from distributed.security import Security

    n = n_workers or max(1, min(os.cpu_count() or 1, 8))
    health_only = {"distributed.scheduler.http.routes": ["distributed.http.health"],
                   "distributed.worker.http.routes": ["distributed.http.health"]}
    with dask.config.set(health_only), _without_secrets():
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tls://",
            security=Security.temporary(),
            dashboard_address=None,
            silence_logs=logging.WARNING,
        )
    return Client(cluster)
