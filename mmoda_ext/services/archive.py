"""``mmoda-archive``: the science-window index and per-window data over HTTP, and the guard.

Run by the hub as a managed service (``python -m mmoda_ext.services.archive``). It listens on
127.0.0.1 at the port of ``$JUPYTERHUB_SERVICE_URL`` under ``$JUPYTERHUB_SERVICE_PREFIX`` and is
the only holder of the archive (``$MMODA_ARCHIVE``); user servers and their Dask workers read
through it with :class:`mmoda_ext.archive.remote.RemoteArchive`.

Every request carries a hub token (``Authorization: token <t>``: the user's server token, or
the same token shipped to their Dask workers); :class:`jupyterhub.services.auth.HubAuth` turns it
into the hub user and groups, and the tier table (``$MMODA_TIERS``) into :class:`Rights`. The
guard, whatever the caller's client does:

* a **selection** (``select``: automatic, ``windows``: an ``scw_list``) is one request: at most
  the tier's science windows, and at most the tier's new selections per hour and user
  (repeating one is free); selecting private windows needs the private-data right; with an
  ``osa_version``, OSA11.2-beta needs the restricted-OSA right and OSA11.0 data from rev 1626;
* a window's **data** are served only for windows the caller selected (in the last
  ``grant_seconds``), so fetching files one by one cannot go around the limits; private
  windows only to the private tier. The grants and the new selections of the last
  ``rate_window`` are kept in ``grants_file`` (SQLite in the hub's state folder), so a restart
  of the service neither breaks running jobs nor resets a user's hourly budget;
* what the index says about a window (id, pointing, time, ``private`` flag) is public, as the
  INTEGRAL observation log is: ``cone`` and ``windows`` show it so that the analysis can say
  how many private windows it left out, but that grants no data.

Routes (under the prefix): ``GET api/info``, ``GET api/sky`` (the sky model, ECSV),
``POST api/select``, ``POST api/windows``, ``POST api/cone``,
``GET api/data/<isgri|jemx1|jemx2>/<scw_id>.fits``. Errors are JSON
``{"error", "parameter", "value", "status", "limit", "how_to_get_more"}``.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tornado import web
from traitlets import Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from ..access.rights import Rights
from ..access.tiers import TierTable
from ..archive.scw import parse_scw_id
from ..archive.store import Archive
from ..errors import AccessError, ParameterError, PublicError
from ..server.serving import HubServiceApp, access_log, serving, until_signal

__all__ = ["ArchiveCore", "ArchiveService", "main"]

INSTRUMENTS = ("isgri", "jemx1", "jemx2")
_CHUNK = 1 << 20


class RateLimited(PublicError):
    """Too many new selections in the window (HTTP 429)."""

    def __init__(self, message: str, value: int) -> None:
        super().__init__(message, parameter="requests_per_hour", value=value, status=429)


def _number(body: dict, name: str, *, required: bool = True, default: Any = None) -> Any:
    value = body.get(name, default)
    if value is None:
        if required:
            raise ParameterError(name, None, "a number", "It is missing")
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(name, value, "a number") from None
    if not math.isfinite(out):
        raise ParameterError(name, value, "a finite number")
    return out


class ArchiveCore(LoggingConfigurable):
    """The policy and the data behind the handlers: rights, limits, selections, files."""

    service_tiers = Dict(
        {"mmoda": ["registered", "hpc", "hpc-extreme", "private"]}, config=True,
        help="Hub services allowed to read the archive, and the tiers whose rights each gets "
             "(the public dispatcher enforces its own callers' tiers before asking). Services "
             "not listed are refused.")
    rate_window = Float(3600.0, min=1.0, config=True,
                        help="Window (s) of the per-user limit of new selections (requests_per_hour).")
    grant_seconds = Float(86400.0, min=1.0, config=True,
                          help="How long (s) the data of a selected window stay downloadable by "
                               "the caller who selected it.")
    generate_threads = Integer(2, min=1, config=True,
                               help="Threads generating per-window data files on demand.")
    grants_file = Unicode(config=True,
                          help="SQLite file keeping the grants (who selected which window, until "
                               "when) and the new selections of the last rate_window, so that a "
                               "restart of the service neither breaks running jobs nor resets the "
                               "users' hourly budgets; "
                               "default $MMODA_HUB_STATE/mmoda-archive/grants.sqlite, '' = memory only.")

    @default("grants_file")
    def _default_grants_file(self) -> str:
        state = os.environ.get("MMODA_HUB_STATE")
        return str(Path(state) / "mmoda-archive" / "grants.sqlite") if state else ""

    def __init__(self, archive: Archive, tiers: TierTable, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.archive = archive
        self.tiers = tiers
        self._lock = threading.Lock()
        self._requests: dict[str, deque[tuple[float, str]]] = {}
        self._grants: dict[str, dict[str, float]] = {}
        self._making: dict[tuple[str, str], asyncio.Future] = {}
        self._pool = ThreadPoolExecutor(self.generate_threads, thread_name_prefix="mmoda-archive-gen")
        self._db: sqlite3.Connection | None = None
        if self.grants_file:
            self._open_grants(Path(self.grants_file))

    def _open_grants(self, path: Path) -> None:
        """Open (or create) the grants file and load the grants still valid."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            db.execute("CREATE TABLE IF NOT EXISTS grants (user TEXT NOT NULL, scw_id TEXT NOT NULL, "
                       "until REAL NOT NULL, PRIMARY KEY (user, scw_id))")
            # the new selections of the last rate_window: a restart keeps each user's hourly budget
            db.execute("CREATE TABLE IF NOT EXISTS requests (user TEXT NOT NULL, at REAL NOT NULL, "
                       "key TEXT NOT NULL)")
            now = time.time()
            db.execute("DELETE FROM grants WHERE until < ?", (now,))
            db.execute("DELETE FROM requests WHERE at < ?", (now - self.rate_window,))
            rows = db.execute("SELECT user, scw_id, until FROM grants").fetchall()
            made = db.execute("SELECT user, at, key FROM requests ORDER BY at").fetchall()
        except sqlite3.Error as exc:
            raise RuntimeError(f"the archive service's grants file {str(path)!r} cannot be used "
                               f"({exc}); fix or remove it (ArchiveCore.grants_file)") from exc
        for user, scw_id, until in rows:
            self._grants.setdefault(user, {})[scw_id] = until
        for user, at, key in made:
            self._requests.setdefault(user, deque()).append((at, key))
        self._db = db
        self.log.info("archive grants: %d kept in %s (%d selections of the last %g s)",
                      len(rows), path, len(made), self.rate_window)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- who is asking ---------------------------------------------------------------------
    def rights_for(self, model: dict[str, Any]) -> Rights:
        """Rights of a hub user or service model (from ``HubAuth.user_for_token``)."""
        if model.get("kind") == "service":
            names = self.service_tiers.get(model["name"])
            if names is None:
                raise AccessError(f"The hub service '{model['name']}' may not read the archive.")
            groups: set[str] = set()
            roles: set[str] = set()
            for name in names:
                try:
                    t = self.tiers.tier(name)
                except KeyError:
                    continue
                groups |= t.groups
                roles |= t.roles
            return self.tiers.rights(f"service:{model['name']}", groups=groups, roles=roles)
        return self.tiers.rights(model["name"], groups=model.get("groups") or ())

    # -- limits ----------------------------------------------------------------------------
    def _count_request(self, rights: Rights, key: str) -> None:
        """One new selection for this caller; a repeat within the window is free."""
        now = time.time()
        with self._lock:
            log = self._requests.setdefault(rights.user, deque())
            while log and log[0][0] < now - self.rate_window:
                log.popleft()
            if any(k == key for _, k in log):
                return
            if len(log) >= rights.requests_per_hour:
                wait_min = max(1, math.ceil((log[0][0] + self.rate_window - now) / 60))
                raise RateLimited(
                    f"Too many archive requests: you made {len(log)} new selections in the last "
                    f"{self.rate_window / 3600:g} hour(s), and your tier '{rights.tier}' allows "
                    f"{rights.requests_per_hour} per hour. Repeating an earlier selection is free; "
                    f"for a new one, try again in {wait_min} minute(s). "
                    + (rights.how_to_get_more or "Ask the MMODA team for a higher tier."),
                    rights.requests_per_hour)
            log.append((now, key))
            if self._db is not None:  # kept across restarts of the service
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.execute("DELETE FROM requests WHERE user = ? AND at < ?",
                                     (rights.user, now - self.rate_window))
                    self._db.execute("INSERT INTO requests VALUES (?, ?, ?)", (rights.user, now, key))

    def _grant(self, rights: Rights, windows: list[Any]) -> None:
        now = time.time()
        until = now + self.grant_seconds
        with self._lock:
            grants = self._grants.setdefault(rights.user, {})
            for scw_id in [k for k, t in grants.items() if t < now]:
                del grants[scw_id]
            granted = [w.scw_id for w in windows if rights.private_data or not w.private]
            for scw_id in granted:
                grants[scw_id] = until
            if self._db is not None:  # kept across restarts of the service
                with self._db:
                    self._db.execute("BEGIN")
                    self._db.execute("DELETE FROM grants WHERE user = ? AND until < ?", (rights.user, now))
                    self._db.executemany("INSERT OR REPLACE INTO grants VALUES (?, ?, ?)",
                                         [(rights.user, scw_id, until) for scw_id in granted])

    def _granted(self, rights: Rights, scw_id: str) -> bool:
        with self._lock:
            return self._grants.get(rights.user, {}).get(scw_id, 0.0) >= time.time()

    def _refuse_private(self, rights: Rights, what: str) -> AccessError:
        return AccessError(
            f"{what} private science windows: your tier '{rights.tier}' does not have the "
            f"private-data right. Use public data (integral_data_rights='public'). "
            + rights.how_to_get("private_data"),
            parameter="integral_data_rights", value="all-private")

    def _check_osa(self, rights: Rights, body: dict[str, Any], windows: list[Any] | None) -> None:
        """An optional ``osa_version``: restricted versions need the right, OSA11.0 rev >= 1626."""
        version = body.get("osa_version")
        if version is None:
            return
        from ..instruments._integral_rules import check_osa_version, check_osa_windows
        from ..science.ibis import OSA_VERSIONS

        if version not in OSA_VERSIONS:
            raise ParameterError("osa_version", version, ", ".join(OSA_VERSIONS))
        check_osa_version({"osa_version": version}, rights)
        if windows is not None:
            check_osa_windows({"osa_version": version, "T1": body.get("t1")}, windows)

    # -- the index -------------------------------------------------------------------------
    def info(self, rights: Rights) -> dict[str, Any]:
        d = self.archive.describe()
        d.pop("root", None)
        d.pop("sky_files", None)
        d["caller"] = {"user": rights.user, "tier": rights.tier, "max_scw": rights.max_scw,
                       "requests_per_hour": rights.requests_per_hour,
                       "private_data": rights.private_data,
                       "how_to_get_more": rights.how_to_get_more}
        return d

    def sky_ecsv(self) -> tuple[str, str]:
        """(the sky model as ECSV, its digest): clients analyse with the model the data follow."""
        buf = io.StringIO()
        self.archive.sky.to_table().write(buf, format="ascii.ecsv")
        return buf.getvalue(), self.archive.sky.digest

    def select(self, rights: Rights, body: dict[str, Any]) -> dict[str, Any]:
        """MMODA's automatic selection (``ScwIndex.select``), within the caller's limits."""
        ra, dec, radius = (_number(body, k) for k in ("ra", "dec", "radius"))
        t1, t2 = body.get("t1"), body.get("t2")
        if t1 is None or t2 is None:
            raise ParameterError("t1" if t1 is None else "t2", None, "a time (IJD number or ISO UTC)",
                                 "It is missing")
        include_private = bool(body.get("include_private", False))
        maxp = body.get("max_pointings")
        if maxp is not None:
            try:
                maxp = int(maxp)
            except (TypeError, ValueError):
                raise ParameterError("max_pointings", maxp, "an integer >= 1") from None
            rights.check_scw_count(maxp, "max_pointings")
        if include_private and not rights.private_data:
            raise self._refuse_private(rights, "You asked to select")
        self._check_osa(rights, body, None)
        windows = self.archive.index.select(ra, dec, radius, t1, t2, maxp,
                                            include_private=include_private, seed=body.get("seed"))
        if maxp is None:
            rights.check_scw_count(len(windows), "max_pointings")
        self._check_osa(rights, body, windows)
        self._count_request(rights, json.dumps(["select", ra, dec, radius, t1, t2, maxp,
                                                include_private, body.get("seed")], default=str))
        self._grant(rights, windows)
        return {"windows": [w.to_dict() for w in windows]}

    def windows(self, rights: Rights, body: dict[str, Any]) -> dict[str, Any]:
        """The windows of an ``scw_list``; data are granted for those the caller may read."""
        ids = body.get("scw_list")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ParameterError("scw_list", ids, "a list of science-window ids")
        rights.check_scw_count(len(ids), "scw_list")
        self._check_osa(rights, body, None)
        windows = self.archive.index.get_many(ids)
        self._check_osa(rights, body, windows)
        self._count_request(rights, json.dumps(["windows", sorted(ids)]))
        self._grant(rights, windows)
        return {"windows": [w.to_dict() for w in windows]}

    def cone(self, rights: Rights, body: dict[str, Any]) -> dict[str, Any]:
        """Index rows in a cone and time range (metadata only: counts, no data granted)."""
        ra, dec, radius = (_number(body, k) for k in ("ra", "dec", "radius"))
        rows = self.archive.index.cone(ra, dec, radius, body.get("t1"), body.get("t2"),
                                       bool(body.get("include_private", False)))
        return {"rows": [int(r) for r in rows]}

    # -- data ------------------------------------------------------------------------------
    async def data_path(self, rights: Rights, instrument: str, scw_id: str):
        """The file of a window the caller selected, generated on demand (in a thread)."""
        if instrument not in INSTRUMENTS:
            raise ParameterError("instrument", instrument, ", ".join(INSTRUMENTS))
        parse_scw_id(scw_id, "scw_id")
        scw = self.archive.index.get(scw_id)
        if scw.private and not rights.private_data:
            raise self._refuse_private(rights, f"The data of {scw_id} are private: you asked for")
        if not self._granted(rights, scw_id):
            raise AccessError(
                f"The data of {scw_id} are served only after it was selected (api/select or "
                f"api/windows) by you in the last {self.grant_seconds / 3600:g} h: a selection "
                f"holds at most {rights.max_scw} science windows for your tier '{rights.tier}'. "
                "Select it first.", parameter="scw_id", value=scw_id)
        key = (instrument, scw_id)
        fut = self._making.get(key)
        if fut is None:  # one generation per file, however many callers wait for it
            loop = asyncio.get_running_loop()
            fut = loop.run_in_executor(self._pool, self.archive.ensure_window, instrument, scw)
            self._making[key] = fut
            fut.add_done_callback(lambda _: self._making.pop(key, None))
        return await asyncio.shield(fut)


