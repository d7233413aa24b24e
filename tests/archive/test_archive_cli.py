"""`mmoda archive info | list | build`."""

from __future__ import annotations

import json
import sys
import types

import pytest

from mmoda_ext.cli import main


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("MMODA_ARCHIVE", str(tmp_path))
    monkeypatch.setenv("MMODA_OFFLINE", "1")
    monkeypatch.delenv("MMODA_SKY_EXTRA", raising=False)


def test_info(capsys, tmp_path):
    assert main(["archive", "info", "--json", "--sources"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["revolutions"][0] == 26 and d["end"] < "2025-02-28T00:00:01"
    assert any(s["name"] == "Crab" for s in d["sources"])
    assert d["root"] == str(tmp_path.resolve())


def test_list(capsys):
    argv = ["archive", "list", "--src-name", "Crab", "--T1", "2016-02-01", "--T2", "2016-03-01",
            "--radius", "15", "--max-pointings", "50"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line[:12].isdigit()]
    assert len(rows) == 50 and out[-1].startswith("50 of 144 science windows")  # used of matched
    assert all(r.split()[0].endswith("0010.001") for r in rows)
    assert main(argv) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line[:12].isdigit()] == rows
    assert main(["archive", "list", "--RA", "265.98", "--DEC", "-29.75", "--T1", "2017-03-06T13:26:48",
                 "--T2", "2017-03-06T15:32:27", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert 2 <= len(got) <= 6 and all(w["target"] == "Galactic Centre" for w in got)


@pytest.mark.parametrize("flags,param", [
    (["--RA", "400", "--DEC", "0"], "RA"),
    (["--RA", "10", "--DEC", "abc"], "DEC"),
    (["--src-name", "crab", "--radius", "-1"], "radius"),
    (["--src-name", "crab", "--max-pointings", "0"], "max_pointings"),
    (["--src-name", "no such thing"], "src_name"),
    (["--RA", "10"], "RA"),
])
def test_list_errors(capsys, flags, param):
    assert main(["archive", "list", "--T1", "2016-02-01", "--T2", "2016-03-01", *flags]) == 2
    err = capsys.readouterr().err
    assert f"Parameter '{param}'" in err and "Allowed" in err


def test_list_bad_time_and_no_data(capsys):
    assert main(["archive", "list", "--src-name", "crab", "--T1", "soon", "--T2", "2016-03-01"]) == 2
    assert "Parameter 'T1'" in capsys.readouterr().err
    assert main(["archive", "list", "--RA", "0", "--DEC", "-89", "--radius", "1",
                 "--T1", "2016-02-01", "--T2", "2016-02-02"]) == 2
    assert "No science window" in capsys.readouterr().err


def test_build_calls_generate_window(capsys, monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("mmoda_ext.archive.isgri_data")

    def generate_window(archive, scw):
        calls.append(scw.scw_id)
        path = archive.path_for("isgri", scw)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        return path

    fake.generate_window = generate_window
    import mmoda_ext.archive as pkg

    monkeypatch.setitem(sys.modules, "mmoda_ext.archive.isgri_data", fake)
    monkeypatch.setattr(pkg, "isgri_data", fake, raising=False)
    assert main(["archive", "build", "--instrument", "isgri", "--src-name", "Crab", "--T1", "2016-02-01",
                 "--T2", "2016-03-01", "--max-pointings", "3", "--no-progress"]) == 0
    assert len(calls) == 3 and len(set(calls)) == 3
    assert all((tmp_path / "isgri" / c[:4] / f"{c}.fits").is_file() for c in calls)
    assert main(["archive", "build", "--instrument", "spi", "--src-name", "Crab", "--T1", "2016-02-01",
                 "--T2", "2016-03-01"]) == 2
    assert "Parameter 'instrument'" in capsys.readouterr().err


def test_build_real_isgri_window(tmp_path):
    """End to end with the ISGRI engineer's generator: one window is written where path_for says."""
    assert main(["archive", "build", "--RA", "83.633", "--DEC", "22.015", "--T1", "2008-03-20",
                 "--T2", "2008-03-25", "--max-pointings", "1", "--no-progress"]) == 0
    files = list((tmp_path / "isgri").rglob("*.fits"))
    assert len(files) == 1 and files[0].name.endswith("0010.001.fits")


def test_archive_flag_before_or_after_the_action(capsys, tmp_path):
    for argv in (["archive", "--archive", str(tmp_path / "a"), "info", "--json"],
                 ["archive", "info", "--json", "--archive", str(tmp_path / "a")]):
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["root"] == str((tmp_path / "a").resolve())


def test_build_jemx_windows(capsys, tmp_path):
    """JEM-X: one file per unit that was on (both units in revolution 127)."""
    assert main(["archive", "build", "--instrument", "jemx", "--RA", "83.633", "--DEC", "22.015",
                 "--radius", "4", "--T1", "2003-10-28T15:50", "--T2", "2003-10-28T16:30", "--max-pointings", "1", "--no-progress"]) == 0
    files = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.fits"))
    assert files == ["jemx1", "jemx2"]
    assert "2 jemx unit-windows (1 science windows)" in capsys.readouterr().out
