"""The development Dask Gateway backend: local processes, every listener on 127.0.0.1.

dask-gateway-server's database backends bind schedulers, their dashboards and the workers'
dashboards to ``0.0.0.0`` (``DBBackendBase.default_host``); on a shared machine that exposes
every user's cluster. This subclass of ``UnsafeLocalBackend`` keeps them on loopback; workers
then listen on the address they use to reach their scheduler (127.0.0.1). Still no isolation
between users (the processes run as the gateway's user): development and tests only.
"""

from __future__ import annotations

from dask_gateway_server.backends.local import UnsafeLocalBackend

__all__ = ["LoopbackLocalBackend"]


class LoopbackLocalBackend(UnsafeLocalBackend):
    """``UnsafeLocalBackend`` whose schedulers and dashboards listen on 127.0.0.1 only."""

    default_host = "127.0.0.1"
