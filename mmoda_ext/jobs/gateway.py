"""Compute on the user's own Dask Gateway cluster (the hub's ``dask-gateway`` service).

:class:`GatewayClusters` gives the :class:`~mmoda_ext.jobs.manager.JobManager` a Dask client
for each job (``JobManager.cluster_provider``):

* the cluster is created on first need (the gateway's options handler sizes its workers from
  the user's hub groups through the tier table, ``mmoda_ext.access.gateway``), reused by the
  next jobs, and adopted again after a server restart (its name is kept in ``state_file``;
  clusters the user starts in notebooks are never touched);
* it is scaled to the tier's ``max_workers`` (the gateway caps whatever is asked);
* the gateway shuts it down after the tier's idle timeout (``ClusterConfig.idle_timeout``,
  set by the options handler); the next job then starts a new one.

The ``Gateway`` is asynchronous (a synchronous one cannot be re-created in one process,
platform-stack.md pitfall 17) and lives on a private event-loop thread; the jobs get an
ordinary synchronous ``distributed.Client`` connected through the gateway's proxy with the
cluster's TLS credentials. The address, proxy address and authentication come from the
``DASK_GATEWAY__*`` environment the hub sets in user servers.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dask_gateway import Gateway, GatewayCluster
from traitlets import Bool, Float, Instance, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from ..access.rights import Rights
from ..errors import PublicError
from .manager import JobManager

__all__ = ["GatewayClusters", "GatewayJobManager", "UserGatewayCluster", "lab_cluster", "lab_cluster_id",
           "users_cluster"]


async def _state_cluster(gw: Any, state_file: str) -> str | None:
    """The cluster named in ``state_file`` if the gateway says it is this user's and running or
    starting, else None."""
    from dask_gateway.client import ClusterStatus

    state = Path(state_file).expanduser()
    if not state.is_file():
        return None
    mine = state.read_text().strip()
    for report in await gw.list_clusters():  # this user's pending/running clusters
        if report.name == mine and report.status in (ClusterStatus.RUNNING, ClusterStatus.PENDING):
            return mine
    return None


#: the GatewayClusters of this server (the extension's), whose settings lab_cluster follows
_active: GatewayClusters | None = None


def _write_state(state_file: str, name: str) -> None:
    state = Path(state_file).expanduser()
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(name)


class GatewayClusters(LoggingConfigurable):
    """One Dask Gateway cluster per user server, created on first need and reused."""

    default_workers = Integer(2, min=1, help="Workers asked for when the tier table gives no "
                              "max_workers (the gateway caps it anyway)").tag(config=True)
    start_timeout = Float(180.0, min=1.0, help="Seconds to wait for a new cluster and its first worker").tag(config=True)
    shutdown_on_stop = Bool(True, help="Shut the cluster down when the server stops (else the "
                            "gateway's idle timeout does)").tag(config=True)
    state_file = Unicode("~/.mmoda/gateway-cluster", help="Where the name of the cluster this "
                         "extension started is kept, to adopt it again after a server restart").tag(config=True)
    dashboard_prefix = Unicode(
        help="Public, owner-only route of a cluster's dashboard: '<prefix><cluster>/status' "
             "(the mmoda-dashboards service; default <hub public URL>/services/mmoda-dashboards/)"
    ).tag(config=True)

    @default("dashboard_prefix")
    def _default_dashboard_prefix(self) -> str:
        public = os.environ.get("JUPYTERHUB_PUBLIC_URL", "").rstrip("/")
        base = os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/")
        return f"{public}{base}/services/mmoda-dashboards/"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._gateway: Any = None
        self._report: Any = None  # ClusterReport of the cluster in use
        self._client: Any = None
        #: called with the cluster's name each time jobs move to another cluster (the
        #: extension shows it in JupyterLab's Dask pane); must not block
        self.listeners: list[Callable[[str], None]] = []
        global _active
        _active = self

    # -- the private event loop -----------------------------------------------------------

    def _run(self, coro: Any, timeout: float | None = None) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="mmoda-gateway", daemon=True)
            self._thread.start()
            # a server stopped by SIGINT (JupyterHub's spawners) ends without stopping its
            # extensions: the cluster still goes at interpreter exit
            atexit.register(self.close)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _gw(self) -> Any:
        if self._gateway is None:
            self._gateway = Gateway(asynchronous=True)
        return self._gateway

    # -- cluster lifecycle ---------------------------------------------------------------

    async def _running(self, name: str) -> Any:
        """The cluster's full report if it is running, else None (stopped, culled, unknown)."""
        from dask_gateway.client import ClusterStatus

        gw = await self._gw()
        try:
            report = await gw.get_cluster(name)
        except ValueError:  # 404: the gateway forgot it
            return None
        return report if report.status is ClusterStatus.RUNNING else None

    async def _ensure(self, workers: int) -> tuple[Any, bool]:
        """The running cluster (reused, adopted or new) and whether it changed."""
        from dask_gateway.client import ClusterStatus

        gw = await self._gw()
        if self._report is not None:
            report = await self._running(self._report.name)
            if report is not None:
                return report, False
            self.log.info("Dask cluster %s is gone (idle timeout?); starting another", self._report.name)
        # the user's MMODA cluster started before a server restart, or from JupyterLab's Dask
        # pane (lab_cluster); never one the user started for themselves in a notebook
        name = await _state_cluster(gw, self.state_file)
        if name is None:
            name = await gw.submit()
            _write_state(self.state_file, name)
            self.log.info("started Dask cluster %s", name)
        else:
            self.log.info("adopting the running Dask cluster %s", name)
        deadline = time.monotonic() + self.start_timeout
        while True:
            report = await gw.get_cluster(name)
            if report.status is ClusterStatus.RUNNING:
                break
            if report.status in (ClusterStatus.FAILED, ClusterStatus.STOPPED) or time.monotonic() > deadline:
                raise PublicError(
                    f"Your Dask cluster {name} did not start ({report.status.name.lower()} after "
                    f"{self.start_timeout:g} s). Try again; if it repeats, tell the platform team.",
                    parameter="cluster", value=name, status=503)
            await asyncio.sleep(0.5)
        await gw.scale_cluster(name, workers)
        return report, True

    def client(self, rights: Rights | None = None) -> Any:
        """A synchronous ``distributed.Client`` on the user's running cluster."""
        workers = getattr(rights, "max_workers", None) or self.default_workers
        with self._lock:
            report, changed = self._run(self._ensure(workers), self.start_timeout + 30)
            if changed or self._client is None:
                self._close_client()
                from distributed import Client

                # the default client of this process (DaskContext's waits use the default)
                self._client = Client(report.scheduler_address, security=report.security, timeout=60)
                try:
                    self._client.wait_for_workers(1, timeout=self.start_timeout)
                except TimeoutError:
                    raise PublicError(
                        f"Your Dask cluster {report.name} has no worker after {self.start_timeout:g} s. "
                        "Try again; if it repeats, tell the platform team.",
                        parameter="cluster", value=report.name, status=503) from None
            self._report = report
        if changed:
            for listener in self.listeners:
                try:
                    listener(report.name)
                except Exception:
                    self.log.warning("cluster listener failed", exc_info=True)
        return self._client

    @property
    def cluster_name(self) -> str | None:
        return self._report.name if self._report is not None else None

    @property
    def scheduler_address(self) -> str | None:
        return self._report.scheduler_address if self._report is not None else None

    @property
    def dashboard_link(self) -> str | None:
        """The owner-only public route of the dashboard (never the gateway's own route)."""
        return self.dashboard_of(self._report.name) if self._report is not None else None

    def dashboard_of(self, name: str) -> str:
        """The owner-only public route of cluster ``name``'s dashboard."""
        return f"{self.dashboard_prefix}{name}/status"

    def info(self) -> dict[str, Any]:
        """What a job's status shows about where it runs."""
        return {"cluster": self.cluster_name, "scheduler_address": self.scheduler_address,
                "dashboard_link": self.dashboard_link}

    def _close_client(self) -> None:
        if self._client is not None:
            try:
                self._client.close(timeout=5)
            except Exception:  # a client of a culled cluster may fail to close cleanly
                self.log.debug("closing the Dask client failed", exc_info=True)
            self._client = None

    def close(self) -> None:
        """Close the client, shut the cluster down (``shutdown_on_stop``), stop the loop."""
        if not self._lock.acquire(timeout=self.start_timeout + 30):  # a job is starting a cluster
            self.log.warning("Dask cluster not stopped: still busy; the gateway's idle timeout will")
            return
        try:
            self._close_client()
            if self._loop is None:
                return

            async def cleanup() -> None:
                if self._gateway is None:
                    return
                if self.shutdown_on_stop and self._report is not None:
                    try:
                        await self._gateway.stop_cluster(self._report.name)
                        self.log.info("stopped Dask cluster %s", self._report.name)
                    except Exception:
                        self.log.warning("could not stop Dask cluster %s", self._report.name, exc_info=True)
                await self._gateway.close()

            try:
                self._run(cleanup(), 30)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread is not None:
                    self._thread.join(5)
                self._loop = self._thread = self._gateway = self._report = None
        finally:
            self._lock.release()


