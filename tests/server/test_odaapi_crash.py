"""SIGKILL `mmoda serve` while jobs run, start it again: every accepted job finishes, none twice.

The real oda_api client keeps polling across the outage (it retries connection errors); the
``empty-async`` instrument's run log (one line per completed run) is the independent count.
"""

from __future__ import annotations

import socket
import time

import httpx
from oda_api.api import DispatcherAPI
from serve_helpers import ServeProcess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigkill_while_jobs_run_every_job_finishes_once(tmp_path, archive_dir):
    port = free_port()
    # a fixed port, so that the clients keep their URL across the restart
    srv = ServeProcess(tmp_path / "srv", archive_dir, "--JobManager.concurrency=2",
                       "--JobManager.lease_seconds=3", port=port)
    srv.set_state(None)  # jobs wait for the mock data server
    srv.start()
    try:
        disps = []
        for day in range(1, 6):  # five distinct requests
            disp = DispatcherAPI(url=srv.url, wait=False)
            disp.retry_sleep_s = 0.5
            assert disp.get_product(instrument="empty-async", product="dummy",
                                    T1=f"2020-01-0{day}T00:00:00", T2="2020-01-10T00:00:00") is None
            assert disp.query_status == "submitted"
            disps.append(disp)
        ids = [d.job_id for d in disps]
        assert len(set(ids)) == 5
        # two are running (concurrency 2), three are queued
        end = time.monotonic() + 90
        while time.monotonic() < end:
            started = [httpx.get(f"{srv.url}/api/v1/jobs/{j}").json()["started"] for j in ids]
            if sum(s is not None for s in started) == 2:
                break
            time.sleep(0.1)
        assert sum(s is not None for s in started) == 2

        srv.kill()  # SIGKILL: no shutdown code runs
        assert srv.runs() == []
        srv.set_state("done")
        srv.start()

        for disp in disps:
            end = time.monotonic() + 60
            while not disp.is_complete:
                assert time.monotonic() < end, f"job {disp.job_id} still {disp.query_status}"
                disp.poll()
                time.sleep(0.2)
            assert disp.query_status == "done"
        runs = srv.runs()
        assert sorted(runs) == sorted(ids)  # every job completed exactly once
    finally:
        srv.set_state("done")
        srv.stop()
