"""JupyterHub whose managed services start side by side (``python -m mmoda_ext.platform.hubapp``).

JupyterHub starts its services one after the other, waiting for each to answer, and serves its
login page only after the last one: with the gateway, the archive, the public dispatcher and the
dashboards guard (each a Python process importing astropy and dask) that is the sum of their
start times. This subclass starts them all at once and lets JupyterHub's own loop collect the
results in its usual order; everything else is JupyterHub unchanged, so the same
``hub_config/jupyterhub_config.py`` also runs under plain ``jupyterhub`` (or Zero to JupyterHub).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .fastimport import skip_iri_validator

skip_iri_validator()  # before jupyterhub imports jsonschema (see fastimport)

from jupyterhub.app import JupyterHub  # noqa: E402

__all__ = ["MMODAHub", "main"]


class MMODAHub(JupyterHub):
    """``JupyterHub`` starting its managed services concurrently at start-up."""

    _initial_starts: dict[str, asyncio.Future] | None = None

    async def start_service(self, service_name: str, service: Any, ssl_context: Any = None) -> bool:
        if self._initial_starts is None:  # the first call of start(): launch them all now
            self._initial_starts = {
                name: asyncio.ensure_future(JupyterHub.start_service(self, name, svc, ssl_context))
                for name, svc in self._service_map.items()
            }
        future = self._initial_starts.pop(service_name, None)
        if future is not None:
            return await future
        # services added later through the REST API start as JupyterHub starts them
        return await JupyterHub.start_service(self, service_name, service, ssl_context)


main = MMODAHub.launch_instance

if __name__ == "__main__":
    main()
