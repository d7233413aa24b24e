"""The jupyter-server extension ``mmoda_ext``: MMODA in every user server.

It mounts the one list of routes :data:`mmoda_ext.server.app.default_handlers` (REST API and the
dispatcher-compatible door) under ``<base_url>mmoda/``, over a :class:`~mmoda_ext.jobs.manager.
JobManager` whose jobs and products live in the user's home (``~/.mmoda/jobs``).

Who is calling
--------------
Every route requires jupyter-server authentication (the hub's OAuth cookie or token under
JupyterHub, the server token on a laptop). The caller's rights are resolved on every request
from jupyter-server's identity provider: under the hub, ``current_user.hub_user`` (name and
groups as the hub knows them now, so a group removed at the provider lowers the tier after the
hub's refresh); without a hub, the local user with ``mmoda run``'s limits.

The dispatcher door (``/run_analysis`` and friends, for ``oda_api``) also accepts the
``ODA_TOKEN`` this extension issues at start: an HS256 JWT signed with a random secret that
lives only in this process's memory. It proves only "the owner of this server"; the groups are
still read from the hub. The extension exports ``ODA_TOKEN`` and ``DISPATCHER_URL`` (the
server-local URL of its own door) into ``os.environ`` so that kernels started later inherit
them and an unchanged script, ``DispatcherAPI(url=os.environ["DISPATCHER_URL"])`` with
``token=discover_token()``, reaches its owner's extension (``oda_api`` 1.3.5 reads
``ODA_TOKEN`` and decodes the JWT client-side, without the secret, checking only ``exp``).

Where it computes
-----------------
Under the hub (``DASK_GATEWAY__ADDRESS`` set) on the user's own Dask Gateway cluster
(:mod:`mmoda_ext.jobs.gateway`); otherwise on the embedded ``LocalCluster``. Data come through
the archive service when ``MMODA_ARCHIVE_URL`` is set, else from the local archive. E-mails go
to ``MMODA_USER_EMAIL`` through ``MMODA_SMTP_HOST``/``MMODA_SMTP_PORT`` with the
``EmailNotifier`` of ``mmoda serve``.
"""

from __future__ import annotations

import dataclasses
import getpass
import importlib.util
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Config

from ..access.rights import Rights
from ..access.tiers import TierTable
from ..access.tokens import TokenError, decode_token, issue_token
from ..jobs.manager import JobManager
from . import daskpane, skyview
from .app import default_handlers
from .hubenv import archive_from_env, mail_config
from .oda_api import DispatcherHandler

__all__ = ["MMODAExtension", "mount"]

#: the extension's routes, under the server's base_url
PREFIX = "mmoda"
#: the same routes, server-local, outside base_url (no user name in the path)
ALIAS = "mmoda-local"
#: the URL paths oda_api 1.3.5 accepts in a dispatcher URL (oda_api.misc_helpers.regex_url)
ODA_API_PATH = re.compile(r"[a-z0-9/-]*", re.IGNORECASE)


class _ServerAuth:
    """Mixed in front of each MMODA handler: jupyter-server authentication, hub identity.

    ``prepare`` resolves the caller once per request (jupyter-server's identity provider, or
    this server's ODA token on the dispatcher door) into ``self._mmoda_rights``; the MMODA
    handlers then read it through ``rights_for``.
    """

    _mmoda_rights: Rights | None = None
    _mmoda_owner_token: bool = False

    @property
    def extension(self) -> MMODAExtension:
        return self.settings["mmoda_extension"]

    def get_login_url(self) -> str:  # an API: 403, never a redirect to a login page
        raise web.HTTPError(403, "Authentication is required (a hub or server token, or the "
                                 "ODA_TOKEN of this server on the dispatcher door).")

    def _own_token(self) -> str | None:
        """The request's token if this server issued it (the ODA_TOKEN), else None."""
        token = self.request_token()
        if not token:
            return None
        try:
            decode_token(token, self.token_secret)
        except TokenError:
            return None
        return token

    async def prepare(self) -> None:
        door = isinstance(self, DispatcherHandler)
        self._mmoda_owner_token = door and self._own_token() is not None
        await JupyterHandler.prepare(self, _redirect_to_login=False)
        if self._mmoda_owner_token:
            self._mmoda_rights = await self.extension.owner_rights()
        elif self.current_user is not None:
            self._mmoda_rights = self.extension.rights_of(self.current_user)
        else:
            raise web.HTTPError(403, "Authentication is required (a hub or server token, or the "
                                     "ODA_TOKEN of this server on the dispatcher door).")
        # then the MMODA handler's own prepare, if any (input bounds, unknown API routes)
        mro = type(self).__mro__
        for klass in mro[mro.index(_ServerAuth) + 1:]:
            if klass is JupyterHandler:
                break
            if "prepare" in vars(klass):
                result = klass.prepare(self)
                if result is not None:
                    await result
                break

    def check_xsrf_cookie(self) -> None:
        if self._mmoda_owner_token:
            return None  # the ODA token in the request authenticates it; no cookie is involved
        return JupyterHandler.check_xsrf_cookie(self)

    def claims_for(self, token: str | None) -> dict[str, Any] | None:
        """This server's ODA token, or None: any other token authenticated jupyter-server."""
        if not token or not self._mmoda_owner_token:
            return None
        return decode_token(token, self.token_secret)

    def rights_for(self, claims: dict[str, Any] | None) -> Rights:
        if self._mmoda_rights is None:  # pragma: no cover - prepare() always sets it
            raise web.HTTPError(403)
        return self._mmoda_rights

    def write_json(self, obj: Any, status: int = 200) -> None:
        """A job's status also says where it computes (cluster and dashboard link)."""
        info = getattr(self.manager, "compute_info", None)
        if info is not None:
            obj = _with_compute(obj, info)
        super().write_json(obj, status)


