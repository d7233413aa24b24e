"""MMODA job ids: a stable hash of the normalised request and the user.

This reproduces the dispatcher's algorithm byte for byte (dispatcher-protocol.md §7,
``cdci_data_analysis/analysis/hash.py``), so that ``oda_api`` clients see the same job id
for the same request, and two users never share one (the token's ``sub`` is hashed in).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["DROPPED_KEYS", "make_hash", "job_id", "hashable_params"]

#: request keys that never enter the job id (they change between polls of one job)
DROPPED_KEYS = frozenset(
    {
        "session_id", "job_id", "token", "dry_run", "oda_api_version", "api", "off_line",
        "query_status", "async_dispatcher",
    }
)


def _fh(x: Any) -> str:
    # sorted() makes the hash independent of key order (and sorts a string's characters)
    return hashlib.md5(json.dumps(sorted(x)).encode()).hexdigest()[:16]


def make_hash(o: Any) -> str:
    """The dispatcher's ``make_hash``: 16 hex digits, independent of dict key order."""
    if isinstance(o, (set, tuple, list)):
        return _fh(tuple(make_hash(e) for e in o))
    if isinstance(o, dict):
        return make_hash(tuple(o.items()))
    return _fh(json.dumps(o))


def hashable_params(params: dict[str, Any], sub: str | None = None) -> dict[str, Any]:
    """The dict that is hashed: ``params`` plus ``sub``, minus volatile keys and ``None`` values."""
    out = {k: v for k, v in params.items() if k not in DROPPED_KEYS and v is not None}
    if sub:
        out["sub"] = sub
    return out


def job_id(params: dict[str, Any], sub: str | None = None) -> str:
    """The job id of a normalised request (``analysis_parameters``) made by ``sub``.

    ``params`` must include ``instrument``, ``product_type`` and ``query_type``, as the
    dispatcher's ``analysis_parameters`` do; ``sub`` is the token's subject (an anonymous
    request passes ``None``).
    """
    return make_hash(hashable_params(params, sub))