class GatewayJobManager(JobManager):
    """A :class:`JobManager` whose jobs run on the user's Dask Gateway cluster.

    Each job asks :class:`GatewayClusters` for a live client (the cluster may have been culled
    since the last job) and records where it runs: :meth:`compute_info` gives the cluster's
    name, scheduler address and owner-only dashboard link for the job's status.
    """

    clusters = Instance(GatewayClusters, help="The user's clusters (created with parent=self)")

    @default("clusters")
    def _default_clusters(self) -> GatewayClusters:
        return GatewayClusters(parent=self)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._job_rights = threading.local()
        self._compute_info: dict[str, dict[str, Any]] = {}

    def dask_client(self) -> Any:
        client = self.clusters.client(getattr(self._job_rights, "rights", None))
        # what the cluster panel reads (mmoda_ext.server.panels_api.cluster_model)
        self._dask_client, self.scheduler_address = client, self.clusters.scheduler_address
        return client

    @property
    def dashboard_link(self) -> str | None:
        """The owner-only dashboard of the cluster in use (None before the first job)."""
        return self.clusters.dashboard_link

    def _context(self, job: Any, rights: Rights, on_progress: Any) -> Any:
        self._job_rights.rights = rights
        try:
            ctx = super()._context(job, rights, on_progress)
        finally:
            self._job_rights.rights = None
        if self.compute != "serial":
            info = self.clusters.info()
            self._compute_info[job.job_id] = info
            self.store.add_message(job.job_id, f"computing on Dask cluster {info['cluster']}")
        return ctx

    def compute_info(self, job_id: str) -> dict[str, Any]:
        """Where the job ran or runs (cluster, scheduler address, dashboard link), if known."""
        return dict(self._compute_info.get(job_id, {}))

    def stop_sync(self) -> Any:
        stopped = super().stop_sync()
        self.clusters.close()
        return stopped


