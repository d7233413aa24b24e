"""kill -9 in the middle of jobs, start again: every accepted job finishes, exactly once,
and no e-mail goes out twice; with the SMTP server down meanwhile, no e-mail is lost either."""

from __future__ import annotations

import json
import os
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


def start_runner(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(RUNNER), *map(str, args)], cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
    )


def wait_until(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        time.sleep(0.05)


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


def test_smtp_down_across_a_sigkill_no_mail_lost_or_sent_twice(tmp_path):
    """SMTP stops after the submission mails; a job finishes (its mail due), the server is
    SIGKILLed with jobs running, restarted while SMTP is still down, and SMTP comes back: every
    job finishes once and every mail arrives exactly once (one Message-ID each)."""
    from aiosmtpd.controller import Controller
    from jobs_toy import MailBox, free_port

    box, port = MailBox(), free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port)
    smtp.start()
    root, log_dir = tmp_path / "root", tmp_path / "log"
    requests = [
        {"product": "slow", "params": {"duration": 2.0, "steps": 10, "tag": "first"}, "user": "alice@example.org"},
        *({"product": "slow", "params": {"duration": 3.0, "steps": 30, "tag": f"slow{i}"}, "user": f"u{i}@example.org"}
          for i in range(3)),
    ]
    req_file = tmp_path / "requests.json"
    req_file.write_text(json.dumps(requests))
    env = {"MAIL_RETRY": "0.3"}
    store = JobStore(root / "jobs.sqlite")
    first = start_runner(root, log_dir, port, req_file, env=env)
    try:
        ids = [first.stdout.readline().split()[1] for _ in requests]
        wait_until(lambda: sum("[submitted]" in s for s in box.subjects()) == len(ids), 30, "submission mails")
        smtp.stop()  # SMTP down
        assert not any("[done]" in s for s in box.subjects()), "SMTP stopped too late for this test"
        wait_until(lambda: store.get(ids[0]).status is JobStatus.DONE
                   and any(store.get(j).status is JobStatus.PROGRESS for j in ids[1:]), 60, "first done, one running")
        wait_until(lambda: any(m["kind"] == "done" and m["tries"] >= 1 for m in store.due_mails(ids[0])), 10,
                   "a failed try of the completion mail")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        first.stdout.close()
        first.stderr.close()
    assert [m["kind"] for m in store.due_mails(ids[0])] == ["done"]  # not sent, not lost
    assert not any("[done]" in s for s in box.subjects())

    second = start_runner(root, log_dir, port, env=env)  # SMTP still down
    try:
        wait_until(lambda: sum(store.get(j).status is JobStatus.DONE for j in ids) >= 2, 90, "jobs resumed")
        time.sleep(1.0)  # a few failed rounds of the due mails
        assert not any("[done]" in s for s in box.subjects())
        smtp = Controller(box, hostname="127.0.0.1", port=port)
        smtp.start()  # SMTP back
        out, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
        smtp.stop()
    assert second.returncode == 0 and "all finished" in out, err[-3000:]
    assert all(store.get(j).status is JobStatus.DONE for j in ids)
    tags = Counter(line.split()[1] for line in read_lines(log_dir / "runs.log"))
    assert tags == Counter({"first": 1, "slow0": 1, "slow1": 1, "slow2": 1}), tags
    for j in ids:
        mails = [m for m in box.messages if str(m["Subject"]).endswith(j[:8])]
        kinds = Counter(str(m["Subject"]).split("]")[1].lstrip("[") for m in mails)
        assert kinds == Counter({"submitted": 1, "done": 1}), (j, kinds)
        assert len({m["Message-ID"] for m in mails}) == 2
    assert store.due_mails() == []
    store.close()
