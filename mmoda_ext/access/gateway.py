"""Dask Gateway cluster options from the tier table: a user's hub groups size their cluster.

``hub_config/dask_gateway_config.py`` sets ``c.Backend.cluster_options = cluster_options``.
The gateway calls it with the authenticated user (name and hub groups, from the hub's
``/api/user`` for the caller's token, never from the client), offers the fields below with
bounds taken from the user's tier, and applies :func:`cluster_overrides` to whatever the
client sent. The overrides are hard caps enforced by the gateway itself: a client asking for
more workers than the tier allows gets the tier's maximum (``cluster_max_workers``), whatever
it sends. The table is re-read when its file changes, so an operator's edit applies to the next
cluster without a restart.

Fields offered to clients (``gateway.new_cluster(worker_cores=1, worker_memory=0.5)``):

- ``worker_cores``: cores per worker, 1 .. the tier's ``worker_cores``
- ``worker_memory``: GiB per worker, the table's smallest ``worker_memory`` .. the tier's
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from .rights import Rights
from .tiers import TierTable, default_tiers_path

__all__ = ["GiB", "cluster_options", "cluster_overrides", "load_table", "rights_for"]

#: bytes per GiB (the unit of the ``worker_memory`` field, as in dask-gateway's own examples)
GiB = 2**30

_cache: dict[str, tuple[int, TierTable]] = {}


class GatewayUser(Protocol):
    """What the gateway knows of a caller (``dask_gateway_server.models.User``)."""

    name: str
    groups: set[str]
    admin: bool


def load_table(path: str | Path | None = None) -> TierTable:
    """The tier table (default :func:`~.tiers.default_tiers_path`), re-read when the file changes."""
    path = Path(path) if path is not None else default_tiers_path()
    key = str(path)
    mtime = path.stat().st_mtime_ns
    cached = _cache.get(key)
    if cached is None or cached[0] != mtime:
        cached = (mtime, TierTable.load(path))
        _cache[key] = cached
    return cached[1]


def rights_for(user: GatewayUser, table: TierTable) -> Rights:
    """The user's rights from their hub groups; refuses a table without compute limits for them."""
    rights = table.rights(user.name, groups=user.groups)
    missing = [k for k in ("max_workers", "worker_cores", "worker_memory", "cluster_idle_timeout")
               if getattr(rights, k) is None]
    if missing:
        from dask_gateway_server.backends.base import PublicException

        raise PublicException(f"The tier table gives tier '{rights.tier}' no compute limits {missing}; "
                  "ask the platform operators.")
    return rights


def cluster_overrides(
    options: Mapping[str, Any],
    rights: Rights,
    user_name: str,
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``ClusterConfig`` overrides for validated ``options``, capped by ``rights``.

    Pure function (what the gateway's handler returns): worker cores and memory are the
    smaller of what was asked and the tier's, ``cluster_max_workers`` and ``idle_timeout``
    are the tier's, and workers learn whom they run for (``MMODA_USER``, ``MMODA_TIER``) on
    top of the gateway's own ``environment``.
    """
    cores = min(int(options.get("worker_cores", rights.worker_cores)), int(rights.worker_cores))
    asked = options.get("worker_memory")
    memory = int(rights.worker_memory) if asked is None else min(int(float(asked) * GiB),
                                                                 int(rights.worker_memory))
    env = dict(environment or {})
    env.update(MMODA_USER=user_name, MMODA_TIER=rights.tier)
    return {
        "worker_cores": max(cores, 1),
        "worker_threads": max(cores, 1),
        "worker_memory": memory,
        "cluster_max_workers": int(rights.max_workers),
        "idle_timeout": float(rights.cluster_idle_timeout),
        "environment": env,
    }


def _handler(rights: Rights, environment: Mapping[str, str] | None, options: Any,
             user: GatewayUser) -> dict[str, Any]:
    return cluster_overrides(options, rights, user.name, environment)


def cluster_options(
    user: GatewayUser,
    table: TierTable | None = None,
    environment: Mapping[str, str] | None = None,
):
    """``c.Backend.cluster_options``: the fields a user may set, bounded by their tier.

    ``environment`` is the gateway's base worker environment (the handler's ``environment``
    replaces ``ClusterConfig.environment``, so it is merged here).
    """
    from dask_gateway_server.options import Float, Integer, Options

    table = table if table is not None else load_table()
    rights = rights_for(user, table)
    smallest = min(t.worker_memory for t in table.tiers if t.worker_memory is not None)
    memory_max = rights.worker_memory / GiB
    return Options(
        Integer("worker_cores", default=rights.worker_cores, min=1, max=rights.worker_cores,
                label="Worker cores"),
        Float("worker_memory", default=memory_max, min=min(smallest / GiB, memory_max),
              max=memory_max, label="Worker memory (GiB)"),
        handler=partial(_handler, rights, dict(environment or {})),
    )

