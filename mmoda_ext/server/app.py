"""The tornado application behind ``mmoda serve`` (and the handler list others mount).

``default_handlers`` (REST API + dispatcher-compatible door) is the one list of routes; the
jupyter-server extension and the public service mount the same list and put the same
objects in their settings (see :mod:`.base`). :class:`MMODAServe` is a traitlets
``Application``: every option is configurable (``--MMODAServe.port=...``,
``--JobManager.concurrency=...``) and ``mmoda serve --generate-config`` prints them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from tornado import web
from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import Application

from ..access.tiers import TierTable
from ..jobs.manager import JobManager
from ..jobs.store import StoreError
from . import oda_api, panels_api, rest
from .base import LIMITS
from .landing import LandingHandler
from .serving import access_log, serving, show_access_log, until_signal

__all__ = ["MMODAServe", "default_handlers", "make_app"]

default_handlers = panels_api.default_handlers + rest.default_handlers + oda_api.default_handlers


def make_app(manager: JobManager, *, tiers: TierTable | None = None, token_secret: str = "",
             base_url: str = "/", sync_wait: float = 2.0, **settings) -> web.Application:
    """A tornado application serving ``default_handlers`` over ``manager``, and the landing
    page at the base URL (with or without its trailing slash)."""
    prefix = "/" + base_url.strip("/") if base_url.strip("/") else ""
    handlers = [(prefix + "/?", LandingHandler)]
    handlers += [(prefix + path, handler) for path, handler in default_handlers]
    return web.Application(
        handlers,
        mmoda_manager=manager,
        mmoda_tiers=tiers or TierTable.load(),
        mmoda_token_secret=token_secret,
        mmoda_sync_wait=sync_wait,
        mmoda_prefix=prefix,
        log_function=access_log,
        **settings,
    )


class MMODAServe(Application):
    """Serve the REST API and the oda_api-compatible API over a job manager."""

    name = "mmoda-serve"
    description = "MMODA Hub server: REST API and dispatcher-compatible API (oda_api)"
    classes = [JobManager]

    ip = Unicode("127.0.0.1", help="Interface to listen on (loopback by default)").tag(config=True)
    port = Integer(8766, help="Port to listen on (0: a free port, printed at start)").tag(config=True)
    base_url = Unicode("/", help="URL prefix of every route").tag(config=True)
    root = Unicode("mmoda-jobs", help="Folder of the job store and products").tag(config=True)
    token_secret = Unicode(help="HS256 secret of MMODA tokens (env MMODA_TOKEN_SECRET)").tag(config=True)
    tiers_file = Unicode(None, allow_none=True, help="Tier table (YAML/JSON); default hub_config/tiers.yaml").tag(config=True)
    sync_wait = Float(2.0, min=0.0, help="Seconds a new request waits for its job before answering "
                      "'submitted' (quick jobs answer 'done' at once)").tag(config=True)
    token_max_refresh_interval = Float(604800.0, min=0.0, help="Longest /refresh_token extension (s)").tag(config=True)
    announce = Bool(True, help="Print the URL once listening").tag(config=True)
    trusted_proxies = List(Unicode(), help="Addresses of reverse proxies whose X-Forwarded-For is "
                           "believed: anonymous callers are rate-limited per client address").tag(config=True)
    allowed_hosts = List(Unicode(), help="Host names answered (the Host header); default: the loopback "
                         "names when listening on loopback (no DNS rebinding), else any").tag(config=True)
    idle_timeout = Float(30.0, min=1.0, help="Seconds an idle or half-open connection is kept").tag(config=True)
    body_timeout = Float(60.0, min=1.0, help="Seconds a request body may take to arrive").tag(config=True)
    log_requests = Bool(True, help="Log every request on stderr whatever --log-level: method, path, "
                        "status and milliseconds (never the query string, where tokens travel)").tag(config=True)

    @default("allowed_hosts")
    def _default_hosts(self) -> list[str]:
        loopback = ["127.0.0.1", "localhost", "::1"]
        behind_hub = bool(os.environ.get("JUPYTERHUB_SERVICE_URL"))  # the hub's proxy passes the public Host
        return loopback if self.ip in loopback and not behind_hub else []

    aliases = {
        "ip": "MMODAServe.ip",
        "port": "MMODAServe.port",
        "root": "MMODAServe.root",
        "token-secret": "MMODAServe.token_secret",
        "tiers": "MMODAServe.tiers_file",
        "base-url": "MMODAServe.base_url",
        "compute": "JobManager.compute",
        "workers": "JobManager.n_workers",
        "scheduler": "JobManager.scheduler_address",
        "archive": "JobManager.archive_root",
        "log-level": "Application.log_level",
    }

    @default("token_secret")
    def _default_secret(self) -> str:
        return os.environ.get("MMODA_TOKEN_SECRET", "")

    def init_manager(self) -> JobManager:
        """The job manager; as a hub service, e-mails and data as the platform says (hubenv)."""
        from .hubenv import archive_from_env, mail_config

        config = mail_config()
        config.merge(self.config)  # the command line and config file win
        archive = archive_from_env(os.path.join(self.root, "archive-cache"))
        extra = {"archive": archive} if archive is not None else {}
        return JobManager(parent=self, config=config, root=self.root, **extra)

    def init_app(self, manager: JobManager) -> web.Application:
        tiers = TierTable.load(self.tiers_file)
        return make_app(manager, tiers=tiers, token_secret=self.token_secret, base_url=self.base_url,
                        sync_wait=self.sync_wait,
                        mmoda_token_max_refresh_interval=self.token_max_refresh_interval,
                        mmoda_trusted_proxies=list(self.trusted_proxies),
                        mmoda_allowed_hosts=list(self.allowed_hosts))

    async def serve(self) -> None:
        manager = self.init_manager()
        await manager.start()
        app = self.init_app(manager)
        if self.log_requests:
            show_access_log(self.log.handlers[0].formatter if self.log.handlers else None)
        # tornado's own caps sit above the handlers' (base.LIMITS), which answer 413/414/431
        async with serving(app, self.ip, self.port, xheaders=False, idle_connection_timeout=self.idle_timeout,
                           body_timeout=self.body_timeout, max_header_size=1024 * 1024,
                           max_body_size=LIMITS["body"] + 1024 * 1024) as port:
            if self.announce:
                print(f"mmoda serve: listening on http://{self.ip}:{port}{self.base_url}", flush=True)
            if not self.token_secret:
                self.log.warning("no token secret configured: every token will be refused")
            disk = manager.disk_usage()
            budget = manager.retention_max_bytes
            print(f"mmoda serve: disk {disk['products_bytes'] / 1e6:.1f} MB in {disk['jobs']} job folder(s), "
                  f"cache {disk['cache_bytes'] / 1e6:.1f} MB in {disk['cache_entries']} entries; budget "
                  + (f"{budget / 2**30:.1f} GiB" if budget is not None else "none")
                  + " (--JobManager.retention_max_bytes)", flush=True)
            await until_signal()
        if not await manager.stop():
            # a product did not reach a stopping point in time: its job is released in the
            # store and resumes on the next start, so ending here loses nothing
            self.log.warning("mmoda serve: exiting with job threads still running")
            logging.shutdown()
            os._exit(0)
        manager.close()

    def start(self) -> None:
        try:
            asyncio.run(self.serve())
        except StoreError as err:  # a damaged, read-only or log-less store: say which and what to do
            self.log.critical("%s", err)
            sys.exit(2)
