"""The aims of the benchmarks: each figure printed beside its aim with a verdict.

Every ``bench_*.py`` reports each aim it has (the aims are set in the issues and the bench's
docstring) through :func:`aim`, which prints one line and remembers the verdict, so that
``python -m benchmarks`` ends with every aim of the run::

    aim("chain per window / FFT floor", 3.7, "<=", 2.5, "×")
    # chain per window / FFT floor               3.70×   aim ≤ 2.5×   NOT MET

A figure that could not be measured (``None`` or NaN) is ``NOT MEASURED``, never met.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

__all__ = ["Verdict", "aim", "met", "summary", "take_verdicts"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_SYMBOLS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
_VERDICTS: list[Verdict] = []


def met(value: float | None, op: str, limit: float) -> bool:
    """Whether ``value op limit`` holds (an unmeasured value never meets an aim)."""
    if op not in _OPS:
        raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(_OPS[op](value, limit))


@dataclass(frozen=True)
class Verdict:
    """One aim of one run: the figure, the aim, and whether the figure meets it."""

    name: str
    value: float | None
    op: str
    limit: float
    unit: str = ""
    digits: int = 2

    @property
    def met(self) -> bool:
        return met(self.value, self.op, self.limit)

    @property
    def measured(self) -> bool:
        return not (self.value is None or (isinstance(self.value, float) and math.isnan(self.value)))

    @property
    def word(self) -> str:
        return "MET" if self.met else "NOT MET" if self.measured else "NOT MEASURED"

    def line(self) -> str:
        figure = f"{self.value:.{self.digits}f}{self.unit}" if self.measured else "—"
        return f"{self.name:<44} {figure:>10}   aim {_SYMBOLS[self.op]} {self.limit:g}{self.unit}   {self.word}"


def aim(name: str, value: float | None, op: str, limit: float, unit: str = "", digits: int = 2) -> Verdict:
    """Print ``name  figure  aim op limit  MET|NOT MET`` and remember it for the run's summary."""
    if op not in _OPS:
        raise ValueError(f"op must be one of {', '.join(_OPS)}; got {op!r}")
    verdict = Verdict(name, None if value is None else float(value), op, float(limit), unit, digits)
    print(verdict.line(), flush=True)
    _VERDICTS.append(verdict)
    return verdict


def take_verdicts() -> list[Verdict]:
    """The verdicts reported since the last call (and forget them)."""
    taken = list(_VERDICTS)
    _VERDICTS.clear()
    return taken


def summary(verdicts: dict[str, list[Verdict]]) -> str:
    """Every aim of a run by bench, then ``N of M aims met``."""
    lines, n, n_met = [], 0, 0
    for bench, items in verdicts.items():
        for v in items:
            lines.append(f"{bench:<14} {v.line()}")
            n += 1
            n_met += v.met
    lines.append(f"{n_met} of {n} aims met" if n else "no aim reported")
    return "\n".join(lines)
