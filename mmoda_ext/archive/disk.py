"""Disk used by what MMODA caches on a user's machine, and a size limit that bounds it.

Two folders grow as requests run: the archive (per-window data, regenerated identically
when missing: ISGRI ~2.2 MB (uncompressed, for fast reading), JEM-X ~20 MB per unit and science window, and the window index)
and the provenance cache (per-window decoded images, ~1.5 MB per window). Both are caches:
anything removed is recomputed, identically, when a later request needs it. ``mmoda run``
prints what it added; ``mmoda archive du`` shows the totals; ``mmoda archive clean`` and the
size limit (``MMODA_CACHE_LIMIT``, e.g. ``20GB``) remove the least recently used window files
first, never the index.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u

__all__ = ["DEFAULT_LIMIT", "Usage", "cache_limit", "clean", "folders", "human", "parse_size", "usage"]

#: the limit when MMODA_CACHE_LIMIT is not set
DEFAULT_LIMIT = "20GB"
#: folders of the archive root that are never evicted (rebuilding the index takes seconds)
KEEP = ("index",)
#: a hidden temporary file older than this is the partial write of a stopped worker
STALE_TEMP_S = 3600.0


def parse_size(text: str | int | float, parameter: str = "MMODA_CACHE_LIMIT") -> int:
    """``"20GB"``, ``"500 MB"``, ``"1.5GiB"`` or a number of bytes -> bytes (0 = no limit)."""
    from ..errors import ParameterError

    allowed = "a size such as 20GB, 500MB, 1.5GiB or a number of bytes (0: no limit)"
    try:
        if isinstance(text, (int, float)) or str(text).strip().replace(".", "", 1).isdigit():
            value = float(text)
        else:
            value = u.Quantity(str(text).strip().replace("iB", "ibyte").replace("B", "byte")).to_value(u.byte)
    except (TypeError, ValueError, u.UnitsError):
        raise ParameterError(parameter, text, allowed) from None
    if not value >= 0:
        raise ParameterError(parameter, text, allowed)
    return int(value)


def cache_limit(value: str | None = None) -> int:
    """The size limit in bytes: ``value``, else ``$MMODA_CACHE_LIMIT``, else 20 GB (0: none)."""
    return parse_size(value if value is not None else os.environ.get("MMODA_CACHE_LIMIT", DEFAULT_LIMIT))


def human(n: float) -> str:
    """Bytes as text a person reads at a glance (``1.8 GB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"  # pragma: no cover


def folders(archive_root: str | Path, cache_root: str | Path | None) -> dict[str, Path]:
    """Every cached folder by name: the archive's subfolders and the provenance cache."""
    root = Path(archive_root)
    out = {}
    if root.is_dir():
        out = {f"archive/{p.name}": p for p in sorted(root.iterdir()) if p.is_dir()}
    if cache_root is not None:
        out["provenance-cache"] = Path(cache_root)
    return out


@dataclass
class Usage:
    files: int = 0
    bytes: int = 0

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.files - other.files, self.bytes - other.bytes)


def _files(path: Path):
    for dirpath, _, names in os.walk(path):
        for name in names:
            if not name.startswith("."):  # temporaries being written by a worker
                yield Path(dirpath) / name


def usage(paths: dict[str, Path]) -> dict[str, Usage]:
    """Files and bytes under each folder (missing folders count zero)."""
    out = {}
    for name, path in paths.items():
        use = Usage()
        for f in _files(path):
            try:
                use.bytes += f.stat().st_size
                use.files += 1
            except FileNotFoundError:
                continue
        out[name] = use
    return out


def total(use: dict[str, Usage]) -> Usage:
    return Usage(sum(x.files for x in use.values()), sum(x.bytes for x in use.values()))


def clean(paths: dict[str, Path], keep_bytes: int = 0) -> Usage:
    """Remove least recently used files until at most ``keep_bytes`` remain in all; return what went.

    The index folder is kept. Files are whole cache entries (one window, one decoded image),
    so whatever is removed is recomputed identically by the next request that needs it.
    """
    entries = []
    removed = Usage()
    for name, path in paths.items():
        if name.split("/")[-1] in KEEP:  # counts towards the limit, never removed
            keep_bytes -= total(usage({name: path})).bytes
            continue
        for f in _files(path):
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            entries.append((max(st.st_atime, st.st_mtime), st.st_size, f))
        stale = time.time() - STALE_TEMP_S
        for dirpath, _, names in os.walk(path):  # partial writes of stopped workers
            for tmp in names:
                f = Path(dirpath) / tmp
                with contextlib.suppress(FileNotFoundError):
                    if tmp.startswith(".") and f.stat().st_mtime < stale:
                        removed.bytes += f.stat().st_size
                        f.unlink()
                        removed.files += 1
    entries.sort()
    size = sum(e[1] for e in entries)
    for _, nbytes, f in entries:
        if size <= keep_bytes:
            break
        try:
            f.unlink()
        except FileNotFoundError:
            continue
        size -= nbytes
        removed.files += 1
        removed.bytes += nbytes
    return removed
