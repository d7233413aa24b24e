"""The tutorial notebooks as a read-only shared copy in each user's home (``~/tutorials``).

The hub calls :func:`install` before every spawn (``Spawner.pre_spawn_hook``), so users always
see the current tutorials; they duplicate one into their home to edit and run it. Files are
written read-only (0444): a user's own copy is never overwritten, the shared one is refreshed.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

__all__ = ["install", "source_dir"]

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


def source_dir() -> Path:
    """Where the tutorials are: ``MMODA_TUTORIALS``, else the checkout's ``notebooks/``."""
    env = os.environ.get("MMODA_TUTORIALS")
    path = Path(env) if env else Path(__file__).resolve().parents[1] / "notebooks"
    if not path.is_dir():
        raise FileNotFoundError(f"no tutorial notebooks at {path}: set MMODA_TUTORIALS")
    return path


def install(home: str | Path, name: str = "tutorials") -> list[Path]:
    """Copy every tutorial into ``home/name/`` read-only, replacing older shared copies."""
    dest = Path(home) / name
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for nb in sorted(source_dir().glob("*.ipynb")):
        target = dest / nb.name
        if target.exists():
            target.chmod(READ_ONLY | stat.S_IWUSR)
        shutil.copyfile(nb, target)
        target.chmod(READ_ONLY)
        out.append(target)
    return out


def pre_spawn_hook(spawner) -> None:
    """``c.Spawner.pre_spawn_hook``: the shared tutorials in the user's home before it starts."""
    home = getattr(spawner, "home_dir", None) or os.path.expanduser(f"~{spawner.user.name}")
    try:
        install(home)
    except OSError as err:  # never block a spawn for the tutorials
        log = getattr(spawner, "log", None)
        if log is not None:
            log.warning("tutorials not copied to %s: %s", home, err)
