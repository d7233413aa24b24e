"""MMODA tokens: HS256 JWTs with the dispatcher's claims and role names.

The same tokens work with ``oda_api`` scripts written for MMODA: ``sub`` (the user's
e-mail, which also enters the job id), ``email``, ``name``, ``roles`` (a comma-separated
string or a list), ``exp``, and the e-mail options ``tem``, ``mstout``, ``mssub``,
``intsub``, ``msdone``, ``msfail`` (dispatcher-protocol.md §12). Expired and forged tokens
are refused with the exact sentences the client and MMODA's own tests expect.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable
from typing import Any

import jwt

from ..errors import AccessError, ParameterError

__all__ = [
    "EMAIL_OPTIONS",
    "KNOWN_ROLES",
    "TokenError",
    "decode_token",
    "issue_token",
    "refresh_token",
    "roles_of",
    "subject_of",
    "update_email_options",
]

ALGORITHM = "HS256"

try:  # MMODA's own test key ("secretkey_test") is short; the operator chooses the secret
    from jwt.warnings import InsecureKeyLengthWarning

    warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
except ImportError:  # pragma: no cover - older PyJWT
    pass

#: role names MMODA gives meaning to (dispatcher-protocol.md §13)
KNOWN_ROLES = (
    "general",
    "unige-hpc-full",
    "unige-hpc-extreme",
    "integral-private-qla",
    "integral-public-nrt",
    "integral-realtime",
    "refresh-tokens",
    "oda workflow developer",
    "job manager",
    "space manager",
    "gallery contributor",
    "mmoda-admin",
)

#: e-mail options carried by a token, with MMODA's defaults
EMAIL_OPTIONS: dict[str, Any] = {
    "tem": 1800,
    "mstout": True,
    "mssub": True,
    "intsub": 5,
    "msdone": True,
    "msfail": True,
}

_RELOGIN = (
    "please try to logout and login again. If already logged out, please clean the cookies, "
    "and resubmit you request."
)
EXPIRED_MESSAGE = f"The token provided is expired, {_RELOGIN}"
INVALID_MESSAGE = f"The token provided is not valid, {_RELOGIN}"


#: what the command line and the REST API say (the dispatcher door keeps MMODA's sentences)
SECRET_MISMATCH = (
    "The token's signature does not match this MMODA_TOKEN_SECRET: it was issued with another "
    "secret. `mmoda serve` and `mmoda token issue` must use the same secret: export the same "
    "MMODA_TOKEN_SECRET in both terminals (or pass the same --token-secret / --secret), then issue "
    "a new token."
)
NO_SECRET = ("This server has no token secret, so it refuses every token: start `mmoda serve` with "
             "MMODA_TOKEN_SECRET set to the secret the tokens were issued with.")
MALFORMED = "This is not a MMODA token (not a signed JWT): copy the whole output of `mmoda token issue`."
EXPIRED_DETAIL = "The token expired at {when} UTC: issue a new one with `mmoda token issue`."


class TokenError(AccessError):
    """An expired or invalid token (403, ``RequestNotAuthorized`` on the dispatcher door).

    ``message`` is MMODA's browser sentence (the dispatcher door and ``oda_api`` expect it);
    ``detail`` says what is actually wrong and what to do, for the command line and REST API.
    """

    error_class = "RequestNotAuthorized"

    def __init__(self, message: str, reason: str, detail: str = "") -> None:
        super().__init__(message, parameter="token")
        self.reason = reason
        self.detail = detail or message

    def to_dict(self) -> dict:
        return super().to_dict() | {"error": self.detail}


def issue_token(
    secret: str,
    sub: str,
    *,
    email: str | None = None,
    name: str | None = None,
    roles: Iterable[str] | str = (),
    lifetime: float = 86400.0,
    now: float | None = None,
    **options: Any,
) -> str:
    """A signed token for ``sub`` valid ``lifetime`` seconds (negative: already expired)."""
    if not secret:
        raise ValueError("a token secret is required to issue tokens")
    now = time.time() if now is None else now
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",") if r.strip()]
    claims: dict[str, Any] = {
        "sub": sub,
        "email": email or sub,
        "name": name or sub.split("@")[0],
        "roles": ",".join(roles),
        "iat": int(now),
        "exp": int(now + lifetime),
    }
    claims.update({k: v for k, v in EMAIL_OPTIONS.items()})
    unknown = set(options) - set(EMAIL_OPTIONS) - {"iss", "aud", "mxroomid"}
    if unknown:
        raise ValueError(f"unknown token claims: {sorted(unknown)}")
    claims.update(options)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str, *, leeway: float = 0.0) -> dict[str, Any]:
    """Verify signature and expiry; raise :class:`TokenError` with MMODA's sentences."""
    if not secret:
        raise TokenError(INVALID_MESSAGE, "no secret configured", NO_SECRET)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=leeway,
            options={"require": ["exp"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(exp))) if exp else "?"
        raise TokenError(EXPIRED_MESSAGE, "expired", EXPIRED_DETAIL.format(when=when)) from None
    except jwt.InvalidSignatureError:
        raise TokenError(INVALID_MESSAGE, "signature", SECRET_MISMATCH) from None
    except jwt.DecodeError:
        raise TokenError(INVALID_MESSAGE, "malformed", MALFORMED) from None
    except jwt.PyJWTError:
        raise TokenError(INVALID_MESSAGE, "invalid") from None
    if not (claims.get("sub") or claims.get("email")):
        raise TokenError(INVALID_MESSAGE, "no subject")
    check_claims(claims)
    return claims


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: claim -> (is it well-formed, what is allowed)
_CLAIM_TYPES = {
    "sub": (lambda v: isinstance(v, str) and 0 < len(v) <= 256, "a text of at most 256 characters"),
    "email": (lambda v: isinstance(v, str) and len(v) <= 256, "a text of at most 256 characters"),
    "name": (lambda v: isinstance(v, str) and len(v) <= 256, "a text of at most 256 characters"),
    "roles": (lambda v: isinstance(v, str) or _texts(v), "a comma-separated text or a list of texts"),
    "groups": (_texts, "a list of texts"),
}


