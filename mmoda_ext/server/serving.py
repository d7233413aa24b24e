"""Running a tornado application until SIGINT/SIGTERM, with an access log free of secrets.

``mmoda serve``, the archive service and the dashboards service all listen the same way:
``async with serving(app, ip, port) as port: ... await until_signal()``. Their access log is
:func:`access_log` (method, path, status, milliseconds): never the query string, where
``token=`` and ``session_id=`` travel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlparse

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from traitlets import Integer, Unicode, default
from traitlets.config import Application

__all__ = ["HubServiceApp", "access_log", "serving", "show_access_log", "until_signal"]

ACCESS = logging.getLogger("tornado.access")


def access_log(handler: web.RequestHandler) -> None:
    """Tornado's ``log_function``: ``GET /path 200 3.1ms``, without the query string."""
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    ACCESS.log(level, "%s %s %d %.1fms", handler.request.method, handler.request.path, status,
               1000.0 * handler.request.request_time())


def show_access_log(formatter: logging.Formatter | None = None, stream: Any = None) -> None:
    """Show every request (INFO) on ``stream`` (stderr) whatever the application's log level.

    Idempotent: a second call replaces the handler it added before.
    """
    for old in [h for h in ACCESS.handlers if getattr(h, "_mmoda_access", False)]:
        ACCESS.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._mmoda_access = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter or logging.Formatter("[%(levelname)1.1s %(asctime)s access] %(message)s"))
    ACCESS.addHandler(handler)
    ACCESS.setLevel(logging.INFO)
    ACCESS.propagate = False


@asynccontextmanager
async def serving(app: web.Application, ip: str, port: int, **server_options: Any) -> AsyncIterator[int]:
    """Listen on ``ip:port`` (0: a free port) while the block runs; yields the bound port."""
    server = HTTPServer(app, **server_options)
    sockets = bind_sockets(port, ip)
    server.add_sockets(sockets)
    try:
        yield sockets[0].getsockname()[1]
    finally:
        server.stop()


async def until_signal(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Wait for one of ``signals`` (the way a service is told to stop). The handlers stay:
    a second Ctrl-C during the shutdown that follows does not interrupt it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class HubServiceApp(Application):
    """Base of the hub's managed services (``mmoda-archive``, ``mmoda-dashboards``): they listen
    on loopback where the hub routes to, the port of ``$JUPYTERHUB_SERVICE_URL`` under
    ``$JUPYTERHUB_SERVICE_PREFIX``; outside the hub on ``default_port`` under ``default_prefix``."""

    default_port = 0
    default_prefix = "/"

    ip = Unicode("127.0.0.1", config=True, help="Interface (loopback: the hub's proxy is the way in).")
    port = Integer(config=True, help="Port; default the port of $JUPYTERHUB_SERVICE_URL.")
    base_url = Unicode(config=True, help="URL prefix; default $JUPYTERHUB_SERVICE_PREFIX.")

    @default("port")
    def _port(self) -> int:
        url = os.environ.get("JUPYTERHUB_SERVICE_URL", "")
        return int(urlparse(url).port or 0) if url else self.default_port

    @default("base_url")
    def _base_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", self.default_prefix)
