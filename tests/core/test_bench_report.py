"""`make bench` prints each aim with its verdict: the verdict logic, the run's summary, --help.

The heavy benchmarks are not run here; a bench module is run through ``benchmarks.__main__``
in a subprocess against a copy of the package holding one tiny ``bench_*.py``.
"""

from __future__ import annotations

import ast
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import Verdict, aim, met, summary, take_verdicts

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("value", "op", "limit", "expected"), [
    (2.4, "<=", 2.5, True), (2.5, "<=", 2.5, True), (3.7, "<=", 2.5, False),
    (2.5, "<", 2.5, False), (29.9, "<", 30, True),
    (1.7, ">=", 1.7, True), (1.69, ">=", 1.7, False), (1.8, ">", 1.7, True), (1.7, ">", 1.7, False),
    (0, "<=", 0, True), (1, "<=", 0, False),
    (None, "<=", 2.5, False), (math.nan, ">=", 1.0, False),
])
def test_verdict_logic(value, op, limit, expected):
    assert met(value, op, limit) is expected
    assert Verdict("x", value, op, limit).met is expected


def test_unknown_comparison_is_refused():
    with pytest.raises(ValueError, match="op must be one of"):
        met(1.0, "=<", 2.0)
    with pytest.raises(ValueError, match="op must be one of"):
        aim("x", 1.0, "≤", 2.0)


def test_aim_prints_figure_aim_and_verdict(capsys):
    take_verdicts()
    aim("chain per window / FFT floor", 3.7, "<=", 2.5, "×")
    aim("speed-up of 2 workers over 1", 1.82, ">=", 1.7, "×")
    aim("cached repeat", None, "<", 30, " ms")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["chain", "per", "window", "/", "FFT", "floor", "3.70×", "aim", "≤", "2.5×", "NOT", "MET"]
    assert lines[1].endswith("aim ≥ 1.7×   MET")
    assert lines[2].endswith("aim < 30 ms   NOT MEASURED")
    taken = take_verdicts()
    assert [v.word for v in taken] == ["NOT MET", "MET", "NOT MEASURED"]
    assert take_verdicts() == []
    text = summary({"isgri": taken[:2], "server": taken[2:]})
    assert text.splitlines()[0].startswith("isgri") and "NOT MET" in text.splitlines()[0]
    assert text.splitlines()[-1] == "1 of 3 aims met"


@pytest.fixture(scope="module")
def bench_copy(tmp_path_factory) -> Path:
    """The benchmarks package with one cheap bench instead of the real ones."""
    root = tmp_path_factory.mktemp("bench")
    pkg = root / "benchmarks"
    pkg.mkdir()
    for name in ("__init__.py", "__main__.py", "report.py"):
        shutil.copy(REPO / "benchmarks" / name, pkg / name)
    (pkg / "bench_tiny.py").write_text(
        '"""A tiny bench: two aims, one met."""\n'
        "from benchmarks.report import aim\n\n\n"
        "def main():\n"
        '    aim("tiny ratio", 1.2, "<=", 2.0, "×")\n'
        '    aim("tiny wall", 4.0, "<", 3.0, " s")\n')
    return root


def test_a_run_lists_every_verdict(bench_copy):
    run = subprocess.run([sys.executable, "-m", "benchmarks", "tiny"], cwd=bench_copy, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "=== bench_tiny ===" in out
    aims = out.split("=== aims ===", 1)[1].strip().splitlines()
    assert aims[0].startswith("tiny") and aims[0].endswith("aim ≤ 2×   MET") and "1.20×" in aims[0]
    assert aims[1].endswith("aim < 3 s   NOT MET") and "4.00 s" in aims[1]
    assert aims[2] == "1 of 2 aims met"


def test_help_lists_the_benchmarks_without_running_them(bench_copy):
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for bench in sorted((REPO / "benchmarks").glob("bench_*.py")):
        assert bench.stem.removeprefix("bench_") in run.stdout
    assert "NOT MET" in run.stdout and "===" not in run.stdout  # explained, nothing run
    wrong = subprocess.run([sys.executable, "-m", "benchmarks", "nosuch"], cwd=bench_copy, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown benchmark(s) nosuch; choose from tiny" in wrong.stderr


def test_every_printed_aim_goes_through_the_helper():
    """No bench prints an aim by hand: each one has its verdict (a string with 'aim ≤' etc.)."""
    for bench in sorted((REPO / "benchmarks").glob("bench_*.py")):
        tree = ast.parse(bench.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print":
                text = ast.unparse(node)
                assert not any(f"aim {s}" in text for s in ("<", ">", "≤", "≥")), f"{bench.name}: {text}"
