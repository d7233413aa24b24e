"""kill -9 in the middle of jobs, start again: every accepted job finishes, exactly once,
and no e-mail goes out twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from jobs_toy import read_lines

from mmoda_ext.jobs.store import JobStore
from mmoda_ext.models import JobStatus

RUNNER = Path(__file__).resolve().parent / "jobs_runner.py"
REPO = Path(__file__).resolve().parents[2]


def start_runner(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), *map(str, args)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_mid_job_then_restart_finishes_every_job_once(tmp_path, smtp):
    box, port = smtp
    root, log_dir = tmp_path / "root", tmp_path / "log"
    requests = [
        {"product": "sum", "params": {"n": 3, "tag": "quick"}, "user": "alice@example.org"},
        *({"product": "slow", "params": {"duration": 1.5, "steps": 15, "tag": f"slow{i}"}, "user": "bob@example.org"}
          for i in range(3)),
    ]
    req_file = tmp_path / "requests.json"
    req_file.write_text(json.dumps(requests))

    first = start_runner(root, log_dir, port, req_file)
    try:
        accepted = [first.stdout.readline().split() for _ in requests]
        assert all(line[:1] == ["accepted"] for line in accepted), (accepted, first.stderr.read())
        ids = [line[1] for line in accepted]
        store = JobStore(root / "jobs.sqlite")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs = [store.get(j) for j in ids]
            quick_mailed = any("[done] sum" in s for s in box.subjects())
            if quick_mailed and any(j.status is JobStatus.PROGRESS and j.progress >= 0.2 for j in jobs):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no job in progress: {[j.to_dict() for j in jobs]}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        first.stdout.close()
        first.stderr.close()

    before = {j: store.get(j) for j in ids}
    interrupted = [j for j, job in before.items() if not job.status.finished]
    assert interrupted, "the kill must hit unfinished jobs"
    assert before[ids[0]].status is JobStatus.DONE
    runs_before = read_lines(log_dir / "runs.log")

    second = start_runner(root, log_dir, port)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-3000:]
    assert "all finished" in out

    after = {j: store.get(j) for j in ids}
    assert all(job.status is JobStatus.DONE for job in after.values()), {j: a.to_dict() for j, a in after.items()}
    for j in interrupted:  # claimed once more after the restart; a killed run counts as an attempt
        assert after[j].attempts == before[j].attempts + 1
        if before[j].attempts:
            assert f"resumed (attempt {after[j].attempts})" in after[j].messages
    assert any(before[j].status is JobStatus.PROGRESS for j in interrupted)
    # every product ran to its end exactly once (the killed runs never reached their end)
    tags = Counter(line.split()[1] for line in read_lines(log_dir / "runs.log"))
    assert tags == Counter({"quick": 1, "slow0": 1, "slow1": 1, "slow2": 1}), (tags, runs_before)
    # one submission and one completion mail per job, none twice
    for j in ids:
        kinds = Counter(str(m["Subject"]).split("]")[1].lstrip("[") for m in box.messages
                        if str(m["Subject"]).endswith(j[:8]))
        assert kinds == Counter({"submitted": 1, "done": 1}), (j, kinds)
    store.close()
