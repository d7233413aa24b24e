"""The shared read-only copy of the tutorials in a user's home (the hub's pre-spawn hook)."""

from __future__ import annotations

import stat
from types import SimpleNamespace

from mmoda_widgets import tutorials


def test_tutorials_copied_read_only_and_refreshed(tmp_path):
    home = tmp_path / "home" / "registered"
    spawner = SimpleNamespace(home_dir=str(home), user=SimpleNamespace(name="registered"))
    tutorials.pre_spawn_hook(spawner)
    copies = sorted((home / "tutorials").glob("*.ipynb"))
    sources = sorted(tutorials.source_dir().glob("*.ipynb"))
    assert [c.name for c in copies] == [s.name for s in sources] and len(copies) >= 11
    assert all(not (c.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) for c in copies)
    assert copies[0].read_bytes() == sources[0].read_bytes()
    mine = home / "my-quickstart.ipynb"  # a user's own duplicate is never touched
    mine.write_text("{}")
    tutorials.install(home)  # the next spawn refreshes the shared copy
    assert mine.read_text() == "{}" and (home / "tutorials" / sources[0].name).exists()
