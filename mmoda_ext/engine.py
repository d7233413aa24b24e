"""The engine: the one object behind every door (CLI, REST API, oda_api API, widgets).

Turning a raw request into validated parameters, checking it against the caller's rights,
and running it live here, so that every door gives the same answers and the same errors.
"""

from __future__ import annotations

from typing import Any

from .access.rights import Rights
from .instruments import get_instrument
from .instruments.base import ComputeContext, Instrument, ProductSet


def resolve_target(raw: dict[str, Any], archive: Any) -> dict[str, Any]:
    """Fill RA/DEC from ``src_name`` when the request names a source but gives no position."""
    raw = dict(raw)
    name = raw.get("src_name")
    if name and raw.get("RA") in (None, "") and raw.get("DEC") in (None, ""):
        coord = archive.resolve_name(str(name))
        raw["RA"], raw["DEC"] = float(coord.ra.deg), float(coord.dec.deg)
    return raw


def prepare(
    instrument: str,
    product: str,
    raw: dict[str, Any],
    rights: Rights,
    archive: Any,
    *,
    allow_unknown: bool = False,
) -> tuple[Instrument, dict[str, Any]]:
    """Parse, resolve and check a request; raise ``PublicError`` before any work if it cannot run."""
    inst = get_instrument(instrument)
    raw = resolve_target(raw, archive) if "RA" in inst.param_set(product).names() else dict(raw)
    params = inst.parse(product, raw, allow_unknown=allow_unknown)
    inst.check(product, params, rights)
    return inst, params


def run(instrument: str, product: str, params: dict[str, Any], ctx: ComputeContext) -> ProductSet:
    """Run a prepared request on a compute context."""
    return get_instrument(instrument).run(product, params, ctx)


def execute(instrument: str, product: str, raw: dict[str, Any], ctx: ComputeContext,
            *, allow_unknown: bool = False) -> ProductSet:
    """Prepare a raw request with the context's rights and archive, then run it (one call)."""
    _, params = prepare(instrument, product, raw, ctx.rights, ctx.archive, allow_unknown=allow_unknown)
    return run(instrument, product, params, ctx)
