"""Declarative request parameters, in the spirit of dask-gateway's ``options.py``.

Each instrument product declares typed fields with units, defaults and bounds. The same
declaration drives validation (``ParamSet.parse``), the JSON spec served by the REST API,
the CLI flags and the widget panels. Parsed values are JSON-friendly (floats, ints,
strings, lists) so that they hash into a stable job id.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from astropy.time import Time

from ..errors import ParameterError

__all__ = [
    "Param",
    "Float",
    "Integer",
    "String",
    "Select",
    "TimeParam",
    "StringList",
    "ScwList",
    "Json",
    "ParamSet",
    "to_time",
]


@dataclass
class Param:
    """Base class: override ``convert`` and ``kind``."""

    name: str
    default: Any = None
    help: str = ""
    unit: str | None = None
    optional: bool = False
    kind = "string"

    def convert(self, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def allowed(self) -> str:
        return "a value"

    def parse(self, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
            if self.default is None and not self.optional:
                raise ParameterError(self.name, value, self.allowed(), "It is required")
            return self.default
        return self.convert(value)

    def spec(self) -> dict:
        return {
            "name": self.name,
            "type": self.kind,
            "default": self.default,
            "unit": self.unit,
            "help": self.help,
            "optional": self.optional,
            "allowed": self.allowed(),
        }


@dataclass
class Float(Param):
    min: float | None = None
    max: float | None = None
    kind = "float"

    def allowed(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            return f"a number from {self.min:g} to {self.max:g}{unit}"
        if self.min is not None:
            return f"a number >= {self.min:g}{unit}"
        if self.max is not None:
            return f"a number <= {self.max:g}{unit}"
        return f"a number{unit}"

    def convert(self, value: Any) -> float:
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ParameterError(self.name, value, self.allowed(), "It is not a number") from None
        if not math.isfinite(out):
            raise ParameterError(self.name, value, self.allowed(), "It is not a finite number")
        if (self.min is not None and out < self.min) or (self.max is not None and out > self.max):
            raise ParameterError(self.name, value, self.allowed(), "It is out of bounds")
        return out

    def spec(self) -> dict:
        return super().spec() | {"min": self.min, "max": self.max}


@dataclass
class Integer(Float):
    kind = "integer"

    def allowed(self) -> str:
        return super().allowed().replace("a number", "an integer")

    def convert(self, value: Any) -> int:
        out = super().convert(value)
        if out != int(out):
            raise ParameterError(self.name, value, self.allowed(), "It is not an integer")
        return int(out)


@dataclass
class String(Param):
    pattern: str | None = None
    kind = "string"

    def allowed(self) -> str:
        return f"text matching {self.pattern}" if self.pattern else "text"

    def convert(self, value: Any) -> str:
        out = str(value).strip()
        if self.pattern and not re.fullmatch(self.pattern, out):
            raise ParameterError(self.name, value, self.allowed())
        return out


@dataclass
class Select(Param):
    choices: Sequence[Any] = ()
    kind = "select"

    def allowed(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def convert(self, value: Any) -> Any:
        for choice in self.choices:
            if value == choice or str(value).strip() == str(choice):
                return choice
        raise ParameterError(self.name, value, self.allowed())

    def spec(self) -> dict:
        return super().spec() | {"choices": list(self.choices)}


def to_time(value: Any, fmt: str = "isot") -> Time:
    """An astropy ``Time`` from a request value in ``T_format`` (isot, mjd, ...)."""
    if isinstance(value, Time):
        return value
    if fmt in ("isot", "iso", "fits"):
        return Time(str(value).strip(), format=None, scale="utc")
    return Time(float(value), format=fmt, scale="utc")


#: years a request time may fall in (every mission served is within them), and as Julian dates
TIME_RANGE = (1950, 2100)
TIME_JD = (2433282.5, 2488069.5)


@dataclass
class TimeParam(Param):
    """A time in the request's ``T_format``; normalised to an isot string."""

    kind = "time"

    def allowed(self) -> str:
        return "a time such as 2016-02-01T00:00:00 (T_format=isot) or 57419.0 (T_format=mjd)"

    def parse_with_format(self, value: Any, fmt: str) -> str:
        if value is None or str(value).strip() == "":
            if self.default is None:
                raise ParameterError(self.name, value, self.allowed(), "It is required")
            value, fmt = self.default, "isot"
        try:
            t = to_time(value, fmt)
        except (ValueError, TypeError, OverflowError):
            raise ParameterError(
                self.name, value, self.allowed(), f"It cannot be read as T_format={fmt!r}"
            ) from None
        if not TIME_JD[0] <= t.jd1 + t.jd2 <= TIME_JD[1]:  # (t.jyear reads astropy's config: slow)
            raise ParameterError(self.name, value, self.allowed(),
                                 f"It is outside the years {TIME_RANGE[0]}-{TIME_RANGE[1]}")
        return t.isot

    def convert(self, value: Any) -> str:
        return self.parse_with_format(value, "isot")


