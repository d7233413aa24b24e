"""Job ids: sha256 of the canonical JSON of the normalised request and the caller.

``oda_api`` treats a job id as opaque; what it relies on is that an identical request gives
the same id (a repeat is answered from the stored job) and a different request a different
id. MMODA's own dispatcher hashes ``sorted()`` of every value, which sorts a string's
*characters*: ``T1=2016-02-01, RA=83.633`` and ``T1=2016-01-02, RA=83.363`` then share a job
and the second caller gets the first one's products. Here the whole normalised request is
written as canonical JSON (sorted keys, no whitespace, exact float repr) and hashed with
sha256, so two ids are equal only if the requests are (to 128 bits).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = ["DROPPED_KEYS", "ID_LENGTH", "canonical_json", "job_id", "hashable_params"]

#: request keys that never enter the job id (they change between polls of one job)
DROPPED_KEYS = frozenset(
    {
        "session_id", "job_id", "token", "dry_run", "oda_api_version", "api", "off_line",
        "query_status", "async_dispatcher",
    }
)

#: hex digits of a job id (128 bits of the sha256)
ID_LENGTH = 32


def _canonical(o: Any) -> Any:
    """A JSON-ready copy of ``o`` where equal values have one spelling."""
    if isinstance(o, dict):
        return {str(k): _canonical(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_canonical(v) for v in o]
    if isinstance(o, (set, frozenset)):
        return sorted((_canonical(v) for v in o), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(o, bool) or o is None or isinstance(o, str):
        return o
    if isinstance(o, int):
        return int(o)
    if isinstance(o, float) or hasattr(o, "item"):  # numpy scalars too
        v = o.item() if hasattr(o, "item") else o
        if isinstance(v, float):
            if not math.isfinite(v):
                return {"__float__": repr(v)}
            return int(v) if v.is_integer() and abs(v) < 2**53 else v
        return _canonical(v)
    return {"__" + type(o).__name__ + "__": str(o)}


def canonical_json(o: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, UTF-8, ``1.0`` written as ``1``."""
    return json.dumps(_canonical(o), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def hashable_params(params: dict[str, Any], sub: str | None = None) -> dict[str, Any]:
    """The dict that is hashed: ``params`` plus ``sub``, minus volatile keys and ``None`` values."""
    out = {k: v for k, v in params.items() if k not in DROPPED_KEYS and v is not None}
    if sub:
        out["sub"] = sub
    return out


def job_id(params: dict[str, Any], sub: str | None = None) -> str:
    """The job id of a normalised request (``analysis_parameters``) made by ``sub``.

    ``params`` should include ``instrument``, ``product_type`` and ``query_type``; ``sub`` is
    the token's subject (an anonymous request passes ``None``). The caller is part of the
    hashed object, never concatenated text, so no request of one caller can take the id of
    another caller's.
    """
    text = canonical_json({"request": hashable_params(params), "caller": sub or None})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]
