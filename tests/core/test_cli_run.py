"""``mmoda run`` as a new user sees it: honest summaries, no library noise, clear refusals."""

from pathlib import Path

import pytest
from astropy.io import fits


def test_summary_says_used_of_matched_and_how_to_get_all(isgri_run):
    proc, out = isgri_run
    assert "Used 3 of 144 matching science windows" in proc.stdout
    assert "set max_pointings=144" in proc.stdout
    assert "3 of 144 science windows," in proc.stdout  # the summary line
    with fits.open(out / "isgri_image_mosaic.fits") as hdul:
        img = [h for h in hdul if "NUM_SCW" in h.header][0]
        assert (img.header["NUM_SCW"], img.header["NSCW_ALL"]) == (3, 144)


def test_no_library_warning_reaches_the_user(isgri_run):
    proc, _ = isgri_run
    assert "Warning" not in proc.stderr and "warn(" not in proc.stderr


def test_out_of_mission_dates_name_the_mission_window(mmoda, tmp_path):
    proc = mmoda("run", "isgri", "image", "--src-name", "Crab", "--T1", "2030-01-01", "--T2", "2030-02-01",
                 "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "INTEGRAL science data end on 2025-02-28" in proc.stderr
    assert "Widen" not in proc.stderr
    assert "Warning" not in proc.stderr  # no ErfaWarning "dubious year"
    assert not list(tmp_path.iterdir())  # refused before any work
    early = mmoda("archive", "list", "--src-name", "Crab", "--T1", "2001-01-01", "--T2", "2001-02-01")
    assert early.returncode == 2 and "start on 2002-12-30" in early.stderr and "Warning" not in early.stderr


def test_archive_list_says_used_of_matched(mmoda):
    proc = mmoda("archive", "list", "--src-name", "Crab", "--T1", "2016-02-01", "--T2", "2016-03-01",
                 "--max-pointings", "5")
    assert proc.returncode == 0, proc.stderr
    assert "5 of 144 science windows" in proc.stdout and "--max-pointings 144" in proc.stdout


def test_progress_names_each_stage(isgri_run):
    proc, _ = isgri_run
    stages = [s for s in ("selecting science windows", "starting Dask workers",
                          "3 to generate · science windows 0/3", "PIF fits", "writing products")
              if s in proc.stderr]
    assert len(stages) == 5, stages
    order = [proc.stderr.index(s) for s in stages]
    assert order == sorted(order)


def test_run_says_what_it_added_to_the_cache(isgri_run, mmoda):
    import json
    import re

    proc, _ = isgri_run
    added = re.search(r"^cache: \+([\d.]+) MB this run, ([\d.]+) MB in all \(limit 20\.0 GB", proc.stdout, re.M)
    assert added, proc.stdout
    du = json.loads(mmoda("archive", "du", "--json").stdout)
    assert du["folders"]["archive/isgri"]["files"] >= 3 and du["folders"]["provenance-cache"]["files"] >= 3
    assert float(added.group(2)) == pytest.approx(du["total_bytes"] / 1e6, abs=0.1)


def test_size_limit_evicts_least_recently_used_and_clean_frees_all(isgri_run, mmoda, cli_env, tmp_path):
    import json
    import shutil

    archive = tmp_path / "archive"  # a copy of the session's cache, so other tests keep theirs
    shutil.copytree(cli_env["MMODA_ARCHIVE"], archive)
    shutil.copytree(Path(cli_env["MMODA_ARCHIVE"]).parent / "provenance-cache", tmp_path / "provenance-cache")
    env = {"MMODA_ARCHIVE": str(archive), "MMODA_CACHE_LIMIT": "14MB"}
    proc = mmoda("run", "spi_acs", "lc", "--T1", "2023-03-07T15:40:00", "--T2", "2023-03-07T15:50:00",
                 "--time_bin", "1", "--out", str(tmp_path / "grb"), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "cache: over its limit, removed the" in proc.stdout
    du = json.loads(mmoda("archive", "du", "--json", env=env).stdout)
    assert du["total_bytes"] <= 14e6 and du["limit_bytes"] == 14_000_000
    assert du["folders"]["archive/index"]["files"] == 1  # the index is never evicted
    assert mmoda("run", "spi_acs", "lc", "--out", str(tmp_path / "x"),
                 env={**env, "MMODA_CACHE_LIMIT": "lots"}).returncode == 2  # a bad limit is named
    clean = mmoda("archive", "clean", env=env)
    assert clean.returncode == 0 and "removed" in clean.stdout
    du = json.loads(mmoda("archive", "du", "--json", env=env).stdout)
    assert du["folders"]["archive/isgri"]["files"] == 0 and du["folders"]["provenance-cache"]["files"] == 0
