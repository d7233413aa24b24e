"""What every MMODA handler shares: the manager, the caller's rights, JSON answers.

The handlers are thin (authenticate, one manager call, serialise). The objects they use live
in the tornado settings, put there by whoever mounts ``default_handlers`` (``mmoda serve``,
the jupyter-server extension, the public service):

``mmoda_manager``       the :class:`~mmoda_ext.jobs.manager.JobManager`
``mmoda_tiers``         the :class:`~mmoda_ext.access.tiers.TierTable`
``mmoda_token_secret``  the HS256 secret of MMODA tokens (may be empty: tokens refused)
``mmoda_identity``      optional ``callable(handler) -> Rights | None`` for callers without a
                        token (e.g. the hub user of a jupyter-server extension)
"""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado import web

from ..access.rights import Rights
from ..access.tiers import TierTable
from ..access.tokens import decode_token
from ..errors import PublicError
from .encode import json_safe

log = logging.getLogger("mmoda_ext.server")


class MMODAHandler(web.RequestHandler):
    """Base of the REST and dispatcher-compatible handlers."""

    @property
    def manager(self):
        return self.settings["mmoda_manager"]

    @property
    def tiers(self) -> TierTable:
        return self.settings.get("mmoda_tiers") or TierTable.load()

    @property
    def token_secret(self) -> str:
        return self.settings.get("mmoda_token_secret") or ""

    def check_xsrf_cookie(self) -> None:  # API: token or identity, never a cookie session
        return None

    # -- request -------------------------------------------------------------------------

    def request_token(self) -> str | None:
        """A token from the ``Authorization: Bearer``/``token`` header (scheme in any case,
        as RFC 7235 says) or the ``token`` argument."""
        scheme, _, value = self.request.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() in ("bearer", "token") and value.strip():
            return value.strip()
        value = self.get_argument("token", None)
        return value if value not in (None, "", "None", "\x00") else None

    def client_address(self) -> str:
        """The caller's address: the peer, or, when the peer is a trusted proxy (setting
        ``mmoda_trusted_proxies``), the last address it forwarded that is not itself a proxy."""
        peer = self.request.remote_ip or "unknown"
        trusted = set(self.settings.get("mmoda_trusted_proxies") or ())
        if peer not in trusted:
            return peer
        forwarded = [a.strip() for a in self.request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
        for addr in reversed(forwarded):
            if addr not in trusted:
                return addr[:64]
        real = self.request.headers.get("X-Real-Ip", "").strip()
        return real[:64] or peer

    def claims_for(self, token: str | None) -> dict[str, Any] | None:
        """Verified claims of ``token`` (raises ``TokenError``), or None without a token."""
        if not token:
            return None
        return decode_token(token, self.token_secret)

    def rights_for(self, claims: dict[str, Any] | None) -> Rights:
        if claims is not None:
            return self.tiers.for_claims(claims)
        identity = self.settings.get("mmoda_identity")
        if identity is not None:
            rights = identity(self)
            if rights is not None:
                return rights
        return self.tiers.anonymous()

    def current_rights(self) -> Rights:
        return self.rights_for(self.claims_for(self.request_token()))

    # -- answers -------------------------------------------------------------------------

    def write_json(self, obj: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(json_safe(obj), allow_nan=False))

    def write_text(self, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
        self.set_header("Content-Type", content_type)
        self.finish(text)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError):
            message = exc.log_message or self._reason
        elif exc is not None:
            log.error("unexpected error in %s %s", self.request.method, self.request.path,
                      exc_info=kwargs.get("exc_info"))
            message = "internal error; the team can see the details in the server log"
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "status": status_code}))

    def public_error(self, err: PublicError) -> None:
        self.write_json(err.to_dict(), status=err.status)

    def log_exception(self, typ, value, tb) -> None:  # never log request arguments (tokens)
        if isinstance(value, web.HTTPError):
            return
        log.error("uncaught %s in %s %s", typ.__name__ if typ else "error", self.request.method,
                  self.request.path, exc_info=(typ, value, tb))
