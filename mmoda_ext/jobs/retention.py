"""Retention: finished jobs' products and provenance-cache entries do not grow without limit.

Everything the server keeps on disk beyond the job store is either a finished job's folder
(``jobs/<job_id>/``) or a cache entry (``cache/<k[:2]>/<k>.npz``). Both can be made again: a
job whose folder was removed runs anew when asked for (its products fail verification), and
a missing cache entry is recomputed. So the policy is simple: delete what was not used for
``max_age`` seconds, then, while the total is above ``max_bytes``, the least recently used
first. Never deleted: the folder of an unfinished job, and anything used in the last
``min_age`` seconds (a running job touches the cache entries it reads).

"Used" is the modification time of a job's ``manifest.json`` (touched whenever the job is
served or repeated) and of a cache entry (touched on every hit).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Item", "disk_usage", "scan", "sweep"]


@dataclass
class Item:
    kind: str  # "job" or "cache"
    path: Path
    size: int
    used: float


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def scan(jobs_root: Path, cache_root: Path, protected: set[str]) -> list[Item]:
    """Every removable item: finished job folders (not in ``protected``) and cache entries."""
    items: list[Item] = []
    if jobs_root.is_dir():
        for entry in os.scandir(jobs_root):
            if not entry.is_dir() or entry.name in protected:
                continue
            path = Path(entry.path)
            try:
                used = (path / "manifest.json").stat().st_mtime
            except OSError:
                used = entry.stat().st_mtime
            items.append(Item("job", path, _tree_size(path), used))
    if cache_root.is_dir():
        for sub in os.scandir(cache_root):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                if entry.name.endswith(".npz"):
                    st = entry.stat()
                    items.append(Item("cache", Path(entry.path), st.st_size, st.st_mtime))
    return items


def disk_usage(jobs_root: Path, cache_root: Path) -> dict[str, int]:
    """Bytes and counts of job folders and cache entries (reported by ``mmoda serve``)."""
    items = scan(jobs_root, cache_root, set())
    jobs = [i for i in items if i.kind == "job"]
    cache = [i for i in items if i.kind == "cache"]
    return {"products_bytes": sum(i.size for i in jobs), "jobs": len(jobs),
            "cache_bytes": sum(i.size for i in cache), "cache_entries": len(cache)}


def sweep(items: list[Item], *, max_bytes: int | None, max_age: float | None, min_age: float,
          now: float | None = None) -> dict[str, int]:
    """Delete by age, then least recently used first down to ``max_bytes``; what was removed."""
    now = time.time() if now is None else now
    removed = {"jobs": 0, "cache_entries": 0, "bytes": 0}

    def remove(item: Item) -> None:
        try:
            if item.kind == "job":
                shutil.rmtree(item.path)
            else:
                item.path.unlink()
        except FileNotFoundError:
            pass
        removed["jobs" if item.kind == "job" else "cache_entries"] += 1
        removed["bytes"] += item.size

    keep = []
    for item in items:
        if max_age is not None and now - item.used > max(max_age, min_age):
            remove(item)
        else:
            keep.append(item)
    total = sum(i.size for i in keep)
    if max_bytes is not None and total > max_bytes:
        for item in sorted(keep, key=lambda i: i.used):
            if total <= max_bytes:
                break
            if now - item.used < min_age:
                continue  # in use right now
            remove(item)
            total -= item.size
    removed["left_bytes"] = total
    return removed
