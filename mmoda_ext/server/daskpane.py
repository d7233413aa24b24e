"""JupyterLab's Dask pane (``dask-labextension``) on the hub user's own Dask Gateway cluster.

Under the hub, the hub config points the pane's cluster factory at
:func:`mmoda_ext.jobs.gateway.lab_cluster` (``DASK_LABEXTENSION__FACTORY__*``): "+ NEW" in the
pane gives the user's MMODA cluster (the running one, else a new one sized by the gateway from
the tier). This module does the two other halves:

* :func:`show_in_lab`: a cluster the extension's jobs start (or adopt) appears in the pane by
  itself, once (entries of clusters that have stopped, e.g. after the gateway's idle timeout,
  are dropped);
* :class:`NewClusterHandler`: "+ NEW" (``PUT dask/clusters``) while the user's cluster is
  already in the pane returns that entry; dask-labextension's manager keys its entries by a
  fresh id per PUT, so the factory's adopted cluster would otherwise be listed twice;
* :class:`DashboardCheckHandler`: the pane checks a dashboard URL from the server side before
  it shows the plots (``dask/dashboard-check/<url>``), without any credential, so the guarded
  link (``/services/mmoda-dashboards/<cluster>/``: owner only) would always look inactive. For
  links of the guard this check sends the server's own hub token in a header (never in a URL);
  the guard then shows the plots list to the owner only. Other URLs are checked as
  dask-labextension does. The browser's iframes reach the guard with the user's hub login.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any
from urllib import parse

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import httpclient, web

__all__ = ["DashboardCheckHandler", "NewClusterHandler", "install", "new_in_lab", "show_in_lab"]

GUARD = "/services/mmoda-dashboards/"

#: one change of the pane's entries at a time ('+ NEW' and a job's cluster may come together)
_pane_lock = asyncio.Lock()


class DashboardCheckHandler(APIHandler):
    """``dask/dashboard-check/<url>`` for the guard's links (the hub token in a header)."""

    @web.authenticated
    async def get(self, url: str) -> None:
        from dask_labextension.dashboardhandler import (
            DaskDashboardCheckHandler,
            _normalize_dashboard_link,
        )

        link = _normalize_dashboard_link(parse.unquote(url), self.request)
        token = os.environ.get("JUPYTERHUB_API_TOKEN")
        if GUARD not in parse.urlparse(link).path or not token or "?" in link:
            return await DaskDashboardCheckHandler.get(self, url)
        answer: dict[str, Any] = {"url": link, "isActive": False, "plots": {}}
        try:
            resp = await httpclient.AsyncHTTPClient().fetch(
                url_path_join(link, "individual-plots.json"), request_timeout=20,
                headers={"Authorization": f"token {token}"}, follow_redirects=False)
            answer.update(isActive=True, plots=json.loads(resp.body), effectiveUrl=None)
        except (httpclient.HTTPClientError, OSError, ValueError) as exc:
            self.log.debug("%s: no dashboard for this user (%s)", link, exc)
        self.finish(json.dumps(answer))


def _new_cluster_handler() -> type:
    """:class:`NewClusterHandler`, made on first use: importing dask-labextension starts its
    manager on the current event loop, which only a running server has."""
    global NewClusterHandler
    if NewClusterHandler is None:
        from dask_labextension.clusterhandler import DaskClusterHandler

        class _NewClusterHandler(DaskClusterHandler):
            """``dask/clusters`` with "+ NEW" (PUT) giving the user's one cluster, listed once."""

            @web.authenticated
            async def put(self, cluster_id: str = "") -> None:
                try:
                    model = await new_in_lab()
                except Exception as exc:  # as dask-labextension's handler answers a failed start
                    raise web.HTTPError(500, str(exc)) from exc
                self.finish(json.dumps(model))

        NewClusterHandler = _NewClusterHandler
    return NewClusterHandler


#: dask-labextension's ``dask/clusters`` handler with our '+ NEW' (see :func:`new_in_lab`)
NewClusterHandler: type | None = None


def install(web_app: web.Application, base_url: str) -> None:
    """Route ``<base_url>dask/dashboard-check/`` to :class:`DashboardCheckHandler` and
    ``<base_url>dask/clusters`` to :class:`NewClusterHandler`, ahead of dask-labextension's own
    handlers (extensions add their routes in load order)."""
    from tornado.routing import HostMatches, Rule

    routes = [(url_path_join(base_url, "dask/dashboard-check/(?P<url>.+)"), DashboardCheckHandler),
              (url_path_join(base_url, "dask/clusters/?"), _new_cluster_handler())]
    router = web_app.default_router
    router.rules.insert(0, router.process_rule(Rule(HostMatches(".*$"), routes)))


def _gateway_name(model: dict[str, Any]) -> str:
    """The gateway cluster of a pane entry (``gateway://host:port/<name>``)."""
    return str(model.get("scheduler_address") or "").rsplit("/", 1)[-1]


async def show_in_lab(name: str, log: Any = None) -> None:
    """Show gateway cluster ``name`` (the jobs' cluster) in JupyterLab's Dask pane, once."""
    try:
        from dask_labextension.manager import manager
    except ImportError:  # JupyterLab without dask-labextension
        return
    from ..jobs.gateway import lab_cluster_id

    async with _pane_lock:
        models = manager.list_clusters()
        if any(_gateway_name(m) == name for m in models):  # e.g. made with '+ NEW' in the pane
            return
        await manager.start_cluster(lab_cluster_id(name), {"name": f"MMODA {name[:8]}"})
    for model in models:  # clusters the gateway stopped since (idle timeout): gone from the pane
        if _gateway_name(model) != name:
            try:
                await manager.close_cluster(model["id"])
            except Exception:
                if log is not None:
                    log.warning("could not drop Dask pane entry %s", model["id"], exc_info=True)


async def new_in_lab() -> dict[str, Any]:
    """'+ NEW' in the pane: the entry of the user's running cluster if the pane shows it
    already, else a new entry (the factory, :func:`~mmoda_ext.jobs.gateway.lab_cluster`, adopts
    the running cluster or starts one)."""
    from dask_labextension.manager import manager

    from ..jobs.gateway import lab_cluster_id, users_cluster

    async with _pane_lock:
        name = await users_cluster()
        for model in manager.list_clusters() if name is not None else []:
            if _gateway_name(model) == name:
                return model
        return await manager.start_cluster(lab_cluster_id(name) if name is not None else "")
