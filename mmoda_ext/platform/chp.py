"""The hub's proxy: Python ``configurable-http-proxy`` (PyPI) answering websocket subprotocols.

Its ``ProxyHandler`` passes the browser's ``Sec-WebSocket-Protocol`` on to the target but never
answers with the subprotocol the target chose, and browsers then drop the connection ("Sent
non-empty 'Sec-WebSocket-Protocol' header but no response was received"). Bokeh sends its
session token that way, so without this every Dask dashboard behind the hub stays blank
(observed with Chromium; ``tests/hub/test_dashboard_guard.py``). The target's connection is made
before the browser's is accepted, so its choice is known: answer with it.

Run as ``python -m mmoda_ext.platform.chp`` with the arguments of ``configurable-http-proxy``.
"""

from __future__ import annotations

import sys

from configurable_http_proxy.cli import main
from configurable_http_proxy.handlers import ProxyHandler

__all__ = ["main"]


def _select_subprotocol(self: ProxyHandler, subprotocols: list[str]) -> str | None:
    """The subprotocol the proxied target selected (None when it chose none)."""
    client = getattr(self, "ws_client", None)
    return client.selected_subprotocol if client is not None else None


def _on_message(self: ProxyHandler, message: str | bytes) -> None:
    """Browser → target, keeping binary frames binary: the package sends every frame as text,
    which breaks Jupyter's kernel protocol v1 (binary frames) once the subprotocol is answered
    ("cannot convert 'str' object to bytes" in the user's server; kernels stay 'Unknown')."""
    if self.ws_client:
        prefix = self.target["prefix"] if self.target else ""
        if prefix:
            self.proxy.update_last_activity(prefix)
        self.ws_client.write_message(message, binary=isinstance(message, bytes))


ProxyHandler.select_subprotocol = _select_subprotocol  # type: ignore[method-assign]
ProxyHandler.on_message = _on_message  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
