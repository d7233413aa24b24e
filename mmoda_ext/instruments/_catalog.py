"""The catalogue workflow of MMODA: ``selected_catalog`` drives spectra and light curves.

A user runs an image, edits the returned catalogue (``data.dispatcher_catalog_1``: drop rows,
``add_row`` of 9 values) and sends it back as ``selected_catalog`` (the ``ApiCatalog`` JSON),
optionally with ``catalog_selected_objects`` (meta_IDs to keep). ISGRI and JEM-X spectra and
light curves then extract exactly those sources, one product per source, named after it.

:class:`CatalogParam` normalises the JSON into ``[[name, ra, dec, meta_ID], ...]`` so that the job id
depends on what is extracted, not on column order or flags.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import ParameterError
from .params import Param, StringList

__all__ = ["CatalogParam", "catalog_params", "selected_sources", "is_catalogued", "MATCH_RADIUS_DEG"]

#: a detection is named after a catalogue source within this distance (deg)
MATCH_RADIUS_DEG = 0.2
#: sky-model kinds that are simulated but absent from the reference catalogue (found as NEW_k)
UNCATALOGUED = frozenset({"uncatalogued", "uncataloged", "unknown"})

_NAME_COLUMNS = ("src_names", "NAME", "name", "src_name")


@dataclass
class CatalogParam(Param):
    """``selected_catalog``: the dispatcher catalogue JSON (text or dict) → [[name, ra, dec, meta_ID], ...]."""

    kind = "catalog"
    optional: bool = True

    def allowed(self) -> str:
        return ("the catalogue JSON of an image product (ApiCatalog.get_api_dictionary(): "
                "cat_column_names with src_names, ra, dec, and cat_column_list)")

    def parse(self, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null", "{}")):
            return None
        return self.convert(value)

    def convert(self, value: Any) -> list[list[Any]]:
        if isinstance(value, list) and all(isinstance(r, (list, tuple)) and len(r) == 4 for r in value):
            rows = [[str(n), _deg(self.name, a), _deg(self.name, d), int(i)] for n, a, d, i in value]
            return self._checked(rows, value)  # already normalised (a stored request)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ParameterError(self.name, value, self.allowed(), "It is not valid JSON") from None
        if not isinstance(value, dict) or "cat_column_names" not in value or "cat_column_list" not in value:
            raise ParameterError(self.name, value, self.allowed(), "It is not a catalogue")
        names = list(value["cat_column_names"])
        cols = dict(zip(names, value["cat_column_list"], strict=False))
        lon, lat = value.get("cat_lon_name") or "ra", value.get("cat_lat_name") or "dec"
        name_col = next((c for c in _NAME_COLUMNS if c in cols), None)
        if lon not in cols or lat not in cols or name_col is None:
            raise ParameterError(self.name, names, self.allowed(),
                                 f"The catalogue needs the columns src_names, {lon} and {lat}")
        ids = cols.get("meta_ID") or list(range(len(cols[lon])))
        rows = []
        for mid, name, ra, dec in zip(ids, cols[name_col], cols[lon], cols[lat], strict=False):
            rows.append([str(name).strip(), _deg(self.name, ra), _deg(self.name, dec), int(mid)])
        return self._checked(rows, value)

    def _checked(self, rows: list[list[Any]], value: Any) -> list[list[Any]]:
        for row in rows:
            ra, dec = row[1], row[2]
            if not (0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0):
                raise ParameterError(self.name, row[:3], "sources with 0 ≤ ra ≤ 360 and -90 ≤ dec ≤ 90 deg",
                                     f"The position of {row[0]!r} is not on the sky")
        return rows


def _deg(param: str, value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ParameterError(param, value, "coordinates in degrees", "A coordinate is not a number") from None
    if not math.isfinite(out):
        raise ParameterError(param, value, "coordinates in degrees", "A coordinate is not finite")
    return out


def catalog_params() -> list[Param]:
    """The catalogue parameters of every ISGRI and JEM-X spectrum and light curve."""
    return [
        CatalogParam("selected_catalog", default=None,
                     help="Catalogue of an image product (edited or not): one spectrum or light curve "
                          "per source in it, named after it"),
        StringList("catalog_selected_objects", default=None,
                   help="meta_IDs of selected_catalog to keep (comma separated)"),
    ]


def selected_sources(params: dict[str, Any]) -> list[tuple[str, float, float]] | None:
    """(name, ra, dec) of the user's catalogue after ``catalog_selected_objects``; None if none given."""
    rows = params.get("selected_catalog")
    if not rows:
        return None
    keep = params.get("catalog_selected_objects")
    if keep:
        wanted = {int(float(k)) for k in keep}
        rows = [r for r in rows if len(r) > 3 and int(r[3]) in wanted]
        if not rows:
            raise ParameterError("catalog_selected_objects", keep,
                                 "meta_IDs present in selected_catalog", "No source of the catalogue is selected")
    out: list[tuple[str, float, float]] = []
    for name, ra, dec, *_ in rows:
        if name not in {o[0] for o in out}:
            out.append((name, float(ra), float(dec)))
    return out


def is_catalogued(source: Any) -> bool:
    """Whether the analysis knows a sky-model source (kind 'uncatalogued' simulates an unknown one)."""
    return str(getattr(source, "kind", "")).lower() not in UNCATALOGUED