@dataclass
class StringList(Param):
    """A list of strings, given as a list, JSON text or a comma/space-separated string.

    Empty input parses to ``empty`` (``None`` by default, ``[]`` where the protocol wants a list).
    """

    kind = "list"
    optional: bool = True
    pattern: str | None = None
    empty: Any = None

    def allowed(self) -> str:
        return f"a list of values matching {self.pattern}" if self.pattern else "a list, JSON or comma separated"

    def convert(self, value: Any) -> list[str]:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError:
                    raise ParameterError(self.name, value, self.allowed()) from None
            else:
                value = [v for v in re.split(r"[,\s]+", text) if v]
        if not isinstance(value, Iterable):
            raise ParameterError(self.name, value, self.allowed())
        out = []
        for item in value:
            item = str(item).strip()
            if self.pattern and not re.fullmatch(self.pattern, item):
                raise ParameterError(self.name, item, self.allowed(), "Malformed list item")
            out.append(item)
        return out

    def parse(self, value: Any) -> Any:
        if value is None or value == [] or (isinstance(value, str) and value.strip() in ("", "[]", "None")):
            return self.empty
        return self.convert(value)


SCW_RE = r"^[0-9]{12}\.[0-9]{3}$"  # ASCII digits only (\d would take any Unicode digit)


@dataclass
class ScwList(StringList):
    """A list of science-window ids."""

    kind = "scw_list"
    pattern: str | None = SCW_RE

    def allowed(self) -> str:
        return "science-window ids RRRRPPPPSSSF.VVV (e.g. 066500220010.001), comma separated"


@dataclass
class Json(Param):
    """A structured value (object or array), accepted as JSON text or as Python data."""

    kind = "json"

    def allowed(self) -> str:
        return "a JSON object or array"

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ParameterError(self.name, value, self.allowed(), "It is not valid JSON") from None
        if not isinstance(value, (dict, list)):
            raise ParameterError(self.name, value, self.allowed())
        return value


@dataclass
class ParamSet:
    """An ordered set of parameters with a parse step that fills defaults.

    ``T_format`` applies to every :class:`TimeParam`. Unknown keys are rejected unless
    listed in ``passthrough`` (keys the dispatcher protocol always accepts).
    """

    params: list[Param] = field(default_factory=list)

    def __iter__(self):
        return iter(self.params)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def parse(
        self,
        raw: dict[str, Any],
        *,
        allow_unknown: bool = False,
        passthrough: Iterable[str] = (),
    ) -> dict[str, Any]:
        known = set(self.names()) | set(passthrough) | {"T_format"}
        unknown = sorted(k for k in raw if k not in known)
        if unknown and not allow_unknown:
            raise ParameterError(
                unknown[0],
                raw[unknown[0]],
                "the parameters " + ", ".join(self.names()),
                "This parameter is not known for this product",
            )
        fmt = str(raw.get("T_format") or "isot")
        out: dict[str, Any] = {}
        for p in self.params:
            if isinstance(p, TimeParam):
                out[p.name] = p.parse_with_format(raw.get(p.name), fmt)
            else:
                out[p.name] = p.parse(raw.get(p.name))
        if any(isinstance(p, TimeParam) for p in self.params):
            out["T_format"] = "isot"
        return out

    def spec(self) -> list[dict]:
        return [p.spec() for p in self.params]
