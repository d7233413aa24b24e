"""Run every ``benchmarks/bench_*.py`` module's ``main()`` in turn (``python -m benchmarks``).

``python -m benchmarks isgri index`` runs only the named ones; ``--help`` lists them. Each aim
is printed beside its figure with a verdict (:mod:`benchmarks.report`), and the run ends with
every aim of the run and how many were met.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def benches() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def describe(name: str) -> str:
    """The first line of a bench's docstring (read, not imported: --help starts nothing)."""
    doc = ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def usage() -> str:
    lines = ["usage: python -m benchmarks [NAME ...]   (make bench: all of them)", "",
             "Runs the named benchmarks (all without a name); one run each, on this machine.",
             "Each aim is printed beside its figure with a verdict, e.g.",
             "  chain per window / FFT floor                    3.70×   aim ≤ 2.5×   NOT MET",
             "and the run ends with every aim and how many were met.", "", "benchmarks:"]
    lines += [f"  {name.removeprefix('bench_'):<8} {describe(name)}" for name in benches()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .report import summary, take_verdicts

    args = list(argv if argv is not None else sys.argv[1:])
    if {"-h", "--help"} & set(args):
        print(usage())
        return 0
    unknown = [a for a in args if f"bench_{a.removeprefix('bench_')}" not in benches()]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from "
              f"{', '.join(n.removeprefix('bench_') for n in benches())}", file=sys.stderr)
        return 2
    want = {f"bench_{a.removeprefix('bench_')}" for a in args}
    failed = 0
    verdicts = {}
    for name in benches():
        if want and name not in want:
            continue
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        take_verdicts()
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            module.main()
        except Exception as exc:  # report and go on with the others
            failed += 1
            print(f"{name} failed: {exc!r}", flush=True)
        verdicts[name.removeprefix("bench_")] = take_verdicts()
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    print("\n=== aims ===")
    print(summary(verdicts), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
