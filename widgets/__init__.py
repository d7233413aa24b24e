"""MMODA Hub panels for JupyterLab: query, jobs, products (sky view, plots), banner, cluster.

>>> import mmoda_widgets
>>> mmoda_widgets.show()            # every panel, talking to this server's MMODA extension

Each panel also works alone (``mmoda_widgets.query_panel()``...). The state behind each panel
lives in :mod:`mmoda_widgets.state` (no ipywidgets), the drawing in :mod:`mmoda_widgets.panels`.
"""

from __future__ import annotations

import os
from typing import Any

from mmoda_ext.client import Client

__all__ = ["Hub", "connect", "show"]


def connect(url: str | None = None, token: str | None = None) -> Client:
    """A client of this Jupyter server's MMODA API (or of ``url``, e.g. ``mmoda serve``).

    Without arguments: ``MMODA_URL`` or the extension's ``DISPATCHER_URL``; the token is the
    caller's Jupyter credential (``JUPYTERHUB_API_TOKEN`` in the hub and on Binder,
    ``JUPYTER_TOKEN`` for a plain ``jupyter lab``), else ``MMODA_TOKEN`` / ``ODA_TOKEN``.
    """
    url = url or os.environ.get("MMODA_URL") or os.environ.get("DISPATCHER_URL")
    if not url:
        raise RuntimeError("No MMODA server: run inside JupyterLab with the mmoda_ext extension, set "
                           "MMODA_URL, or pass url= (e.g. the URL printed by `mmoda serve`).")
    if token is None and not os.environ.get("MMODA_URL"):
        for name in ("JUPYTERHUB_API_TOKEN", "JUPYTER_TOKEN", "MMODA_TOKEN", "ODA_TOKEN"):
            if os.environ.get(name):
                token = os.environ[name]
                break
    elif token is None:
        token = os.environ.get("MMODA_TOKEN") or None
    return Client(url, token=token)


class Hub:
    """Every panel wired together: a submitted job appears in Jobs with live progress, and its
    products open by themselves when it is done; follow-up requests from Products go the same way."""

    def __init__(self, client: Client | None = None, sky_timeout: float = 30.0, **query: Any) -> None:
        import threading

        import ipywidgets as w

        from . import state
        from .panels import BannerPanel, ProductsPanel, QueryPanel
        from .panels.preload import SkyViewPreload

        self.client = client or connect()
        self.query = state.QueryState(self.client).load(**query)
        self.jobs = state.JobsState(self.client)
        self.products = state.ProductsState(self.client)
        self.banner = state.BannerState(self.client)
        self.cluster = state.ClusterState(self.client)
        self.banner.refresh()
        self._watch: set[str] = set()
        self._fill_lock = threading.Lock()
        self._jobs_panel = self._cluster_panel = None
        self.products_panel = ProductsPanel(self.products, on_submit=self.track, sky_timeout=sky_timeout)
        self.query_panel = QueryPanel(self.query, on_submit=self.track)
        # Jobs and Cluster are built just after the first render (_fill_tabs): every widget
        # is a model and a view for the browser to make, and the form is what is looked at first
        self.tabs = w.Tab([self.query_panel, w.VBox(), self.products_panel, w.VBox()])
        for i, title in enumerate(("Query", "Jobs", "Products", "Cluster")):
            self.tabs.set_title(i, title)
        self.tabs.observe(self._tab, names="selected_index")
        self.jobs.observe(self._finished, names="jobs")
        # the browser starts loading aladin-lite when the panels first render, not after Submit
        self.widget = w.VBox([BannerPanel(self.banner), self.tabs, SkyViewPreload()])
        self.widget.add_class("mmoda-hub")

    def _fill_tabs(self) -> None:
        with self._fill_lock:
            if self._jobs_panel is None:
                from .panels import ClusterPanel, JobsPanel

                self.jobs.refresh()
                self._jobs_panel = JobsPanel(self.jobs, on_show=self.show_products)
                self._cluster_panel = ClusterPanel(self.cluster)
                self.tabs.children = [self.query_panel, self._jobs_panel, self.products_panel, self._cluster_panel]

    @property
    def jobs_panel(self) -> Any:
        self._fill_tabs()
        return self._jobs_panel

    @property
    def cluster_panel(self) -> Any:
        self._fill_tabs()
        return self._cluster_panel

    def track(self, job: dict) -> None:
        """Follow a job: Jobs tab with live progress; products shown when done."""
        self._fill_tabs()
        self.jobs.track(job)
        if job.get("finished"):  # an identical earlier request: its products at once
            if job["status"] == "done":
                self.show_products(job)
            return
        self._watch.add(job["job_id"])
        self.tabs.selected_index = 1

    def show_products(self, job: dict) -> None:
        self._fill_tabs()
        self.tabs.selected_index = 2  # first: the browser lays the tab out while products load
        self.products_panel.show(job)

    def _finished(self, change: dict) -> None:
        for job in change["new"]:
            if job["job_id"] in self._watch and job.get("finished"):
                self._watch.discard(job["job_id"])
                if job["status"] == "done":
                    self.show_products(job)

    def _tab(self, change: dict) -> None:
        self._fill_tabs()
        if change["new"] == 3:
            self.cluster.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
        _warm_up(self)


def _warm_up(hub: Hub) -> None:
    """Once the panels are on screen: the products panel's astropy / ipyaladin / bqplot imports
    in the background (after a second, not competing with the first render), then its sky view
    made ahead in the browser, while the user fills the form."""
    import threading

    from .panels import warm_up

    def run() -> None:
        hub._fill_tabs()
        warm_up().join()
        hub.products_panel.prepare_view()

    timer = threading.Timer(1.0, run)
    timer.daemon = True
    timer.start()


def show(client: Client | None = None, **query: Any) -> Hub:
    """Display every panel (banner on top; Query, Jobs, Products, Cluster tabs) and return them."""
    from IPython.display import display

    hub = Hub(client, **query)
    display(hub.widget)
    _warm_up(hub)
    return hub