# ------------------------------------------------------------------------------------------
# handlers: authenticate, one core call, serialise
# ------------------------------------------------------------------------------------------

class BaseHandler(web.RequestHandler):
    """JSON errors; every request authenticated with its hub token."""

    rights: Rights

    @property
    def core(self) -> ArchiveCore:
        return self.settings["archive_core"]

    def _request_summary(self) -> str:
        # tornado's error log line, without the query string (a token may travel there)
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    async def prepare(self) -> None:
        hub_auth = self.settings["hub_auth"]
        token = hub_auth.get_token(self, in_cookie=False)
        model = await hub_auth.user_for_token(token, sync=False) if token else None
        if not model:
            raise PublicError(
                "The archive needs a hub token: send 'Authorization: token <your JupyterHub "
                "token>' (inside a user server: $JUPYTERHUB_API_TOKEN).", status=403)
        scopes = hub_auth.access_scopes
        if scopes and not hub_auth.check_scopes(scopes, model):
            raise PublicError(
                f"This token lacks the scope {', '.join(sorted(scopes))}: ask for a token with it "
                "(user servers get it from the hub configuration).", status=403)
        self.rights = self.core.rights_for(model)

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ParameterError("body", self.request.body[:80], "a JSON object") from None
        if not isinstance(data, dict):
            raise ParameterError("body", data, "a JSON object")
        return data

    def write_json(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, PublicError):
            return self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
        return super()._handle_request_exception(e)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, PublicError):
            data = exc.to_dict()
            rights = getattr(self, "rights", None)
            if rights is not None and status_code in (403, 429):
                limit = {"requests_per_hour": rights.requests_per_hour,
                         "max_pointings": rights.max_scw, "scw_list": rights.max_scw}
                data["limit"] = limit.get(exc.parameter)
                data["how_to_get_more"] = rights.how_to_get_more
        else:
            data = {"error": self._reason, "status": status_code}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class InfoHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(self.core.info(self.rights))


