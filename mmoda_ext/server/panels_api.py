"""REST routes the widget panels need beyond jobs: a request check and the compute cluster.

``POST /api/v1/check`` validates a request exactly as ``POST /api/v1/jobs`` would (same
parsing, same rights, same ``PublicError`` answer with the parameter at fault), resolves a
source name to RA/DEC, and counts the science windows the request selects, so a form can
show errors at their field and the count against the tier limit before anything is
submitted. ``GET /api/v1/cluster`` describes the Dask cluster the jobs run on, with the
caller's tier limits. Both are thin: one manager call, serialise.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .rest import API, RestHandler, public_errors, requested_product

__all__ = ["default_handlers", "science_windows", "cluster_model"]


def science_windows(params: dict[str, Any], archive: Any, rights: Any) -> dict[str, Any] | None:
    """How many science windows a (parsed) INTEGRAL request selects, against the tier limit.

    None for instruments without science windows (no ``radius``/``max_pointings``).
    """
    if archive is None or not {"RA", "DEC", "T1", "T2", "radius", "max_pointings"} <= set(params):
        return None
    limit = int(rights.max_scw)
    if params.get("scw_list"):
        n = len(params["scw_list"])
        return {"available": n, "selected": n, "limit": limit, "by": "scw_list"}
    from ..instruments.params import to_time

    include_private = bool(rights.private_data and params.get("integral_data_rights") == "all-private")
    rows = archive.index.cone(params["RA"], params["DEC"], params["radius"], to_time(params["T1"]),
                              to_time(params["T2"]), include_private)
    available = len(rows)
    return {"available": available, "selected": min(available, int(params["max_pointings"])),
            "limit": limit, "by": "max_pointings"}


class CheckHandler(RestHandler):
    @public_errors
    async def post(self) -> None:
        rights = self.current_rights()
        instrument, product, params = requested_product(self.json_body())

        def check() -> dict[str, Any]:
            _, parsed = self.manager.prepare(instrument, product, dict(params), rights)
            return {"instrument": instrument, "product": product, "params": parsed,
                    "science_windows": science_windows(parsed, self.manager.get_archive(), rights)}

        self.write_json(await asyncio.to_thread(check))


def cluster_model(manager: Any, rights: Any) -> dict[str, Any]:
    """Workers, cores and memory of the jobs' Dask cluster, and the caller's tier limits."""
    limits = {"max_workers": rights.max_workers, "worker_cores": rights.worker_cores,
              "worker_memory": rights.worker_memory, "idle_timeout": rights.cluster_idle_timeout,
              "max_scw": rights.max_scw}
    client = getattr(manager, "_dask_client", None)
    if manager.compute == "serial":
        return {"kind": "serial", "workers": [], "dashboard": None, "limits": limits}
    if client is None:
        return {"kind": "idle", "workers": [], "dashboard": None, "limits": limits,
                "message": "no cluster yet: it starts with the first request"}
    info = client.scheduler_info()
    workers = [{"name": str(w.get("name", addr)), "threads": int(w.get("nthreads", 0)),
                "memory": int(w.get("memory_limit") or 0)} for addr, w in info.get("workers", {}).items()]
    return {"kind": "gateway" if manager.scheduler_address else "local", "workers": workers,
            "dashboard": getattr(manager, "dashboard_link", None) or client.dashboard_link,
            "limits": limits}


class ClusterHandler(RestHandler):
    @public_errors
    def get(self) -> None:
        self.write_json(cluster_model(self.manager, self.current_rights()))


default_handlers = [
    (API + r"/check", CheckHandler),
    (API + r"/cluster", ClusterHandler),
]
