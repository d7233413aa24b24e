"""The durable job store: round trip, WAL, leases, the mail outbox, banners, feedback."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import pytest

from mmoda_ext.access.rights import Rights
from mmoda_ext.jobs.store import SCHEMA_VERSION, JobStore, RateLimited, new_owner
from mmoda_ext.models import Job, JobStatus

RIGHTS = Rights(user="alice", tier="registered", roles=frozenset({"general", "unige-hpc-full"}), email="a@x")


def make_job(job_id="j1", user="alice", **kw) -> Job:
    return Job(job_id=job_id, user=user, email="a@x", instrument="toy", product="sum",
               params={"n": 3, "RA": 1.5, "instrument": "toy"}, outdir=Path("/tmp/x") / job_id, **kw)


def test_round_trip_wal_and_schema(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite")
    assert store.journal_mode == "wal"
    assert store.schema_version == SCHEMA_VERSION
    job, created = store.submit(make_job(session_id="S1"), RIGHTS, rate_key="alice", rate_limit=10)
    assert created and job.status is JobStatus.SUBMITTED and job.generation == 0
    store.close()

    # committed before submit() returned: a fresh connection (another process) sees it
    raw = sqlite3.connect(tmp_path / "jobs.sqlite")
    assert raw.execute("SELECT job_id, status FROM jobs").fetchall() == [("j1", "submitted")]
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()

    again = JobStore(tmp_path / "jobs.sqlite")
    got = again.get("j1")
    assert got.params == {"n": 3, "RA": 1.5, "instrument": "toy"}
    assert (got.user, got.email, got.session_id, got.outdir) == ("alice", "a@x", "S1", Path("/tmp/x/j1"))
    assert again.rights("j1") == RIGHTS
    assert [j.job_id for j in again.list_user("alice")] == ["j1"] and again.list_user("bob") == []
    assert got.to_dict()["status"] == "submitted"


def test_identical_submission_returns_existing_and_failed_is_replaced(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    store.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=10)
    job, created = store.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=10)
    assert not created
    owner = new_owner()
    assert store.claim("j1", owner, 60).attempts == 1
    assert store.finish("j1", owner, JobStatus.FAILED, error="boom")
    assert not store.finish("j1", owner, JobStatus.DONE)  # a finished job is never touched again
    job, created = store.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=10)
    assert created and job.generation == 1 and job.status is JobStatus.SUBMITTED and job.attempts == 0


def test_rate_limit_counts_new_runs_only(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    store.submit(make_job("a"), RIGHTS, rate_key="alice", rate_limit=2)
    store.submit(make_job("b"), RIGHTS, rate_key="alice", rate_limit=2)
    store.submit(make_job("a"), RIGHTS, rate_key="alice", rate_limit=2)  # existing: free
    with pytest.raises(RateLimited) as err:
        store.submit(make_job("c"), RIGHTS, rate_key="alice", rate_limit=2)
    assert err.value.count == 2
    assert store.get("c") is None
    store.submit(make_job("c", user="bob"), RIGHTS, rate_key="bob", rate_limit=2)


def test_leases_progress_and_cancel(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    store.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=None)
    a, b = new_owner(), new_owner()
    assert store.claim("j1", a, 60) is not None
    assert store.claim("j1", b, 60) is None  # held by a live owner
    assert store.set_progress("j1", a, 0.5, "half")
    assert not store.set_progress("j1", b, 0.6, "not mine")
    job = store.get("j1")
    assert (job.status, job.progress, job.message) == (JobStatus.PROGRESS, 0.5, "half")
    store.release("j1", a, "stopping")
    assert store.claim("j1", b, 60).attempts == 2
    assert store.finish("j1", None, JobStatus.CANCELLED, error="cancelled")
    assert not store.set_progress("j1", b, 0.7, "too late")
    assert store.claim("j1", b, 60) is None
    assert store.unfinished() == []


def test_dead_owner_lease_is_taken_over(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    store.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=None)
    import socket

    dead = f"{socket.gethostname()}:999999999:0000"  # no such pid
    assert store.claim("j1", dead, 600) is not None
    assert store.claim("j1", new_owner(), 60) is not None
    other_host = "elsewhere:1:0"
    store2 = JobStore(tmp_path / "t.sqlite")
    store2.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=None)
    assert store2.claim("j1", other_host, 0.2) is not None
    assert store2.claim("j1", new_owner(), 60) is None  # live until its lease expires
    time.sleep(0.25)
    assert store2.claim("j1", new_owner(), 60) is not None


def test_mail_outbox_due_until_accepted_once_per_run(tmp_path):
    """A mail is queued with the change it tells about, leased by one sender, and due until
    it is marked sent; a sender that died loses its lease at once."""
    store = JobStore(tmp_path / "s.sqlite")
    job = make_job()
    job.email = "alice@example.org"
    store.submit(job, RIGHTS, rate_key="alice", rate_limit=None, submit_mail=60.0)
    assert [m["kind"] for m in store.due_mails("j1")] == ["submitted"]
    me = new_owner()
    item = store.claim_mail(me, 60)
    assert item["kind"] == "submitted" and item["job"].job_id == "j1" and item["tries"] == 1
    other = JobStore(tmp_path / "s.sqlite")
    assert other.claim_mail(new_owner(), 60) is None  # leased by a live sender
    store.mail_failed(item["job"], "submitted", me, "SMTP down")
    again = other.claim_mail(new_owner(), 60)
    assert again["tries"] == 2
    assert other.mail_sent(again["job"], "submitted", "x") and not store.mail_sent(again["job"], "submitted", me)
    assert store.due_mails() == [] and [e["kind"] for e in store.events("j1")] == ["submitted"]
    # a leased mail whose sender died is taken over
    assert store.claim("j1", me, 60) is not None
    store.finish("j1", me, JobStatus.FAILED, error="no data", notify=True)
    dead = f"{socket.gethostname()}:999999:0"
    assert store.claim_mail(dead, 600)["kind"] == "failed"
    taken = store.claim_mail(me, 60)
    assert taken["kind"] == "failed" and taken["job"].status is JobStatus.FAILED
    # a new run within 60 s of the last submission mail gets none; the failed mail stays due
    store.submit(job, RIGHTS, rate_key="alice", rate_limit=None, submit_mail=60.0)
    assert [(m["generation"], m["kind"]) for m in store.due_mails("j1")] == [(0, "failed")]
    # a sender that died after the SMTP end-of-data mark: the server has the mail, never resent
    store.mail_failed(taken["job"], "failed", me, "SMTP down")
    ghost = f"{socket.gethostname()}:999998:0"
    leased = store.claim_mail(ghost, 600)
    store.mail_ending(leased["job"], "failed", ghost)
    assert store.claim_mail(me, 60) is None
    assert store.due_mails() == [] and [e["kind"] for e in store.events("j1")] == ["submitted", "failed"]


def test_banners_expire_and_feedback_is_kept(tmp_path):
    store = JobStore(tmp_path / "s.sqlite")
    now = time.time()
    store.add_banner("OSA 11.2 released", "news", None)
    store.add_banner("archive maintenance", "issue", now + 100)
    store.add_banner("old", "issue", now - 1)
    assert [b["text"] for b in store.banners()] == ["archive maintenance", "OSA 11.2 released"]
    assert [b["text"] for b in store.banners(now + 200)] == ["OSA 11.2 released"]
    store.submit(make_job(), RIGHTS, rate_key="alice", rate_limit=None)
    store.add_feedback("j1", "Your source is outside the FoV", "team")
    assert [f["message"] for f in store.get("j1").feedback] == ["Your source is outside the FoV"]


def test_newer_schema_is_refused(tmp_path):
    JobStore(tmp_path / "s.sqlite").close()
    db = sqlite3.connect(tmp_path / "s.sqlite")
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="schema 99"):
        JobStore(tmp_path / "s.sqlite")
