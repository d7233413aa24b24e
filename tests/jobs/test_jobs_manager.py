"""JobManager: submit -> done, identical requests, ownership, cancel, retries, limits, resume."""

from __future__ import annotations

import shutil
import time

import pytest
from astropy.io import fits
from jobs_toy import read_lines

from mmoda_ext.access.rights import Rights
from mmoda_ext.errors import PublicError
from mmoda_ext.jobs import ids
from mmoda_ext.models import JobStatus


def runs(toy) -> list[str]:
    return read_lines(toy.log_dir / "runs.log")


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.02)


def test_submit_to_done_with_products(make_manager, toy, alice):
    m = make_manager()
    job = m.submit("toy", "sum", {"n": "4", "tag": "a"}, alice)
    assert job.status is JobStatus.SUBMITTED and job.user == alice.user and job.email == alice.email
    assert job.job_id == ids.job_id(job.params, alice.user)
    job = m.wait(job.job_id, 10)
    assert job.status is JobStatus.DONE and job.progress == 1.0 and job.error is None
    assert "sum=14.0" in job.messages
    prods = m.products(job.job_id, alice)
    assert [p.name for p in prods.products] == ["sum"]
    with fits.open(prods.products[0].fits) as hdul:
        assert hdul["TOY-RESULT"].data["VALUE"][0] == 0 + 1 + 4 + 9
    assert (job.outdir / "products.json").exists()


def test_identical_request_is_the_same_job_and_not_recomputed(make_manager, toy, alice):
    m = make_manager()
    first = m.wait(m.submit("toy", "sum", {"n": 3, "tag": "same"}, alice).job_id, 10)
    again = m.submit("toy", "sum", {"tag": "same", "n": "3", "session_id": "other", "token": "t"}, alice)
    assert again.job_id == first.job_id and again.status is JobStatus.DONE
    assert again.created == first.created
    assert runs(toy) == [f"sum same {runs(toy)[0].split()[-1]}"]
    # a different parameter is another job
    other = m.submit("toy", "sum", {"n": 4, "tag": "same"}, alice)
    assert other.job_id != first.job_id
    m.wait(other.job_id, 10)
    assert len(runs(toy)) == 2


def test_identical_running_request_attaches(make_manager, toy, alice):
    m = make_manager()
    a = m.submit("toy", "slow", {"duration": 0.5, "tag": "attach"}, alice)
    b = m.submit("toy", "slow", {"duration": 0.5, "tag": "attach"}, alice)
    assert a.job_id == b.job_id
    m.wait(a.job_id, 10)
    assert runs(toy) and len(runs(toy)) == 1


def test_done_job_whose_products_vanished_runs_again(make_manager, toy, alice):
    m = make_manager()
    job = m.wait(m.submit("toy", "sum", {"n": 2, "tag": "v"}, alice).job_id, 10)
    shutil.rmtree(job.outdir)
    again = m.submit("toy", "sum", {"n": 2, "tag": "v"}, alice)
    assert again.status is JobStatus.SUBMITTED and again.generation == 1
    assert m.wait(job.job_id, 10).status is JobStatus.DONE
    assert len(runs(toy)) == 2 and m.products(job.job_id, alice).products


def test_one_user_never_sees_anothers_job(make_manager, alice, bob):
    m = make_manager()
    job = m.submit("toy", "sum", {"n": 2}, alice)
    m.wait(job.job_id, 10)
    for call in (m.get, m.cancel, m.products):
        with pytest.raises(PublicError) as err:
            call(job.job_id, bob)
        assert err.value.status == 404 and job.job_id in err.value.message
    assert m.list(bob) == [] and [j.job_id for j in m.list(alice)] == [job.job_id]
    assert m.get(job.job_id, alice).job_id == job.job_id
    with pytest.raises(PublicError):
        m.get(job.job_id, Rights())  # anonymous
    # the same request by bob is bob's own job
    assert m.submit("toy", "sum", {"n": 2}, bob).job_id != job.job_id
    # an operator sees it
    assert m.get(job.job_id, Rights(user="op", tier="registered", roles=frozenset({"job manager"}))).user == alice.user


def test_anonymous_jobs_listed_by_session_only(make_manager):
    m = make_manager()
    anon = Rights()
    job = m.submit("toy", "sum", {"n": 1}, anon, session_id="S1")
    assert job.user == "anonymous" and job.job_id == ids.job_id(job.params, None)
    assert m.get(job.job_id, anon).job_id == job.job_id
    assert [j.job_id for j in m.list(anon, session_id="S1")] == [job.job_id]
    assert m.list(anon) == [] and m.list(anon, session_id="S2") == []