def check_claims(claims: dict[str, Any]) -> None:
    """Refuse a correctly signed token whose claims have the wrong shape (403 naming the claim)."""
    for key, (ok, allowed) in _CLAIM_TYPES.items():
        if key in claims and claims[key] is not None and not ok(claims[key]):
            raise TokenError(f"The token's claim '{key}' must be {allowed}; "
                             f"it is a {type(claims[key]).__name__}. {INVALID_MESSAGE}", f"claim {key}")


def roles_of(claims: dict[str, Any]) -> frozenset[str]:
    """The ``roles`` claim as a set, whether a comma-separated string or a list."""
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = roles.split(",")
    return frozenset(str(r).strip() for r in roles if str(r).strip())


def subject_of(claims: dict[str, Any]) -> str:
    """The user id MMODA hashes into job ids: ``sub``, falling back to ``email``."""
    return str(claims.get("sub") or claims.get("email"))


def refresh_token(
    claims: dict[str, Any], secret: str, *, interval: float, max_interval: float = 604800.0
) -> str:
    """A copy of the token expiring ``interval`` seconds later (needs role ``refresh-tokens``)."""
    if "refresh-tokens" not in roles_of(claims):
        raise AccessError(
            "Refreshing a token needs the role 'refresh-tokens', which your token does not have. "
            "Ask the MMODA team if you need long-lived tokens.",
            parameter="token",
        )
    if not 0 < interval <= max_interval:  # also refuses NaN
        raise AccessError(
            f"The refresh interval {interval:g} s is not allowed: it must be positive and at most "
            f"{max_interval:g} s.",
            parameter="refresh_interval",
            value=interval,
        )
    new = dict(claims)
    new["exp"] = int(claims["exp"] + interval)
    return jwt.encode(new, secret, algorithm=ALGORITHM)


def update_email_options(claims: dict[str, Any], secret: str, **options: Any) -> str:
    """A copy of the token with updated e-mail options (``msfail``, ``mssub``, ``msdone``...)."""
    new = dict(claims)
    for key, value in options.items():
        if key not in EMAIL_OPTIONS:
            continue
        if isinstance(EMAIL_OPTIONS[key], bool):
            new[key] = str(value).strip().lower() in ("1", "true", "yes", "on")
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or not 0 <= number <= 10**7:
            raise ParameterError(key, value, "a number of seconds from 0 to 10000000")
        new[key] = number if "." in str(value) else int(number)
    return jwt.encode(new, secret, algorithm=ALGORITHM)
