"""MMODA Hub: multi-messenger online data analysis in the notebook, on Dask."""

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict]:
    """The jupyter-server extension ``mmoda_ext`` (enabled on install by jupyter-config/)."""
    from .server.extension import MMODAExtension

    return [{"module": "mmoda_ext.server.extension", "app": MMODAExtension}]
