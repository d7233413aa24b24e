"""The small base classes every instrument plugs into.

An :class:`Instrument` groups :class:`Product` s. A product declares its parameters (a
:class:`~.params.ParamSet`) and runs on a :class:`ComputeContext`, which gives it the
archive, an output folder, a per-item map with a streaming reduce (Dask underneath) and a
progress callback. Products are written as files (FITS, PNG) and described by
:class:`ProductFile` records, so every door (CLI, REST, oda_api, widgets) serves the same
thing.

Override points
---------------
``Product.params``      product-specific parameters (added to the instrument's common ones)
``Product.check``       cross-field validation and access checks, before any work
``Product.run``         the computation; returns a :class:`ProductSet`
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..access.rights import Rights
from .params import Float, Param, ParamSet, String, TimeParam

__all__ = [
    "COMMON_PARAMS",
    "PASSTHROUGH",
    "ComputeContext",
    "Instrument",
    "Product",
    "ProductFile",
    "ProductSet",
    "progress_span",
]

#: Keys the dispatcher protocol accepts on every request without declaring them.
PASSTHROUGH = frozenset(
    {
        "instrument", "query_status", "query_type", "product_type", "session_id", "token",
        "api", "oda_api_version", "off_line", "job_id", "async_dispatcher",
        "allow_unknown_args", "catalog_selected_objects", "run_asynch", "dry_run",
        "user_catalog", "selected_catalog", "time_bin_format", "energy_units",
        "src_name_format", "return_progress", "p_list",
    }
)


def common_params() -> list[Param]:
    """Parameters every MMODA product has (dispatcher-protocol §10.1)."""
    return [
        String("src_name", default="1E 1740.7-2942", help="Source name (resolved when RA/DEC are not given)"),
        Float("RA", default=265.97845833, unit="deg", min=0.0, max=360.0, help="Right ascension (J2000)"),
        Float("DEC", default=-29.74516667, unit="deg", min=-90.0, max=90.0, help="Declination (J2000)"),
        TimeParam("T1", default="2017-03-06T13:26:48.000", help="Start of the time interval"),
        TimeParam("T2", default="2017-03-06T15:32:27.000", help="End of the time interval"),
    ]


COMMON_PARAMS = common_params


@dataclass
class ProductFile:
    """One product on disk: a FITS file, its PNG preview, and what it is."""

    name: str
    kind: str
    fits: Path | None = None
    png: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "fits": self.fits.name if self.fits else None,
            "png": self.png.name if self.png else None,
            "meta": self.meta,
        }


@dataclass
class ProductSet:
    """Everything one request produced."""

    products: list[ProductFile] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "products": [p.to_dict() for p in self.products],
            "messages": self.messages,
            "meta": self.meta,
        }

    def find(self, kind: str) -> list[ProductFile]:
        return [p for p in self.products if p.kind == kind]


class ComputeContext(Protocol):
    """What a product sees while it runs (implemented in ``mmoda_ext.jobs``)."""

    archive: Any
    outdir: Path
    rights: Rights

    def map_reduce(
        self,
        func: Callable[[Any], Any],
        items: Iterable[Any],
        combine: Callable[[Any, Any], Any],
        initial: Any = None,
        label: str = "",
    ) -> Any:
        """Run ``func`` on each item in parallel and fold results with ``combine`` as they come."""

    def progress(self, fraction: float, message: str = "") -> None:
        """Report progress in [0, 1]."""

    def check(self) -> None:
        """Raise if the job was cancelled or the server stops (call it inside any long wait)."""


class Product:
    """One product of an instrument, e.g. ``isgri_image``."""

    name: str = ""
    description: str = ""
    #: the dispatcher's query name (``/api/meta-data``); empty means ``<name>_query``
    query_name: str = ""

    #: product-specific parameters; instantiated per call so defaults cannot be shared
    def params(self) -> list[Param]:
        return []

    def check(self, params: dict[str, Any], rights: Rights) -> None:
        """Refuse early what cannot work or is not allowed (raise ``PublicError``)."""

    def run(self, params: dict[str, Any], ctx: ComputeContext) -> ProductSet:  # pragma: no cover
        raise NotImplementedError


class Instrument:
    """An instrument: a name, common parameters and its products."""

    name: str = ""
    description: str = ""
    #: products keyed by name, filled by subclasses
    products: dict[str, Product] = {}
    #: the dispatcher's source and instrument query names (``/api/meta-data``, as MMODA's plugins);
    #: an empty instrument query name means ``<name>_instrument_query``
    source_query_name: str = "src_query"
    instrument_query_name: str = ""

    def params(self) -> list[Param]:
        """Instrument-wide parameters besides the common ones."""
        return []

    def param_set(self, product: str) -> ParamSet:
        prod = self.product(product)
        seen: dict[str, Param] = {}
        for p in [*common_params(), *self.params(), *prod.params()]:
            seen[p.name] = p  # later declarations override defaults (e.g. radius)
        return ParamSet(list(seen.values()))

    def product(self, name: str) -> Product:
        from ..errors import ParameterError

        try:
            return self.products[name]
        except KeyError:
            raise ParameterError(
                "product_type", name, "one of " + ", ".join(sorted(self.products)),
                f"Instrument {self.name} has no such product",
            ) from None

    def parse(self, product: str, raw: dict[str, Any], *, allow_unknown: bool = False) -> dict[str, Any]:
        """Validate and normalise a request for ``product``."""
        return self.param_set(product).parse(raw, allow_unknown=allow_unknown, passthrough=PASSTHROUGH)

    def check(self, product: str, params: dict[str, Any], rights: Rights) -> None:
        self.product(product).check(params, rights)

    def run(self, product: str, params: dict[str, Any], ctx: ComputeContext) -> ProductSet:
        return self.product(product).run(params, ctx)

    def spec(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "products": {
                name: {
                    "description": prod.description,
                    "parameters": self.param_set(name).spec(),
                }
                for name, prod in self.products.items()
            },
        }


class progress_span:
    """Map a ``map_reduce``'s 0–1 progress into [lo, hi] of the whole request (a context manager:
    a product with several passes reports one bar, not one per pass)."""

    def __init__(self, ctx: Any, lo: float, hi: float) -> None:
        self.ctx, self.lo, self.hi = ctx, lo, hi

    def __enter__(self):
        orig = self.ctx.progress
        self.had = "progress" in vars(self.ctx)
        self.orig = orig
        self.ctx.progress = lambda f, m="": orig(self.lo + (self.hi - self.lo) * f, m)
        return self

    def __exit__(self, *exc):
        if self.had:
            self.ctx.progress = self.orig
        else:
            del self.ctx.progress
