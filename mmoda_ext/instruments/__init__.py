"""Instrument registry.

Each module of this package that defines instruments lists them in ``__instruments__``;
they are discovered here, so adding an instrument touches no shared file.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from functools import cache

from ..errors import ParameterError
from .base import Instrument, Product, ProductFile, ProductSet

__all__ = ["Instrument", "Product", "ProductFile", "ProductSet", "debug_mode", "get_instrument", "registry"]


def debug_mode() -> bool:
    """MMODA's own switch for its test instruments: ``DISPATCHER_DEBUG_MODE=yes``."""
    return os.environ.get("DISPATCHER_DEBUG_MODE", "").strip().lower() in ("yes", "true", "1")


def registry() -> dict[str, Instrument]:
    """Every instrument; modules marked ``__debug_only__`` (``empty*``) only in debug mode."""
    return _registry(debug_mode())


@cache
def _registry(debug: bool) -> dict[str, Instrument]:
    found: dict[str, Instrument] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in ("base", "params") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if getattr(module, "__debug_only__", False) and not debug:
            continue
        for cls in getattr(module, "__instruments__", ()):
            inst = cls()
            found[inst.name] = inst
    return dict(sorted(found.items()))


def get_instrument(name: str) -> Instrument:
    try:
        return registry()[name]
    except KeyError:
        raise ParameterError(
            "instrument", name, "one of " + ", ".join(registry()), "Unknown instrument"
        ) from None
