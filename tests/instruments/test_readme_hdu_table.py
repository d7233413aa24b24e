"""The README's table of product layouts is true: each product is made (smallest request) and its
files' HDUs (index, EXTNAME, type, IMATYPE or columns) are compared with the table's rows.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
from astropy.io import fits

from mmoda_ext import engine
from mmoda_ext.jobs.compute import SerialContext

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Product layouts: which HDU holds what"
INTEGRAL = {"src_name": "Crab", "T1": "2016-02-01", "T2": "2016-03-01", "max_pointings": 1}
#: (instrument, product, smallest request)
REQUESTS = [
    ("isgri", "isgri_image", INTEGRAL),
    ("isgri", "isgri_spectrum", INTEGRAL),
    ("isgri", "isgri_lc", INTEGRAL),
    ("jemx", "jemx_image", INTEGRAL),
    ("jemx", "jemx_spectrum", INTEGRAL),
    ("jemx", "jemx_lc", INTEGRAL),
    ("spi_acs", "spi_acs_lc", {"T1": "2023-03-07T15:34:06", "T2": "2023-03-07T15:44:06", "time_bin": 1.0}),
    ("antares", "antares_spectrum", {}),
    ("polar", "polar_lc", {"T1": "2017-01-14T21:51:10", "T2": "2017-01-14T21:56:10", "time_bin": 10}),
]
_LEADING = re.compile(r"^((?:`[^`]+`(?:, )?)+)")


def holds(cell: str) -> list[str]:
    """The leading run of backticked names of a 'holds' cell: IMATYPE or the columns, in order."""
    m = _LEADING.match(cell.strip())
    return re.findall(r"`([^`]+)`", m.group(1)) if m else []


def readme_table() -> dict[str, dict[str, list[tuple]]]:
    """{product: {file pattern: [(HDU, EXTNAME, type, holds)]}} from the README's table."""
    text = README.read_text()
    assert HEADING in text, f"README has no section {HEADING!r}"
    table: dict[str, dict[str, list[tuple]]] = {}
    for line in text.split(HEADING, 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("product", "---"):
            continue
        product, pattern, hdu, extname, kind, cell = cells
        table.setdefault(product, {}).setdefault(pattern.strip("`"), []).append(
            (hdu, extname.strip("`"), kind, holds(cell)))
    return table


def layout(path: Path) -> list[tuple]:
    """What the table says of one file, read from the file itself."""
    if path.suffix == ".root":
        import uproot

        with uproot.open(path) as root:
            return [("–", name.split(";")[0], f"ROOT {cls}",
                     list(root[name].keys()) if cls == "TTree" else [])
                    for name, cls in root.classnames().items()]
    rows = []
    with fits.open(path) as hdul:
        assert isinstance(hdul[0], fits.PrimaryHDU) and hdul[0].data is None, f"{path.name}: HDU 0 has data"
        for i, hdu in enumerate(hdul[1:], 1):
            if isinstance(hdu, fits.ImageHDU):
                rows.append((str(i), hdu.name, "image", [hdu.header["IMATYPE"]]))
            else:
                rows.append((str(i), hdu.name, "table", list(hdu.columns.names)))
    return rows


@pytest.fixture(scope="module")
def made_all(sky_archive, tmp_path_factory) -> dict[str, list]:
    """Every product's ProductFiles, from the smallest request each."""
    archive = sky_archive("hdu-table")
    out = {}
    for instrument, product, raw in REQUESTS:
        ctx = SerialContext(archive if instrument in ("isgri", "jemx") else None,
                            tmp_path_factory.mktemp(product))
        out[product] = engine.execute(instrument, product, dict(raw), ctx).products
    return out


@pytest.fixture(scope="module")
def made(made_all) -> dict[str, list[Path]]:
    """Every product's data files."""
    out = {product: [p.fits for p in files if p.fits is not None] for product, files in made_all.items()}
    for product, paths in out.items():
        assert paths, f"{product} wrote no file"
    return out


def test_table_names_every_product_of_every_instrument(monkeypatch):
    # science instruments only: tests/server's conftest turns MMODA's debug instruments on
    monkeypatch.delenv("DISPATCHER_DEBUG_MODE", raising=False)
    from mmoda_ext.instruments import registry

    table = readme_table()
    science = {p for inst in registry().values() for p in inst.products} - {"spectral_fit"}
    assert set(table) == science == {p for _, p, _ in REQUESTS}


@pytest.mark.parametrize("product", [p for _, p, _ in REQUESTS])
def test_table_matches_the_files_made(made, product):
    rows = readme_table()[product]
    seen = set()
    for path in made[product]:
        matching = [pat for pat in rows if fnmatch.fnmatchcase(path.name, pat)]
        assert matching, f"{path.name} is in no row of the README table for {product}: {sorted(rows)}"
        pattern = max(matching, key=lambda pat: len(pat.replace("*", "")))  # the most specific
        seen.add(pattern)
        assert layout(path) == rows[pattern], f"{path.name} (README rows {pattern})"
    assert seen == set(rows), f"README rows for files {product} did not make: {set(rows) - seen}"


@pytest.mark.parametrize("product", [p for _, p, _ in REQUESTS])
def test_every_hdu_and_preview_says_simulated(made_all, product):
    """Issue 9: simulated data are marked in every product — each HDU of each FITS file, and each
    PNG preview (the visible mark's words are also in its Description text chunk)."""
    from PIL import Image

    from mmoda_ext.products.plots import SIMULATED_MARK

    fits_files = [p.fits for p in made_all[product] if p.fits is not None and p.fits.suffix != ".root"]
    pngs = [p.png for p in made_all[product] if p.png is not None]
    assert fits_files or product == "polar_lc"
    for path in fits_files:
        with fits.open(path) as hdul:
            unmarked = [i for i, hdu in enumerate(hdul) if hdu.header.get("SIMULATE") is not True]
        assert not unmarked, f"{path.name}: HDUs {unmarked} lack SIMULATE = T"
    assert pngs, f"{product} made no preview"
    for path in pngs:
        with Image.open(path) as im:
            assert im.text.get("Description") == SIMULATED_MARK, f"{path.name}: {im.text}"
