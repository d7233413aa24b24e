"""Acting on a running platform as its users and its operator would, over HTTP only.

Mixed into :class:`~mmoda_ext.platform.launcher.Platform`: log in through the provider's own
form (real redirects and form posts, cookies kept), spawn and stop servers, mint user tokens
and change a user's claims at the development provider. Used by ``mmoda platform``, the hub
tests and ``benchmarks/bench_hub.py``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin

import httpx

__all__ = ["LoginError", "PlatformClient"]


class LoginError(RuntimeError):
    """A login did not reach the hub; the message says at which step and what answered."""


class PlatformClient:
    """HTTP helpers; needs ``hub_url``, ``idp_url`` and ``platform_token`` (the hub's
    ``mmoda-platform`` service token: spawns servers, mints tokens, reads users)."""

    hub_url: str
    idp_url: str
    platform_token: str

    # ---- the operator's side (service token) -----------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A hub REST call (``/hub/api`` + ``path``) with the platform's service token."""
        headers = {"Authorization": f"token {self.platform_token}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.hub_url}/hub/api{path}", headers=headers,
                             timeout=kwargs.pop("timeout", 60), **kwargs)

    def user_model(self, username: str) -> dict[str, Any]:
        r = self.api("GET", f"/users/{username}")
        r.raise_for_status()
        return r.json()

    def user_token(self, username: str, scopes: list[str] | None = None,
                   expires_in: int = 3600) -> str:
        """A new API token of ``username`` (the user's own scopes unless ``scopes``)."""
        body: dict[str, Any] = {"note": "mmoda platform", "expires_in": expires_in}
        if scopes is not None:
            body["scopes"] = scopes
        r = self.api("POST", f"/users/{username}/tokens", json=body)
        if r.status_code != 201:
            raise LoginError(f"token for {username!r}: HTTP {r.status_code} {r.text[:300]}")
        return r.json()["token"]

    def spawn(self, username: str, timeout: float = 180) -> str:
        """Start ``username``'s server (the user must have logged in once) and wait until it is
        ready; returns its URL."""
        r = self.api("POST", f"/users/{username}/server")
        if r.status_code not in (201, 202, 400):  # 400: already running
            raise LoginError(f"spawn of {username!r}: HTTP {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.user_model(username).get("servers", {}).get("")
            if server is None:  # a failed spawn removes the server
                raise LoginError(f"the server of {username!r} stopped while starting "
                                 f"(HTTP {r.status_code} {r.text[:200]})")
            if server.get("ready"):
                return f"{self.hub_url}{server['url']}"
            time.sleep(0.3)
        raise LoginError(f"the server of {username!r} was not ready within {timeout:.0f} s")

    def stop_server(self, username: str, timeout: float = 60) -> None:
        """Stop ``username``'s server and wait until it is gone."""
        self.api("DELETE", f"/users/{username}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.user_model(username).get("servers"):
                return
            time.sleep(0.3)
        raise LoginError(f"the server of {username!r} did not stop within {timeout:.0f} s")

    def set_claims(self, sub: str, claims: dict[str, Any]) -> None:
        """Replace a user's claims at the development provider (e.g. remove a group)."""
        r = httpx.put(f"{self.idp_url}/users/{sub}", json={"sub": sub, **claims}, timeout=30)
        if r.status_code not in (200, 204):
            raise LoginError(f"PUT /users/{sub} at the provider: HTTP {r.status_code} {r.text[:200]}")

    # ---- the user's side (browser-like) --------------------------------------------------
    def login(self, username: str, next_url: str = "/hub/home") -> httpx.Client:
        """Log in as ``username`` through the provider's own form, as a browser does.

        Returns an ``httpx.Client`` holding the hub's cookies (``base_url`` = the hub). The
        steps: the hub's login redirects to the provider's authorize URL; its form (one button
        per user) posts ``sub`` back to the same URL; the provider redirects to the hub's
        callback, which sets the login cookie.
        """
        client = httpx.Client(base_url=self.hub_url, timeout=60, follow_redirects=False)
        try:
            r = client.get("/hub/oauth_login", params={"next": next_url})
            if r.status_code != 302 or not r.headers["location"].startswith(self.idp_url):
                raise LoginError(f"/hub/oauth_login did not redirect to the provider: "
                                 f"HTTP {r.status_code} {r.headers.get('location')}")
            authorize = r.headers["location"]
            form = client.get(authorize)
            if form.status_code != 200 or 'name="sub"' not in form.text:
                raise LoginError(f"the provider's form did not show: HTTP {form.status_code}")
            r = client.post(authorize, data={"sub": username})
            callback = urljoin(authorize, r.headers.get("location", ""))
            if r.status_code != 302 or "/hub/oauth_callback" not in callback:
                raise LoginError(f"the provider did not send {username!r} back to the hub: "
                                 f"HTTP {r.status_code} {r.text[:200]}")
            r = client.get(callback)
            if r.status_code != 302:
                raise LoginError(f"the hub refused {username!r} at the callback: "
                                 f"HTTP {r.status_code} {r.text[:300]}")
            if not any(c.name == "jupyterhub-hub-login" for c in client.cookies.jar):
                raise LoginError(f"the hub set no login cookie for {username!r}")
        except BaseException:
            client.close()
            raise
        return client