def test_validation_errors_store_nothing(make_manager, alice):
    m = make_manager()
    with pytest.raises(PublicError) as err:
        m.submit("toy", "sum", {"n": "-1"}, alice)
    assert err.value.parameter == "n"
    with pytest.raises(PublicError):
        m.submit("toy", "nope", {}, alice)
    assert m.list(alice) == []


def test_cancel_stops_a_running_job(make_manager, toy, alice):
    m = make_manager()
    job = m.submit("toy", "slow", {"duration": 3.0, "steps": 30, "tag": "c"}, alice)
    wait_for(lambda: m.get(job.job_id, alice).status is JobStatus.PROGRESS)
    cancelled = m.cancel(job.job_id, alice)
    assert cancelled.status is JobStatus.CANCELLED and "cancelled" in cancelled.error
    assert cancelled.status.wire == "failed"
    wait_for(lambda: not m._queued, 5)  # the worker thread let go within a step
    assert runs(toy) == [] and m.get(job.job_id, alice).status is JobStatus.CANCELLED
    with pytest.raises(PublicError) as err:
        m.products(job.job_id, alice)
    assert err.value.status == 409


def test_failed_tasks_are_retried(make_manager, toy, alice):
    m = make_manager(max_retries=2)
    job = m.wait(m.submit("toy", "flaky", {"fail_times": 2, "tag": "r"}, alice).job_id, 10)
    assert job.status is JobStatus.DONE
    assert sum("retrying" in msg for msg in job.messages) == 2
    job = m.wait(m.submit("toy", "flaky", {"fail_times": 9, "tag": "x"}, alice).job_id, 10)
    assert job.status is JobStatus.FAILED and "RuntimeError" in job.error and job.job_id in job.error
    assert "simulated worker crash" not in job.error  # internal text is not shown to users
    assert len(read_lines(toy.log_dir / "flaky-x.count")) == 3


def test_public_error_is_not_retried(make_manager, toy, alice):
    m = make_manager(max_retries=3)
    job = m.wait(m.submit("toy", "nodata", {"tag": "p"}, alice).job_id, 10)
    assert job.status is JobStatus.FAILED and job.error.startswith("No science window")
    assert len(read_lines(toy.log_dir / "nodata-p.count")) == 1
    # a failed job is run again when asked again
    again = m.submit("toy", "nodata", {"tag": "p"}, alice)
    assert again.generation == 1 and m.wait(again.job_id, 10).status is JobStatus.FAILED


def test_requests_per_hour(make_manager, alice):
    m = make_manager(start=False)
    limited = Rights(user="carol", tier="registered", requests_per_hour=2, email=None)
    m.submit("toy", "sum", {"n": 1}, limited)
    m.submit("toy", "sum", {"n": 2}, limited)
    m.submit("toy", "sum", {"n": 1}, limited)  # the same request again: free
    with pytest.raises(PublicError) as err:
        m.submit("toy", "sum", {"n": 3}, limited)
    assert err.value.status == 429
    assert "2 per hour" in err.value.message and "'registered'" in err.value.message
    m.submit("toy", "sum", {"n": 3}, alice)  # others are not affected


def test_submitted_before_start_runs_after_start(make_manager, toy, alice):
    first = make_manager(start=False)
    job = first.submit("toy", "sum", {"n": 3, "tag": "late"}, alice)
    first.close()
    second = make_manager()
    assert second.wait(job.job_id, 10).status is JobStatus.DONE
    assert [r.split()[:2] for r in runs(toy)] == [["sum", "late"]]


def test_stopped_mid_job_resumes_in_new_manager(make_manager, toy, alice):
    first = make_manager()
    job = first.submit("toy", "slow", {"duration": 2.0, "steps": 20, "tag": "resume"}, alice)
    wait_for(lambda: first.get(job.job_id, alice).progress > 0.1)
    first.stop_sync()
    stopped = first.store.get(job.job_id)
    assert stopped.status is JobStatus.PROGRESS and runs(toy) == []
    assert "interrupted by a server stop; will resume" in stopped.messages
    second = make_manager()
    done = second.wait(job.job_id, 15)
    assert done.status is JobStatus.DONE and done.attempts == 2
    assert [r.split()[:2] for r in runs(toy)] == [["slow", "resume"]]


def test_products_written_before_crash_are_not_recomputed(make_manager, toy, alice):
    """A job whose run completed (products.json) but was not marked done is marked done."""
    first = make_manager()
    job = first.wait(first.submit("toy", "sum", {"n": 2, "tag": "pj"}, alice).job_id, 10)
    first.close()
    # simulate the crash window: products written, state not yet updated
    import sqlite3

    db = sqlite3.connect(first.store.path)
    db.execute("UPDATE jobs SET status='progress', finished=NULL WHERE job_id=?", (job.job_id,))
    db.commit()
    db.close()
    second = make_manager()
    done = second.wait(job.job_id, 10)
    assert done.status is JobStatus.DONE and len(runs(toy)) == 1


