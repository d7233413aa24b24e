"""What every MMODA handler shares: the manager, the caller's rights, JSON answers.

The handlers are thin (authenticate, one manager call, serialise). The objects they use live
in the tornado settings, put there by whoever mounts ``default_handlers`` (``mmoda serve``,
the jupyter-server extension, the public service):

``mmoda_manager``       the :class:`~mmoda_ext.jobs.manager.JobManager`
``mmoda_tiers``         the :class:`~mmoda_ext.access.tiers.TierTable`
``mmoda_token_secret``  the HS256 secret of MMODA tokens (may be empty: tokens refused)
``mmoda_identity``      optional ``callable(handler) -> Rights | None`` for callers without a
                        token (e.g. the hub user of a jupyter-server extension)
``mmoda_trusted_proxies`` addresses whose ``X-Forwarded-For`` is believed (rate limits)
``mmoda_allowed_hosts`` ``Host`` names served (empty: any well-formed host)
``mmoda_limits``        overrides of :data:`LIMITS` (bytes of URL, headers, body, one value)

Input is bounded before any handler runs: a URL, the headers, the body or one argument value
beyond :data:`LIMITS` is answered 414/431/413 naming the limit, JSON nested deeper than
:data:`MAX_JSON_DEPTH` is a 400, and no answer repeats more than 200 characters of input.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from tornado import web

from ..access.rights import Rights
from ..access.tiers import TierTable
from ..access.tokens import decode_token
from ..errors import PublicError
from .encode import json_safe

log = logging.getLogger("mmoda_ext.server")

#: default input limits in bytes (settings ``mmoda_limits`` overrides them)
LIMITS = {
    "url": 128 * 1024,  # a GET with ~7000 science windows
    "headers": 32 * 1024,
    "body": 16 * 1024 * 1024,
    "value": 2 * 1024 * 1024,  # one argument value (a long scw_list)
}
#: deepest JSON accepted in a body or a parameter (MMODA's structured parameters need ~4)
MAX_JSON_DEPTH = 32
#: what a session id may be: MMODA's are 16 upper-case letters and digits
SESSION_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_HOST_RE = re.compile(r"(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"')


def json_depth(text: str) -> int:
    """How deep the brackets of a JSON text nest (strings ignored), without parsing it."""
    depth = deepest = 0
    for ch in re.findall(r"[\[\]{}]", _STRING_RE.sub("", text)):
        depth = depth + 1 if ch in "[{" else depth - 1
        deepest = max(deepest, depth)
    return deepest


def loads_bounded(text: str | bytes, parameter: str) -> Any:
    """``json.loads`` that refuses deep nesting with a 400 naming ``parameter`` (raises
    ``ValueError`` for text that is not JSON)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if json_depth(text) > MAX_JSON_DEPTH:
        raise PublicError(f"'{parameter}' is JSON nested deeper than {MAX_JSON_DEPTH} levels; "
                          "flatten it.", parameter=parameter, status=400)
    return json.loads(text)


def check_session_id(value: Any) -> str | None:
    """A session id as given, or None; 400 naming ``session_id`` if it is not one."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not SESSION_RE.fullmatch(value):
        raise PublicError("'session_id' must be 1 to 128 letters, digits or _.:- (MMODA's are 16 "
                          "upper-case letters and digits).", parameter="session_id",
                          value=value, status=400)
    return value


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

    def limit(self, name: str) -> int:
        return int((self.settings.get("mmoda_limits") or {}).get(name, LIMITS[name]))

    def prepare(self) -> None:
        """Refuse oversized or misdirected requests before any work (a subclass calls super)."""
        req = self.request
        if len(req.uri or "") > self.limit("url"):
            raise web.HTTPError(414, f"The URL is {len(req.uri)} bytes; at most {self.limit('url')} "
                                "are accepted. Send long parameters (scw_list) in a POST body.")
        size = sum(len(k) + len(v) + 4 for k, v in req.headers.get_all())
        if size > self.limit("headers"):
            raise web.HTTPError(431, f"The request headers are {size} bytes; at most "
                                f"{self.limit('headers')} are accepted.")
        if len(req.body or b"") > self.limit("body"):
            raise web.HTTPError(413, f"The request body is {len(req.body)} bytes; at most "
                                f"{self.limit('body')} are accepted.")
        for name, values in req.arguments.items():
            for v in values:
                if len(v) > self.limit("value"):
                    raise web.HTTPError(413, f"The value of '{name[:64]}' is {len(v)} bytes; at most "
                                        f"{self.limit('value')} are accepted for one parameter.")
        host = req.host or ""
        allowed = self.settings.get("mmoda_allowed_hosts") or ()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not _HOST_RE.fullmatch(host) or (allowed and name.strip("[]") not in allowed):
            raise web.HTTPError(400, f"The Host header {host[:100]!r} is not served here"
                                + (f"; served: {', '.join(allowed)}." if allowed else "."))

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
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
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

    def allowed_methods(self) -> list[str]:
        """The HTTP methods this handler implements (the ``Allow`` header of a 405)."""
        base = web.RequestHandler
        return [m for m in self.SUPPORTED_METHODS
                if getattr(type(self), m.lower(), None) is not getattr(base, m.lower(), None)]

    def public_error(self, err: PublicError) -> None:
        self.write_json(err.to_dict(), status=err.status)

    def log_exception(self, typ, value, tb) -> None:  # never log request arguments (tokens)
        if isinstance(value, web.HTTPError):
            return
        log.error("uncaught %s in %s %s", typ.__name__ if typ else "error", self.request.method,
                  self.request.path, exc_info=(typ, value, tb))
