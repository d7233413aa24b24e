"""``mmoda-dashboards``: the only public way to a Dask dashboard, for the cluster's owner only.

The gateway's proxy serves every cluster's dashboard at ``/services/dask-gateway/clusters/<name>/``
with no authentication at all (platform-stack.md §3.7, pitfall 5): anyone who learns a cluster
name could watch another user's work. How it is closed (agreed with ``hub_config/jupyterhub_config.py``):

* The hub's proxy routes the more specific prefix ``/services/dask-gateway/clusters/`` to this
  service instead of the gateway (``c.Proxy.extra_routes``); the gateway's proxy itself listens
  on 127.0.0.1 only. This service answers that prefix with a redirect to its own
  ``/services/mmoda-dashboards/<name>/...``, so the ``dashboard_link`` the gateway reports (and
  that dask-labextension opens) keeps working, through the guard.
* ``/services/mmoda-dashboards/<name>/...`` authenticates the caller with the hub (``HubOAuth``:
  a browser logs in through the hub; an API client sends ``Authorization: token <hub token>``),
  then asks the gateway's API, *with the caller's own token*, for the cluster: the gateway
  answers 200 only to its owner. Only then are the page, its assets and the bokeh websocket
  proxied to the gateway's internal route, without the caller's cookies or token.

So another user gets 403, an anonymous browser is sent to the hub's login, and no route on the
hub's public port reaches a dashboard without this check.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web, websocket
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from ..server.serving import HubServiceApp, access_log, serving, until_signal

__all__ = ["DashboardGuard", "DashboardsService", "main"]

_NAME = r"([A-Za-z0-9._-]+)"
#: hop-by-hop and identity headers never passed on (either way)
_DROP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-authorization",
         "te", "trailer", "content-length", "cookie", "authorization", "host", "set-cookie"}


class DashboardGuard(LoggingConfigurable):
    """Who owns which cluster (asked to the gateway with the caller's token), and where it is."""

    gateway_url = Unicode(config=True, help="The gateway's proxy (internal), e.g. "
                          "http://127.0.0.1:<port>/services/dask-gateway; default from "
                          "$MMODA_GATEWAY_PORT.")
    owner_cache_seconds = Float(30.0, min=0.0, config=True,
                                help="How long a (token, cluster) ownership answer is reused.")

    @default("gateway_url")
    def _gateway_url(self) -> str:
        return f"http://127.0.0.1:{os.environ.get('MMODA_GATEWAY_PORT', '8000')}/services/dask-gateway"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owners: dict[tuple[str, str], tuple[float, bool]] = {}
        self.http = AsyncHTTPClient()

    async def owns(self, token: str, cluster: str) -> bool:
        """Whether the holder of ``token`` owns ``cluster`` (the gateway says 200 only to them)."""
        key = (hashlib.sha256(token.encode()).hexdigest(), cluster)
        hit = self._owners.get(key)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        resp = await self.http.fetch(
            f"{self.gateway_url}/api/v1/clusters/{cluster}",
            headers={"Authorization": f"jupyterhub {token}"}, raise_error=False, request_timeout=20)
        ok = resp.code == 200
        if resp.code not in (200, 401, 403, 404):
            self.log.warning("gateway answered %s for cluster %s", resp.code, cluster)
        self._owners[key] = (time.monotonic() + self.owner_cache_seconds, ok)
        return ok

    def upstream(self, cluster: str, rest: str, query: str = "", scheme: str = "http") -> str:
        base = self.gateway_url.replace("http", scheme, 1)
        return f"{base}/clusters/{cluster}/{rest}" + (f"?{query}" if query else "")


class _Guarded(HubOAuthenticated):
    """Authenticate (cookie or token) and check the caller owns the cluster."""

    hub_user: dict[str, Any] | None = None

    @property
    def guard(self) -> DashboardGuard:
        return self.settings["dashboard_guard"]

    def _request_summary(self) -> str:
        # tornado's error log line, without the query string (tokens may travel there)
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    async def check_owner(self, cluster: str) -> None:
        user = await self.hub_auth.get_user(self, sync=False)
        if not user:
            if self.hub_auth.get_token(self, in_cookie=False) or self.request.headers.get("Upgrade"):
                raise web.HTTPError(403, "a valid hub token is needed")
            self.redirect(self.get_login_url())  # a browser: log in through the hub
            raise web.Finish()
        token = self.hub_auth.get_token(self)
        if not await self.guard.owns(token, cluster):
            raise web.HTTPError(
                403, f"cluster {cluster} does not belong to {user['name']}: a Dask dashboard is "
                     "shown only to the owner of its cluster")
        self.hub_user = user


class ProxyHandler(_Guarded, web.RequestHandler):
    """HTTP: the dashboard's pages, JSON and static files."""

    async def _proxy(self, cluster: str, rest: str) -> None:
        await self.check_owner(cluster)
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in _DROP}
        body = self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None
        req = HTTPRequest(self.guard.upstream(cluster, rest, self.request.query),
                          method=self.request.method, headers=headers, body=body,
                          follow_redirects=False, decompress_response=False, request_timeout=60)
        try:
            resp = await self.guard.http.fetch(req, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise web.HTTPError(502, f"the dashboard of {cluster} does not answer: {exc}") from None
        self.set_status(resp.code, resp.reason)
        for k, v in resp.headers.get_all():
            if k.lower() in _DROP:
                continue
            if k.lower() == "location":
                v = self._local_location(cluster, v)
            self.add_header(k, v) if k.lower() in ("vary",) else self.set_header(k, v)
        if resp.body:
            self.write(resp.body)
        self.finish()

    def _local_location(self, cluster: str, location: str) -> str:
        """A redirect of the dashboard, kept under this service's prefix."""
        path = urlparse(location).path if location.startswith("http") else location
        upstream_prefix = urlparse(self.guard.upstream(cluster, "")).path
        if path.startswith(upstream_prefix):
            return self.settings["prefix"] + f"{cluster}/" + path[len(upstream_prefix):]
        if path.startswith("/"):
            return self.settings["prefix"] + f"{cluster}" + path
        return location

    get = post = _proxy  # type: ignore[assignment]


class WebSocketProxy(_Guarded, websocket.WebSocketHandler):
    """The bokeh websocket (``.../ws``), passed both ways once the owner is checked."""

    upstream_conn: websocket.WebSocketClientConnection | None = None

    async def get(self, cluster: str, rest: str) -> None:
        await self.check_owner(cluster)
        url = self.guard.upstream(cluster, rest, self.request.query, scheme="ws")
        # bokeh sends its session token as a subprotocol ("bokeh", <token>): pass them on
        protocols = [p.strip() for p in
                     self.request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        try:
            self.upstream_conn = await websocket.websocket_connect(
                url, max_message_size=64 << 20, subprotocols=protocols or None)
        except (OSError, HTTPClientError) as exc:
            raise web.HTTPError(502, f"the dashboard of {cluster} does not answer: {exc}") from None
        await super().get(cluster, rest)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.upstream_conn.selected_subprotocol if self.upstream_conn else None

    def open(self, *args: Any) -> None:
        asyncio.ensure_future(self._pump())

    async def _pump(self) -> None:
        conn = self.upstream_conn
        while conn is not None:
            msg = await conn.read_message()
            if msg is None:
                break
            try:
                await self.write_message(msg, binary=isinstance(msg, bytes))
            except websocket.WebSocketClosedError:
                break
        self.close()

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream_conn is not None:
            await self.upstream_conn.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream_conn is not None:
            self.upstream_conn.close()
            self.upstream_conn = None


class GatewayPathRedirect(web.RequestHandler):
    """``/services/dask-gateway/clusters/<name>/...`` (routed here by the hub) -> the guard."""

    def get(self, cluster: str, rest: str) -> None:
        query = f"?{self.request.query}" if self.request.query else ""
        self.redirect(self.settings["prefix"] + f"{cluster}/{rest}{query}")

    head = get


def make_app(guard: DashboardGuard, hub_auth: HubOAuth, prefix: str,
             gateway_prefix: str = "/services/dask-gateway/") -> web.Application:
    prefix = "/" + prefix.strip("/") + "/"
    return web.Application(
        [
            (prefix + "oauth_callback", HubOAuthCallbackHandler),
            (prefix + _NAME + r"/((?:.*/)?ws)", WebSocketProxy),
            (prefix + _NAME + r"/(.*)", ProxyHandler),
            (gateway_prefix + "clusters/" + _NAME + r"/?(.*)", GatewayPathRedirect),
        ],
        dashboard_guard=guard, hub_auth=hub_auth, prefix=prefix,
        cookie_secret=secrets.token_bytes(32), log_function=access_log,
        websocket_max_message_size=64 << 20,
    )


class DashboardsService(HubServiceApp):
    """The ``mmoda-dashboards`` hub service."""

    name = "mmoda-dashboards"
    description = "Dask dashboards through the hub, for each cluster's owner only"
    classes = [DashboardGuard]

    default_port = 8791
    default_prefix = "/services/mmoda-dashboards/"

    async def serve(self) -> None:
        guard = DashboardGuard(parent=self)
        # one instance: the OAuth callback handler uses HubOAuth.instance() too
        hub_auth = HubOAuth.instance(parent=self, cache_max_age=min(
            60, int(os.environ.get("MMODA_AUTH_REFRESH_AGE") or 60)))
        app = make_app(guard, hub_auth, self.base_url)
        async with serving(app, self.ip, self.port, xheaders=True) as port:
            self.log.info("mmoda-dashboards on http://%s:%d%s -> %s", self.ip, port, self.base_url,
                          guard.gateway_url)
            await until_signal()

    def start(self) -> None:
        asyncio.run(self.serve())


main = DashboardsService.launch_instance

if __name__ == "__main__":
    main()
