"""``mmoda run`` as a new user sees it: honest summaries, no library noise, clear refusals."""

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
