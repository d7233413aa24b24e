"""ipywidgets panels, one per file, each drawing a state object of :mod:`mmoda_widgets.state`."""

from .banner import BannerPanel
from .cluster import ClusterPanel
from .jobs import JobsPanel
from .products import ProductsPanel
from .query import QueryPanel
from .skyview import SkyView

__all__ = ["BannerPanel", "ClusterPanel", "JobsPanel", "ProductsPanel", "QueryPanel", "SkyView"]