def _with_compute(obj: Any, info: Any) -> Any:
    """Add ``info(job_id)`` to REST job models and to the door's ``job_monitor``."""
    if isinstance(obj, list):
        return [_with_compute(o, info) for o in obj]
    if not isinstance(obj, dict):
        return obj
    monitor = obj.get("job_monitor")
    if isinstance(monitor, dict) and monitor.get("job_id"):
        extra = info(monitor["job_id"])
        if extra:
            obj = {**obj, "job_monitor": {**monitor, **extra}}
    elif "job_id" in obj and "status" in obj:
        extra = info(obj["job_id"])
        if extra:
            obj = {**obj, "compute": extra}
    return obj


def _wrap(handler: type[web.RequestHandler]) -> type[web.RequestHandler]:
    """``handler`` behind jupyter-server's authentication (same class, same behaviour)."""
    attrs: dict[str, Any] = {"__module__": __name__, "__doc__": handler.__doc__}
    if issubclass(handler, DispatcherHandler):
        # the door may be called with only the ODA token: prepare() then checks it
        for method in ("get", "post"):
            if getattr(handler, method) is not getattr(web.RequestHandler, method):
                attrs[method] = allow_unauthenticated(getattr(handler, method))
    return type(handler.__name__, (_ServerAuth, handler, JupyterHandler), attrs)


def mount(prefix: str = PREFIX) -> list[tuple[str, type[web.RequestHandler]]]:
    """``default_handlers`` under ``prefix`` (relative to the server's base_url)."""
    return [(url_path_join("/", prefix, path), _wrap(handler)) for path, handler in default_handlers]