class SkyHandler(BaseHandler):
    def get(self) -> None:
        text, digest = self.core.sky_ecsv()
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Sky-Digest", digest)
        self.finish(text)


class SelectHandler(BaseHandler):
    def post(self) -> None:
        self.write_json(self.core.select(self.rights, self.body()))


class WindowsHandler(BaseHandler):
    def post(self) -> None:
        self.write_json(self.core.windows(self.rights, self.body()))


class ConeHandler(BaseHandler):
    def post(self) -> None:
        self.write_json(self.core.cone(self.rights, self.body()))


class DataHandler(BaseHandler):
    async def get(self, instrument: str, scw_id: str) -> None:
        path = await self.core.data_path(self.rights, instrument, scw_id)
        self.set_header("Content-Type", "application/fits")
        self.set_header("Content-Length", str(path.stat().st_size))
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()


default_handlers = [
    (r"api/info", InfoHandler),
    (r"api/sky", SkyHandler),
    (r"api/select", SelectHandler),
    (r"api/windows", WindowsHandler),
    (r"api/cone", ConeHandler),
    (r"api/data/([a-z0-9]+)/([0-9.]+)\.fits", DataHandler),
]


def make_app(core: ArchiveCore, hub_auth: Any, base_url: str = "/") -> web.Application:
    prefix = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    return web.Application([(prefix + p, h) for p, h in default_handlers],
                           archive_core=core, hub_auth=hub_auth, log_function=access_log)


