"""Product integrity: what a finished job wrote is recorded, and checked before it is served.

At completion the job folder gets ``manifest.json``: the size and SHA-256 of
``products.json`` and of every product file it names. Before an answer is made from a
finished job (a repeated request, a poll, a download) :class:`Verifier` checks the files
against it; a deleted, truncated or altered file makes the job *damaged*, and the manager
runs it again instead of serving a broken product or answering 500 forever. Hashes are
recomputed only when a file's size or modification time changed since the last check, so a
repeat costs a few ``stat`` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from ..models import PRODUCTS_FILE, read_products

__all__ = ["MANIFEST_FILE", "Verifier", "product_files", "write_manifest"]

MANIFEST_FILE = "manifest.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def product_files(outdir: Path) -> list[str]:
    """``products.json`` and the files it names, relative to ``outdir`` (raises if unreadable)."""
    outdir = Path(outdir)
    names = [PRODUCTS_FILE]
    for p in read_products(outdir).products:
        for path in (p.fits, p.png):
            if path is not None:
                names.append(Path(path).resolve().relative_to(outdir.resolve()).as_posix())
    return names


def write_manifest(outdir: str | Path) -> dict[str, dict]:
    """Record size and SHA-256 of every product file of a finished job (atomically)."""
    outdir = Path(outdir)
    entries = {}
    for name in product_files(outdir):
        path = outdir / name
        entries[name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
    tmp = outdir / f".{MANIFEST_FILE}.tmp"
    tmp.write_text(json.dumps({"files": entries}, indent=1))
    os.replace(tmp, outdir / MANIFEST_FILE)
    return entries


class Verifier:
    """Checks job folders against their manifest, remembering files already hashed."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int, str]] = {}  # path -> (size, mtime_ns, sha256)
        self._lock = threading.Lock()

    def problem(self, outdir: str | Path) -> str | None:
        """None if every product file matches the manifest, else what is wrong.

        A folder without a manifest (a job finished by an older version, or a crash between
        the products and the manifest) gets one, if its products are readable.
        """
        outdir = Path(outdir)
        try:
            manifest = json.loads((outdir / MANIFEST_FILE).read_text())["files"]
        except FileNotFoundError:
            try:
                write_manifest(outdir)
                return None
            except (OSError, ValueError, KeyError) as err:
                return f"products unreadable ({type(err).__name__})"
        except (OSError, ValueError, KeyError, TypeError):
            return "manifest damaged"
        try:
            names = product_files(outdir)
        except (OSError, ValueError, KeyError):
            return "products.json damaged"
        for name in names:
            want = manifest.get(name)
            path = outdir / name
            try:
                st = path.stat()
            except OSError:
                return f"{name} missing"
            if want is None or st.st_size != want["size"]:
                return f"{name} has {st.st_size} bytes, {want and want['size']} recorded"
            key = str(path)
            with self._lock:
                seen = self._seen.get(key)
            if seen is None or seen[:2] != (st.st_size, st.st_mtime_ns):
                digest = _sha256(path)
                with self._lock:
                    self._seen[key] = (st.st_size, st.st_mtime_ns, digest)
            else:
                digest = seen[2]
            if digest != want["sha256"]:
                return f"{name} altered (checksum differs)"
        return None
