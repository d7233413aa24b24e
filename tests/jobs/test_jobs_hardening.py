"""Hardening of the job engine (issue 8): the embedded Dask cluster cannot be used by another
local process, the conformance instruments exist only in debug mode, every wait ends on cancel
or stop, and a cancelled request can run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
from jobs_toy import read_lines

from mmoda_ext.access.rights import Rights
from mmoda_ext.errors import PublicError
from mmoda_ext.instruments import registry
from mmoda_ext.instruments.empty import STATE_FILE
from mmoda_ext.jobs.compute import is_secret_name, local_client
from mmoda_ext.jobs.store import JobStore, StoreError
from mmoda_ext.models import JobStatus

SECRET = "hardening-test-secret-0123456789"


def wait_for(predicate, timeout: float = 10.0, poll: float = 0.02) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(poll)


@pytest.fixture(scope="module")
def secure_client():
    """The embedded cluster as ``mmoda serve`` makes it, started while a server secret is set."""
    saved = os.environ.get("MMODA_TOKEN_SECRET")
    os.environ["MMODA_TOKEN_SECRET"] = SECRET
    os.environ["MMODA_SMTP_PASSWORD"] = SECRET
    try:
        client = local_client(1)
    finally:
        os.environ.pop("MMODA_SMTP_PASSWORD")
        if saved is None:
            os.environ.pop("MMODA_TOKEN_SECRET")
        else:
            os.environ["MMODA_TOKEN_SECRET"] = saved
    yield client
    cluster = client.cluster
    client.close()
    cluster.close()


def test_embedded_cluster_is_tls_loopback_and_refuses_other_credentials(secure_client):
    from distributed import Client
    from distributed.security import Security

    cluster = secure_client.cluster
    address = cluster.scheduler_address
    assert address.startswith("tls://127.0.0.1:")
    workers = secure_client.scheduler_info()["workers"]
    assert workers and all(w.startswith("tls://127.0.0.1:") for w in workers)
    # anyone else (own self-signed credentials, or none) cannot connect, hence cannot run code
    with pytest.raises((OSError, TimeoutError, ValueError, TypeError)):
        Client(address, security=Security.temporary(), timeout=3)
    with pytest.raises((OSError, TimeoutError, ValueError, TypeError)):
        Client(address.replace("tls://", "tcp://"), timeout=3)
    # no dashboard: the scheduler's HTTP server answers /health only (no identity.json)
    import httpx

    ports = [s.getsockname()[1] for s in cluster.scheduler.http_server._sockets.values()]
    hosts = {s.getsockname()[0] for s in cluster.scheduler.http_server._sockets.values()}
    assert hosts == {"127.0.0.1"}
    base = f"http://127.0.0.1:{ports[0]}"
    assert httpx.get(base + "/health", timeout=5).status_code == 200
    for path in ("/json/identity.json", "/status", "/info/main/workers.html"):
        assert httpx.get(base + path, timeout=5).status_code == 404


def test_no_server_secret_in_workers_and_every_socket_on_loopback(secure_client):
    envs = secure_client.run(lambda: {k: v for k, v in os.environ.items() if is_secret_name(k)})
    assert envs and all(env == {} for env in envs.values()), envs
    assert all(SECRET not in str(v) for v in envs.values())
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                assert conn.laddr.ip == "127.0.0.1", (proc.pid, conn)


def test_cancel_stops_the_dask_tasks(make_manager, toy, alice, secure_client):
    m = make_manager(compute="dask", client=secure_client)
    job = m.submit("toy", "slow", {"duration": 20.0, "steps": 40, "tag": "dask-cancel"}, alice)
    wait_for(lambda: m.get(job.job_id, alice).progress > 0, 30)
    t0 = time.monotonic()
    m.cancel(job.job_id, alice)
    wait_for(lambda: not m._queued, 3)
    # every queued task was cancelled: the worker is idle within one task (0.5 s)
    wait_for(lambda: not any(secure_client.processing().values()), 3)
    assert time.monotonic() - t0 < 3
    assert read_lines(toy.log_dir / "runs.log") == []


def test_conformance_instruments_only_in_debug_mode(monkeypatch):
    monkeypatch.delenv("DISPATCHER_DEBUG_MODE", raising=False)
    assert not [n for n in registry() if n.startswith("empty")]
    monkeypatch.setenv("DISPATCHER_DEBUG_MODE", "yes")
    assert {"empty", "empty-async", "empty-semi-async"} <= set(registry())


@pytest.fixture
def debug_manager(make_manager, tmp_path, monkeypatch):
    """A manager over the real registry in debug mode; the empty state file under tmp_path."""
    monkeypatch.setenv("DISPATCHER_DEBUG_MODE", "yes")
    monkeypatch.setenv("MMODA_EMPTY_STATE_DIR", str(tmp_path))
    (tmp_path / STATE_FILE).unlink(missing_ok=True)
    return lambda **kw: make_manager(instruments={}, **kw)


def test_cancel_ends_a_state_file_wait_and_a_resubmission_runs(debug_manager, tmp_path):
    m = debug_manager()
    anon = Rights()
    job = m.submit("empty-async", "dummy", {}, anon, session_id="S1")
    wait_for(lambda: m.store.get(job.job_id).attempts == 1)  # claimed: waiting for the state file
    t0 = time.monotonic()
    assert m.cancel(job.job_id, anon, session_id="S1").status is JobStatus.CANCELLED
    wait_for(lambda: not m._queued, 2)
    assert time.monotonic() - t0 < 2
    again = m.submit("empty-async", "dummy", {}, anon, session_id="S1")
    assert again.job_id == job.job_id and again.generation == 1
    (tmp_path / STATE_FILE).write_text("done")
    done = m.wait(job.job_id, 10)
    assert done.status is JobStatus.DONE and done.attempts == 1, done
    assert job.job_id not in m._cancelled


def test_resubmission_while_the_cancelled_run_is_stopping_runs(debug_manager, tmp_path):
    """Cancel and resubmit at once: the new run starts when the old thread lets go."""
    m = debug_manager()
    anon = Rights()
    job = m.submit("empty-async", "dummy", {}, anon, session_id="S2")
    wait_for(lambda: m.store.get(job.job_id).attempts == 1)
    m.cancel(job.job_id, anon, session_id="S2")
    m.submit("empty-async", "dummy", {}, anon, session_id="S2")
    (tmp_path / STATE_FILE).write_text("done")
    assert m.wait(job.job_id, 10).status is JobStatus.DONE


def test_stop_is_bounded_while_a_job_waits(debug_manager, tmp_path):
    m = debug_manager(stop_timeout=5.0)
    job = m.submit("empty-async", "dummy", {}, Rights(), session_id="S3")
    wait_for(lambda: m.store.get(job.job_id).attempts == 1)
    t0 = time.monotonic()
    assert m.stop_sync() is True
    assert time.monotonic() - t0 < 2
    assert m.store.get(job.job_id).status.value in ("submitted", "progress")  # resumes on restart
    (tmp_path / STATE_FILE).write_text("done")
    m2 = debug_manager()
    assert m2.wait(job.job_id, 10).status is JobStatus.DONE


def test_fair_share_one_user_cannot_take_every_slot(make_manager, toy, alice, bob):
    """Two slots; alice sends three slow jobs, then bob an instant one: bob runs at once."""
    m = make_manager(concurrency=2)
    slow = [m.submit("toy", "slow", {"duration": 1.5, "steps": 15, "tag": f"fair{i}"}, alice) for i in range(3)]
    quick = m.submit("toy", "sum", {"n": 2, "tag": "quick"}, bob)
    peak = 0
    t0 = time.monotonic()
    while m.store.get(quick.job_id).status is not JobStatus.DONE:
        with m._lock:
            peak = max(peak, m._running_users.get(alice.user, 0))
        assert time.monotonic() - t0 < 1.4, "bob's instant job waited behind alice's slow ones"
        time.sleep(0.01)
    assert m.store.get(slow[0].job_id).status is not JobStatus.DONE  # alice's first still running
    for job in slow:
        assert m.wait(job.job_id, 20).status is JobStatus.DONE
        with m._lock:
            peak = max(peak, m._running_users.get(alice.user, 0))
    assert peak == 1  # the registered tier's default: one running job per user


def test_running_jobs_limit_comes_from_the_tier_table():
    from mmoda_ext.access.tiers import TierTable

    table = TierTable.load()
    assert table.rights().running_jobs == 2
    assert table.rights("u@x").running_jobs == 2
    assert table.rights("u@x", roles={"unige-hpc-full"}).running_jobs == 3
    assert not table.rights("op@x", roles={"job manager"}).admin  # job managers are no administrators


def test_damaged_products_are_verified_and_the_job_runs_again(make_manager, toy, alice):
    m = make_manager()
    job = m.wait(m.submit("toy", "sum", {"n": 3, "tag": "damage"}, alice).job_id, 10)
    fits_path = job.outdir / "sum.fits"
    assert json.loads((job.outdir / "manifest.json").read_text())["files"]["sum.fits"]["size"] == fits_path.stat().st_size

    def runs() -> int:
        return len([r for r in read_lines(toy.log_dir / "runs.log") if r.startswith("sum damage")])

    assert runs() == 1
    assert m.submit("toy", "sum", {"n": 3, "tag": "damage"}, alice).generation == 0  # intact: the cache
    for damage in (lambda p: p.write_bytes(p.read_bytes()[:100]),  # truncated
                   lambda p: p.write_bytes(p.read_bytes()[:-1] + b"X"),  # altered, same size
                   lambda p: p.unlink()):  # deleted
        damage(fits_path)
        with pytest.raises(PublicError) as err:
            m.products(job.job_id, alice)
        assert err.value.status == 410
        again = m.submit("toy", "sum", {"n": 3, "tag": "damage"}, alice)
        assert m.wait(again.job_id, 10).status is JobStatus.DONE
        assert m.products(job.job_id, alice).products[0].meta["value"] == 5.0
    assert runs() == 4


def test_retention_by_age_and_size_never_touches_unfinished_jobs(make_manager, toy, alice):
    m = make_manager(retention_min_age=0.0)
    done = [m.wait(m.submit("toy", "sum", {"n": n, "tag": "ret"}, alice).job_id, 10) for n in (2, 3, 4)]
    m.cache.put(m.cache.key(step="old"), {"x": np.zeros(1000)})
    old = time.time() - 40 * 86400
    os.utime(done[0].outdir / "manifest.json", (old, old))
    os.utime(m.cache.path(m.cache.key(step="old")), (old, old))
    waiting = m.submit("toy", "slow", {"duration": 30.0, "steps": 300, "tag": "ret"}, alice)
    wait_for(lambda: m.store.get(waiting.job_id).status is JobStatus.PROGRESS)
    before = m.disk_usage()
    removed = m.sweep()
    assert removed["jobs"] == 1 and removed["cache_entries"] == 1  # the 40-day-old ones
    assert not done[0].outdir.exists() and done[1].outdir.exists()
    # over budget: least recently used first; the running job's folder is never a candidate
    os.utime(done[2].outdir / "manifest.json")
    m.retention_max_bytes = m.disk_usage()["products_bytes"] - 1
    assert m.sweep()["jobs"] >= 1 and not done[1].outdir.exists() and done[2].outdir.exists()
    assert waiting.outdir.exists() and before["jobs"] == 4
    m.cancel(waiting.job_id, alice)
    # a removed job runs again when asked for
    again = m.submit("toy", "sum", {"n": 2, "tag": "ret"}, alice)
    assert m.wait(again.job_id, 10).status is JobStatus.DONE and done[0].outdir.exists()


def test_store_refuses_corrupt_unwritable_or_log_lost_databases(tmp_path):
    bad = tmp_path / "corrupt" / "jobs.sqlite"
    bad.parent.mkdir()
    bad.write_bytes(b"SQLite format 3\x00" + os.urandom(5000))
    with pytest.raises(StoreError, match=str(bad)):
        JobStore(bad)
    blocked = tmp_path / "blocked" / "jobs.sqlite"
    blocked.parent.mkdir()
    (blocked.parent / "jobs.sqlite-wal").mkdir()  # the log cannot be written
    with pytest.raises(StoreError, match="cannot be written"):
        JobStore(blocked)
    # a process acknowledges a job and is killed; its write-ahead log is then lost
    lost = tmp_path / "lost" / "jobs.sqlite"
    code = ("import os, signal, sys; from mmoda_ext.jobs.store import JobStore; s = JobStore(sys.argv[1]); "
            "s.add_banner('acknowledged', 'news', None); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(lost)], timeout=60)
    wal = lost.with_name("jobs.sqlite-wal")
    assert wal.exists()
    kept = JobStore(lost)  # with its log, the acknowledged row is there
    assert [b["text"] for b in kept.banners()] == ["acknowledged"]
    kept.close()  # a clean close checkpoints the log into the file
    subprocess.run([sys.executable, "-c", code, str(lost)], timeout=60)
    wal.unlink()
    with pytest.raises(StoreError, match="write-ahead log jobs.sqlite-wal is missing") as err:
        JobStore(lost)
    marker = str(err.value).rsplit("delete ", 1)[1].split(" and ")[0]
    os.unlink(marker)  # the operator accepts the loss, as the message says
    lost.with_name("jobs.sqlite-shm").unlink(missing_ok=True)
    store = JobStore(lost)
    assert [b["text"] for b in store.banners()] == ["acknowledged"]  # the second one was in the lost log
    store.close()


def test_a_killed_dask_worker_does_not_change_the_result(make_manager, toy, alice, secure_client):
    """SIGKILL the worker in the middle of a job: its tasks run again and the product is the
    one an undisturbed run gives (the nanny restarts the worker on the same TLS credentials)."""
    m = make_manager(compute="dask", client=secure_client)
    params = {"duration": 4.0, "steps": 40, "tag": "kill"}
    job = m.submit("toy", "slow", params, alice)
    wait_for(lambda: m.store.get(job.job_id).progress >= 0.2, 60)
    pids = secure_client.run(os.getpid)
    for pid in pids.values():
        os.kill(pid, 9)
    done = m.wait(job.job_id, 120)
    assert done.status is JobStatus.DONE, done.error
    assert m.products(job.job_id, alice).products[0].meta["value"] == float(sum(range(40)))
    wait_for(lambda: secure_client.scheduler_info()["workers"], 60)  # the worker came back


def test_completion_mail_waits_for_smtp_and_is_sent_once(make_manager, alice):
    """SMTP down when the job ends: the mail stays due and goes out, once, when SMTP is back."""
    from aiosmtpd.controller import Controller
    from jobs_toy import free_port

    from mmoda_ext.jobs.notify import EmailNotifier

    port = free_port()
    notifier = EmailNotifier(smtp_server="127.0.0.1", smtp_port=port, sender="team@odahub.io",
                             smtp_attempts=1, smtp_retry_delay=0.0, smtp_timeout=2.0, completion_threshold=0.0,
                             on_submit=False)
    m = make_manager(notifier=notifier, mail_retry_interval=0.3)
    job = m.wait(m.submit("toy", "sum", {"n": 2, "tag": "smtp"}, alice).job_id, 10)
    m.wait_mail()
    assert [j.job_id for j in m.store.pending_notifications()] == [job.job_id]  # not lost: still due
    assert [e["kind"] for e in m.store.events(job.job_id)] == []

    received: list[str] = []

    class Box:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content.decode(errors="replace"))
            return "250 OK"

    controller = Controller(Box(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        wait_for(lambda: received, 15)
        time.sleep(1.0)  # several more retry rounds: nothing is sent twice
        assert len(received) == 1 and job.job_id[:8] in received[0]
        assert m.store.pending_notifications() == []
        assert [e["kind"] for e in m.store.events(job.job_id)] == ["done"]
    finally:
        controller.stop()