def test_provenance_cache_shared_by_overlapping_requests(make_manager, toy, alice, bob):
    m = make_manager()
    m.wait(m.submit("toy", "sum", {"n": 4}, alice).job_id, 10)
    assert sorted(read_lines(toy.log_dir / "items.log")) == ["0", "1", "2", "3"]
    job = m.wait(m.submit("toy", "sum", {"n": 6}, bob).job_id, 10)
    assert sorted(read_lines(toy.log_dir / "items.log")) == ["0", "1", "2", "3", "4", "5"]
    assert m.products(job.job_id, bob).products[0].meta["value"] == sum(i * i for i in range(6))
    assert m.cache.size() == 6


def test_dask_compute_on_a_shared_client(make_manager, toy, alice):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        m = make_manager(compute="dask", client=client)
        jobs = [m.submit("toy", "sum", {"n": n}, alice) for n in (3, 5)]
        done = [m.wait(j.job_id, 30) for j in jobs]
        assert [d.status for d in done] == [JobStatus.DONE, JobStatus.DONE]
        assert [m.products(j.job_id, alice).products[0].meta["value"] for j in jobs] == [5.0, 30.0]
        assert m.dask_client() is client
        m.stop_sync()
        assert client.status == "running"  # a client given to the manager is not closed by it


def test_banners_and_feedback(make_manager, alice):
    import astropy.units as u
    from astropy.time import Time

    m = make_manager()
    m.publish_banner("OSA11.2 is the default", "news")
    m.publish_banner("Archive maintenance", kind="issue", expires=Time.now() + 1 * u.hour)
    m.publish_banner("gone", kind="issue", expires=time.time() - 1)
    assert {b["text"] for b in m.banners()} == {"OSA11.2 is the default", "Archive maintenance"}
    with pytest.raises(PublicError):
        m.publish_banner("x", kind="weather")
    job = m.submit("toy", "sum", {"n": 1}, alice)
    entry = m.add_feedback(job.job_id, "Please use a larger radius.", "team")
    assert m.get(job.job_id, alice).feedback == [entry]
    with pytest.raises(PublicError):
        m.add_feedback("0000000000000000", "x", "team")


async def test_async_start_stop(make_manager, alice):
    m = make_manager(start=False)
    await m.start()
    job = m.submit("toy", "sum", {"n": 2}, alice)
    m.wait(job.job_id, 10)
    await m.stop()
    assert not m.running


def test_job_of_an_instrument_gone_after_restart_fails_cleanly(make_manager, toy, alice):
    first = make_manager(start=False)
    job = first.submit("toy", "sum", {"n": 1}, alice)
    first.close()
    second = make_manager(instruments={})  # the plug-in is not installed any more
    done = second.wait(job.job_id, 10)
    assert done.status is JobStatus.FAILED and "toy" in done.error and "instrument" in done.error
    assert second.store.unfinished() == []


def test_crash_loop_is_given_up(make_manager, alice):
    """A job that killed its server too often (attempts recorded in the store) is failed, not run."""
    import sqlite3

    first = make_manager(start=False)
    job = first.submit("toy", "sum", {"n": 1}, alice)
    first.close()
    db = sqlite3.connect(first.store.path)
    db.execute("UPDATE jobs SET attempts=3, status='progress' WHERE job_id=?", (job.job_id,))
    db.commit()
    db.close()
    second = make_manager(max_attempts=3)
    done = second.wait(job.job_id, 10)
    assert done.status is JobStatus.FAILED and "interrupted 3 times" in done.error


def test_vanished_products_answer_410(make_manager, alice):
    m = make_manager()
    job = m.wait(m.submit("toy", "sum", {"n": 1}, alice).job_id, 10)
    shutil.rmtree(job.outdir)
    with pytest.raises(PublicError) as err:
        m.products(job.job_id, alice)
    assert err.value.status == 410 and "submit the same request again" in err.value.message


def test_two_managers_on_one_store_run_each_job_once(make_manager, toy, alice):
    first = make_manager(start=False)
    jobs = [first.submit("toy", "slow", {"duration": 0.2, "steps": 2, "tag": f"t{i}"}, alice) for i in range(6)]
    second = make_manager(start=False)
    first.start_sync()
    second.start_sync()
    for job in jobs:
        assert first.wait(job.job_id, 20).status is JobStatus.DONE
    tags = sorted(r.split()[1] for r in runs(toy))
    assert tags == sorted(f"t{i}" for i in range(6))
    assert all(first.store.get(j.job_id).attempts == 1 for j in jobs)