class ArchiveService(HubServiceApp):
    """The ``mmoda-archive`` hub service."""

    name = "mmoda-archive"
    description = "MMODA archive service: science-window index and per-window data, guarded by tier"
    classes = [ArchiveCore]

    default_port = 8790
    default_prefix = "/services/mmoda-archive/"
    archive_root = Unicode(config=True, help="Archive folder; default $MMODA_ARCHIVE.")
    tiers_file = Unicode(config=True, help="Tier table; default $MMODA_TIERS, else hub_config/tiers.yaml.")
    auth_cache_seconds = Integer(config=True, min=0,
                                 help="How long a token's hub identity (and groups) is cached; "
                                      "default $MMODA_AUTH_REFRESH_AGE (the hub's refresh), at most 60.")
    hub_api_url = Unicode(config=True, help="Hub API; default $JUPYTERHUB_API_URL.")
    access_scopes = List(Unicode(), config=True,
                         help="Scopes a token must hold; default access:services!service=<service name>.")

    aliases = {"port": "ArchiveService.port", "ip": "ArchiveService.ip",
               "archive": "ArchiveService.archive_root", "tiers": "ArchiveService.tiers_file",
               "base-url": "ArchiveService.base_url", "log-level": "Application.log_level"}

    @default("archive_root")
    def _archive_root(self) -> str:
        return os.environ.get("MMODA_ARCHIVE", "")

    @default("tiers_file")
    def _tiers_file(self) -> str:
        return os.environ.get("MMODA_TIERS", "")

    @default("auth_cache_seconds")
    def _auth_cache_seconds(self) -> int:
        return min(60, int(os.environ.get("MMODA_AUTH_REFRESH_AGE") or 60))

    @default("hub_api_url")
    def _hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    @default("access_scopes")
    def _access_scopes(self) -> list[str]:
        name = os.environ.get("JUPYTERHUB_SERVICE_NAME", "mmoda-archive")
        return [f"access:services!service={name}"]

    def init_hub_auth(self) -> Any:
        from jupyterhub.services.auth import HubAuth

        return HubAuth(api_url=self.hub_api_url, cache_max_age=self.auth_cache_seconds,
                       access_scopes=set(self.access_scopes))

    async def serve(self) -> None:
        archive = Archive(root=self.archive_root or None)
        core = ArchiveCore(archive, TierTable.load(self.tiers_file or None), parent=self)
        app = make_app(core, self.init_hub_auth(), self.base_url)
        async with serving(app, self.ip, self.port, xheaders=True) as port:
            self.log.info("mmoda-archive: http://%s:%d%s (archive %s)", self.ip, port, self.base_url,
                          archive.root)
            loop = asyncio.get_running_loop()
            loop.run_in_executor(None, lambda: (archive.index, archive.sky))  # warm up in the background
            await until_signal()
        core.close()

    def start(self) -> None:
        asyncio.run(self.serve())


main = ArchiveService.launch_instance

if __name__ == "__main__":
    main()