# -- JupyterLab's Dask pane (dask-labextension) -------------------------------------------

class UserGatewayCluster(GatewayCluster):
    """A ``GatewayCluster`` whose ``dashboard_link`` is the owner-only route of the
    ``mmoda-dashboards`` guard, never the gateway's own (unauthenticated) route."""

    dashboard_prefix = "/services/mmoda-dashboards/"

    @property
    def dashboard_link(self) -> str | None:
        return f"{self.dashboard_prefix}{self.name}/status" if self.name else None

    @dashboard_link.setter
    def dashboard_link(self, value: str | None) -> None:
        pass  # the gateway's report names its own route: never shown


def lab_cluster_id(name: str) -> str:
    """dask-labextension's id for gateway cluster ``name`` (its routes want a UUID)."""
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dask-gateway:{name}"))


async def users_cluster(clusters: GatewayClusters | None = None) -> str | None:
    """The name of the user's MMODA cluster (the ``state_file``'s) if the gateway says it is
    running or starting, else None: what "+ NEW" in the Dask pane adopts."""
    clusters = clusters or _active or GatewayClusters()
    async with Gateway(asynchronous=True) as gw:
        return await _state_cluster(gw, clusters.state_file)


async def lab_cluster(*args: Any, asynchronous: bool = True, **kwargs: Any) -> Any:
    """dask-labextension's cluster factory in hub user servers (``labextension.factory``).

    The user's MMODA cluster: the running one the extension's jobs use (named in the
    ``state_file``), else a new one, sized by the gateway from the user's tier and kept in the
    ``state_file`` so the next job computes on it too. Its dashboard link is the guard's.
    """
    clusters = _active or GatewayClusters()
    name = await users_cluster(clusters)
    if name is not None:
        cluster = UserGatewayCluster.from_name(name, shutdown_on_close=True, asynchronous=True)
    else:
        cluster = UserGatewayCluster(shutdown_on_close=True, asynchronous=True)
    cluster.dashboard_prefix = clusters.dashboard_prefix
    await cluster
    if name is None:
        _write_state(clusters.state_file, cluster.name)
    return cluster
