"""ipywidgets panels, one per file, each drawing a state object of :mod:`mmoda_widgets.state`.

Imported on first use: the query, jobs, banner and cluster panels need only ipywidgets, so the
first render does not wait for astropy, ipyaladin and bqplot (the products panel's sky view and
plots), which :func:`warm_up` imports in the background meanwhile.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

__all__ = ["BannerPanel", "ClusterPanel", "JobsPanel", "ProductsPanel", "QueryPanel", "SkyView", "warm_up"]

_WHERE = {"BannerPanel": "banner", "ClusterPanel": "cluster", "JobsPanel": "jobs", "ProductsPanel": "products",
          "QueryPanel": "query", "SkyView": "skyview"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def warm_up() -> threading.Thread:
    """Import the products panel's modules (astropy, ipyaladin, bqplot) in a background thread,
    while the user fills the form, so the first mosaic does not wait for them."""
    def run() -> None:
        for module in ("skyview", "plots", "products"):
            importlib.import_module(f".{module}", __name__)

    thread = threading.Thread(target=run, name="mmoda-widgets-warm-up", daemon=True)
    thread.start()
    return thread
