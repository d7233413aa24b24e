"""The package boundaries of the layout table (README "Layout"): science/ keeps no file format,
archive/ writes no product, and the instruments' modules import each other without a circle."""

import ast
from pathlib import Path

import mmoda_ext

PKG = Path(mmoda_ext.__file__).parent


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at module top or inside functions."""
    package = ".".join(path.relative_to(PKG.parent).with_suffix("").parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from . import x` names module x
    return out


def test_science_kernels_open_no_file_format():
    forbidden = ("astropy.io", "matplotlib", "mmoda_ext.archive", "mmoda_ext.products", "mmoda_ext.instruments",
                 "mmoda_ext.jobs", "dask", "uproot")
    for path in sorted((PKG / "science").glob("*.py")):
        bad = sorted(m for m in imports(path) if m.startswith(forbidden))
        assert not bad, f"science/{path.name} imports {bad}"


def test_archive_writes_no_product():
    for path in sorted((PKG / "archive").glob("*.py")):
        bad = sorted(m for m in imports(path) if m.startswith(("mmoda_ext.products", "matplotlib")))
        assert not bad, f"archive/{path.name} imports {bad}"


def test_instrument_modules_import_without_a_circle():
    names = {p.stem for p in (PKG / "instruments").glob("*.py")}
    graph = {
        p.stem: {m.rsplit(".", 1)[-1] for m in imports(p)
                 if m.startswith("mmoda_ext.instruments.") and m.rsplit(".", 1)[-1] in names} - {p.stem}
        for p in (PKG / "instruments").glob("*.py")
    }
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, "import circle: " + " -> ".join((*path[path.index(node):], node))
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, (*path, node))
        done.add(node)

    for node in sorted(graph):
        visit(node, ())
    assert "isgri" in graph["jemx"] and not graph["_isgri_window"] - {"_catalog"}