class MMODAExtension(ExtensionApp):
    """MMODA's REST API and dispatcher door in a Jupyter server, on the user's own compute."""

    name = "mmoda_ext"
    description = "MMODA Hub in JupyterLab: REST API and oda_api door under <base_url>mmoda/"
    load_other_extensions = True
    classes = [JobManager]

    root = Unicode(help="Folder of the user's jobs and products (default ~/.mmoda/jobs)").tag(config=True)
    tiers_file = Unicode(None, allow_none=True,
                         help="Tier table (default $MMODA_TIERS, else hub_config/tiers.yaml)").tag(config=True)
    sync_wait = Float(2.0, min=0.0, help="Seconds a new dispatcher request waits for its job "
                      "before answering 'submitted'").tag(config=True)
    token_lifetime = Float(30 * 86400.0, min=60.0,
                           help="Lifetime (s) of the ODA_TOKEN issued at start; the secret dies "
                                "with the server anyway").tag(config=True)
    hub_identity_max_age = Integer(
        10, min=1, help="Seconds the hub's answer about a caller (name, groups) is reused by "
                        "jupyter-server's identity provider (HubAuth.cache_max_age, 300 by default "
                        "in JupyterHub): a group removed at the provider lowers the tier after the "
                        "hub's auth_refresh_age plus this").tag(config=True)
    archive_cache = Unicode(help="Per-window cache of data read from the archive service "
                                 "(default ~/.mmoda/archive-cache)").tag(config=True)

    @default("root")
    def _default_root(self) -> str:
        return str(Path.home() / ".mmoda" / "jobs")

    @default("archive_cache")
    def _default_archive_cache(self) -> str:
        return str(Path.home() / ".mmoda" / "archive-cache")

    @default("tiers_file")
    def _default_tiers(self) -> str | None:
        return os.environ.get("MMODA_TIERS") or None

    # -- identity ---------------------------------------------------------------------

    @property
    def hub_auth(self) -> Any:
        """The hub's ``HubOAuth`` of jupyter-server's identity provider (None without a hub)."""
        return getattr(self.serverapp.identity_provider, "hub_auth", None)

    @property
    def owner(self) -> str:
        return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()

    def rights_of(self, user: Any) -> Rights:
        """Rights of a jupyter-server user: the hub user's groups, or the local user."""
        hub_user = getattr(user, "hub_user", None)
        if hub_user is None:
            return dataclasses.replace(Rights.local(self.owner), email=os.environ.get("MMODA_USER_EMAIL"))
        return self.hub_rights(hub_user)

    def hub_rights(self, model: dict[str, Any]) -> Rights:
        name = model["name"]
        # the provider's address is known for the owner only (set by the hub's auth_state_hook)
        email = os.environ.get("MMODA_USER_EMAIL") if name == self.owner else None
        return self.tiers.rights(name, groups=model.get("groups") or (), email=email or None)

    async def owner_rights(self) -> Rights:
        """Rights of this server's owner, groups from the hub (the ODA token carries none)."""
        hub_auth = self.hub_auth
        if hub_auth is None:
            return dataclasses.replace(Rights.local(self.owner), email=os.environ.get("MMODA_USER_EMAIL"))
        model = await hub_auth.user_for_token(hub_auth.api_token, sync=False)
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(403, "The hub does not know this server's owner any more.")
        return self.hub_rights(model)

    # -- set-up -----------------------------------------------------------------------

    def manager_config(self) -> Config:
        """The job manager's configuration: the platform's e-mail settings, then this config."""
        products_url = None
        public = os.environ.get("JUPYTERHUB_PUBLIC_URL", "").rstrip("/")
        if public:
            prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or self.serverapp.base_url
            products_url = public + url_path_join(prefix, PREFIX)
        cfg = mail_config(products_url)
        cfg.merge(self.config)
        return cfg

    def initialize_settings(self) -> None:
        hub_auth = self.hub_auth
        if hub_auth is not None and hub_auth.cache_max_age > self.hub_identity_max_age:
            # groups are read per request: keep the identity provider's cache short
            hub_auth.cache_max_age = self.hub_identity_max_age
            hub_auth.cache.max_age = hub_auth.cache.purge_interval = self.hub_identity_max_age
        self.tiers = TierTable.load(self.tiers_file)
        self.token_secret = secrets.token_hex(32)
        Path(self.root).mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"root": self.root}
        archive = archive_from_env(self.archive_cache)
        if archive is not None:
            kwargs["archive"] = archive
        manager_class = JobManager
        if os.environ.get("DASK_GATEWAY__ADDRESS"):
            from ..jobs.gateway import GatewayJobManager as manager_class
        self.manager = manager_class(parent=self, config=self.manager_config(), **kwargs)
        self.oda_token = issue_token(self.token_secret, self.owner, email=os.environ.get("MMODA_USER_EMAIL"),
                                     name=self.owner, lifetime=self.token_lifetime)
        self.settings.update(
            mmoda_extension=self,
            mmoda_manager=self.manager,
            mmoda_tiers=self.tiers,
            mmoda_token_secret=self.token_secret,
            mmoda_sync_wait=self.sync_wait,
        )
        # the instruments' modules (astropy, scipy...) load in the background: the panels' first
        # GET /instruments otherwise waits ~2 s for them, after the user has opened a notebook
        from ..instruments import registry

        threading.Thread(target=registry, name="mmoda-instruments-import", daemon=True).start()

    def initialize_handlers(self) -> None:
        self.handlers.extend(mount(PREFIX))
        self.handlers.extend((url_path_join("/", PREFIX, p), h) for p, h in skyview.default_handlers)
        # the same routes at a server-local alias without the user's name (DISPATCHER_URL when
        # the base URL has characters oda_api refuses, e.g. /user/jane.doe/); outside base_url,
        # so the hub's proxy never routes there: only kernels and processes on this machine
        web_app = self.serverapp.web_app
        web_app.add_handlers(".*$", mount(ALIAS))
        if os.environ.get("DASK_GATEWAY__ADDRESS") and importlib.util.find_spec("dask_labextension"):
            daskpane.install(web_app, self.serverapp.base_url)

    def dispatcher_url(self) -> str:
        """The server-local URL of this extension's dispatcher door (what kernels call):
        under the server's base URL, or at the alias when oda_api would refuse that path."""
        app = self.serverapp
        host = app.ip if app.ip not in ("", "0.0.0.0", "::", "localhost") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if app.certfile else "http"
        path = url_path_join(app.base_url, PREFIX)
        if not ODA_API_PATH.fullmatch(path):
            path = "/" + ALIAS
        return f"{scheme}://{host}:{app.port}{path}"

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # after the port is bound and before any kernel starts: kernels inherit these
        os.environ["ODA_TOKEN"] = self.oda_token
        os.environ["DISPATCHER_URL"] = self.dispatcher_url()
        await self.manager.start()
        clusters = getattr(self.manager, "clusters", None)
        if clusters is not None:  # the jobs' gateway cluster shows in JupyterLab's Dask pane
            loop = IOLoop.current()
            clusters.listeners.append(
                lambda name: loop.add_callback(daskpane.show_in_lab, name, self.log))
        self.log.info("MMODA extension: jobs in %s, dispatcher door at %s", self.root,
                      os.environ["DISPATCHER_URL"])

    async def stop_extension(self) -> None:
        await self.manager.stop()
        self.manager.close()

