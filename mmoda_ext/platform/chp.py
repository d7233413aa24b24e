"""The hub's proxy: Python ``configurable-http-proxy`` (PyPI) answering websocket subprotocols.

Its ``ProxyHandler`` passes the browser's ``Sec-WebSocket-Protocol`` on to the target but never
answers with the subprotocol the target chose, and browsers then drop the connection ("Sent
non-empty 'Sec-WebSocket-Protocol' header but no response was received"). Bokeh sends its
session token that way, so without this every Dask dashboard behind the hub stays blank
(observed with Chromium; ``tests/hub/test_dashboard_guard.py``). The target's connection is made
before the browser's is accepted, so its choice is known: answer with it.

It also keeps an ``X-Forwarded-For`` that came from a proxy in front of the hub (see
``_get_proxy_request``).

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


_original_proxy_request = ProxyHandler._get_proxy_request


def _get_proxy_request(self: ProxyHandler, url: str):
    """The package looks up ``x-forwarded-for`` in lower case among headers tornado spells
    ``X-Forwarded-For``: an address forwarded by a proxy in front of the hub was replaced by
    ``,<peer>``. Append the peer to what came, as a proxy chain does (the public service
    believes it from 127.0.0.1 only: ``--MMODAServe.trusted_proxies``)."""
    request = _original_proxy_request(self, url)
    if self.proxy.x_forward:
        headers = request.headers  # a dict here; the HTTP client normalises it when sending
        host = self.request.headers.get("Host", "")
        port = host.rsplit(":", 1)[-1] if host.rsplit(":", 1)[-1].isdigit() else None
        for name in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Port"):
            ours = str(headers.get(name.lower(), "")).rsplit(",", 1)[-1]  # what the package added
            if name == "X-Forwarded-Port" and port:
                ours = port
            came = self.request.headers.get(name, "").strip()
            for key in [k for k in headers if k.lower() == name.lower()]:
                del headers[key]
            headers[name] = f"{came},{ours}" if came else ours
        forwarded_host = self.request.headers.get("X-Forwarded-Host") or host
        for key in [k for k in headers if k.lower() == "x-forwarded-host"]:
            del headers[key]
        headers["X-Forwarded-Host"] = forwarded_host
    return request


ProxyHandler._get_proxy_request = _get_proxy_request  # type: ignore[method-assign]
ProxyHandler.select_subprotocol = _select_subprotocol  # type: ignore[method-assign]
ProxyHandler.on_message = _on_message  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
