"""Ctrl-C in the middle of ``mmoda run``: a quiet stop that says what was kept and how to resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MMODA = str(Path(sys.executable).with_name("mmoda"))


def test_ctrl_c_stops_quietly_and_says_what_was_kept(cli_env, tmp_path):
    env = {**cli_env, "MMODA_ARCHIVE": str(tmp_path / "archive")}
    err_path = tmp_path / "stderr"
    with open(err_path, "w") as err, open(tmp_path / "stdout", "w") as out:
        # a new session, as a terminal's foreground job: Ctrl-C goes to every process of the group
        proc = subprocess.Popen([MMODA, "run", "isgri", "image", "--src-name", "Crab", "--T1", "2016-02-01",
                                 "--T2", "2016-03-01", "--max-pointings", "12", "--workers", "1",
                                 "--out", str(tmp_path / "out")],
                                env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and proc.poll() is None:  # a window is done: mid-run
                if list((tmp_path / "archive").glob("isgri/*/[0-9]*.fits")):
                    break
                time.sleep(0.2)
            assert proc.poll() is None, "the run ended before it could be interrupted"
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(120) == 130
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
    stderr = err_path.read_text()
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "WARNING" not in stderr and "distributed" not in stderr
    lines = [ln for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    others = [ln for ln in lines if "%|" not in ln]  # everything but the progress bar
    assert len(others) == 1 and others[0].startswith("mmoda: interrupted. Kept "), others
    assert "run the same command again to resume" in others[0]
    assert not (tmp_path / "out" / "isgri_image_mosaic.fits").exists()
    # nothing of the run is left behind: no worker process of the group survives
    import psutil

    time.sleep(1)
    left = [p for p in psutil.process_iter(["status"])
            if _pgid(p.pid) == proc.pid and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert not left, left


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
