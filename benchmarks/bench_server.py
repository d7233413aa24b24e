"""The job server under load and on repeats: ratios and latencies measured in one run.

``python -m benchmarks server`` starts a real ``mmoda serve`` on 127.0.0.1 (serial compute,
a private root and archive) and prints:

* cached repeat: a finished 5-window ISGRI image asked again through ``/run_analysis``. The
  server answers from the stored, ready-encoded products; the server's CPU time per answer
  (which, unlike wall time, does not grow when other processes share the cores) and the
  loopback round trip (median of repeats), beside the first answer that had to encode the
  products and the ``oda_api`` end-to-end time (which adds its own decoding);
* load: 20 users submitting mixed requests at once (instant Dummy jobs, waiting "Real" jobs
  and repeats); submit latency p50/p99, whether any job was lost or duplicated (each ran
  exactly once, from the server's run log), and the fair share (most jobs of one user running
  at once, against the tier's ``running_jobs``, from the jobs' start and finish times).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from benchmarks.report import aim

REPO = Path(__file__).resolve().parents[1]


def _server(tmp: Path):
    sys.path.insert(0, str(REPO / "tests" / "server"))
    from serve_helpers import ServeProcess

    return ServeProcess(tmp / "srv", tmp / "archive", "--JobManager.concurrency=2").start(timeout=120)


def _cpu(proc: psutil.Process) -> float:
    """CPU seconds of the server process: server time that does not depend on machine load."""
    t = proc.cpu_times()
    return t.user + t.system


def cached_repeat(srv, repeats: int = 15) -> dict:
    from oda_api.api import DispatcherAPI

    params = {"instrument": "isgri", "product_type": "isgri_image", "query_type": "Real", "query_status": "new",
              "src_name": "Crab", "RA": 83.633, "DEC": 22.015, "T1": "2016-02-01T00:00:00",
              "T2": "2016-03-01T00:00:00", "E1_keV": 20, "E2_keV": 40, "max_pointings": 5}
    with httpx.Client(timeout=600) as http:
        t = time.perf_counter()
        r = http.get(srv.url + "/run_analysis", params=params)
        while r.json()["query_status"] != "done":
            time.sleep(0.5)
            r = http.get(srv.url + "/run_analysis", params={**params, "query_status": "submitted",
                                                                "job_id": r.json()["job_monitor"]["job_id"]})
        t_compute = time.perf_counter() - t
        for f in (srv.root / "jobs").glob("*/.oda_api-products-*.json"):
            f.unlink()  # the first answer after completion encodes the products
        proc = psutil.Process(srv.proc.pid)
        t, c = time.perf_counter(), _cpu(proc)
        first = http.get(srv.url + "/run_analysis", params=params)
        t_first, c_first = time.perf_counter() - t, _cpu(proc) - c
        times = []
        c = _cpu(proc)
        for _ in range(repeats):
            t = time.perf_counter()
            r = http.get(srv.url + "/run_analysis", params=params)
            _ = r.content
            times.append(time.perf_counter() - t)
        c_repeat = (_cpu(proc) - c) / repeats
    assert first.json()["query_status"] == "done" and r.json()["query_status"] == "done"
    size_mb = len(r.content) / 1e6
    disp = DispatcherAPI(url=srv.url)
    kw = {k: v for k, v in params.items() if k not in ("query_status", "instrument", "product_type", "query_type")}
    ends = []
    for _ in range(3):
        t = time.perf_counter()
        data = disp.get_product(instrument="isgri", product="isgri_image", product_type="Real", **kw)
        ends.append(time.perf_counter() - t)
    assert data is not None
    out = {"compute_s": t_compute, "answer_mb": size_mb, "first_answer_ms": 1e3 * t_first,
           "first_answer_server_cpu_ms": 1e3 * c_first, "repeat_server_cpu_ms": 1e3 * c_repeat,
           "repeat_ms_median": 1e3 * statistics.median(times), "oda_api_end_to_end_ms": 1e3 * statistics.median(ends)}
    print(f"cached repeat of a finished 5-window ISGRI image ({size_mb:.1f} MB answer):")
    print(f"  computing it                      {t_compute:8.2f} s")
    print(f"  first answer (encodes products)   {out['first_answer_ms']:8.1f} ms wall, "
          f"{out['first_answer_server_cpu_ms']:.1f} ms server CPU")
    print(f"  repeat (stored encoded answer)     {out['repeat_ms_median']:8.1f} ms wall (median of {repeats}), "
          f"{out['repeat_server_cpu_ms']:.1f} ms server CPU per answer "
          f"-> {c_first / max(c_repeat, 1e-9):.1f}x less server CPU than encoding")
    print(f"  oda_api get_product end to end     {out['oda_api_end_to_end_ms']:8.1f} ms (adds the client's decoding)")
    aim("cached repeat, server CPU per answer", out["repeat_server_cpu_ms"], "<", 30, " ms", digits=1)
    return out


def load(srv, users: int = 20) -> dict:
    from serve_helpers import make_token

    srv.set_state(None)  # "Real" empty-async jobs wait for the state file
    latencies: list[float] = []
    accepted: dict[str, set[str]] = {}
    lock = threading.Lock()
    start = threading.Barrier(users)

    def user(i: int) -> None:
        auth = {"Authorization": f"Bearer {make_token(f'user{i}@example.org')}"}
        requests = [
            {"instrument": "empty", "product": "dummy", "query_type": "Dummy", "params": {"T1": f"2018-01-{1 + i % 28:02d}"}},
            {"instrument": "empty-async", "product": "dummy", "params": {"T1": f"2019-02-{1 + i % 28:02d}"}},
            {"instrument": "empty-async", "product": "dummy", "params": {"T1": f"2019-03-{1 + i % 28:02d}"}},
            {"instrument": "empty", "product": "dummy", "query_type": "Dummy", "params": {"T1": f"2018-01-{1 + i % 28:02d}"}},
        ]
        start.wait()
        with httpx.Client(timeout=60) as http:
            for body in requests:
                t = time.perf_counter()
                r = http.post(srv.url + "/api/v1/jobs", json=body, headers=auth)
                dt = time.perf_counter() - t
                r.raise_for_status()
                with lock:
                    latencies.append(dt)
                    accepted.setdefault(f"user{i}", set()).add(r.json()["job_id"])

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    time.sleep(0.5)
    srv.set_state("done")
    jobs: list[dict] = []
    deadline = time.monotonic() + 300
    with httpx.Client(timeout=60) as http:
        for i in range(users):
            auth = {"Authorization": f"Bearer {make_token(f'user{i}@example.org')}"}
            while True:
                mine = http.get(srv.url + "/api/v1/jobs", headers=auth).json()
                if all(j["finished"] for j in mine) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            jobs += mine
    expected = sum(len(v) for v in accepted.values())
    runs = srv.runs()
    ran_once = len(runs) == len(set(runs))
    done = [j for j in jobs if j["status"] == "done"]
    peak_user = peak_all = 0  # most jobs running at once: of one user, of all
    spans_all = []
    for i in range(users):
        spans = [(j["started"], j["finished_at"]) for j in jobs
                 if j["user"] == f"user{i}@example.org" and j.get("started") and j["finished_at"]]
        spans_all += spans
        peak_user = max(peak_user, _peak(spans))
    peak_all = _peak(spans_all)
    lat = sorted(latencies)
    out = {"users": users, "requests": len(lat), "distinct_jobs": expected, "done": len(done),
           "lost": expected - len(done), "each_ran_once": ran_once, "peak_running_one_user": peak_user,
           "peak_running_all": peak_all,
           "submit_p50_ms": 1e3 * lat[len(lat) // 2], "submit_p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]}
    print(f"load: {users} users x 4 mixed requests at once ({out['requests']} submits, {expected} distinct jobs):")
    print(f"  submit latency p50 {out['submit_p50_ms']:.1f} ms, p99 {out['submit_p99_ms']:.1f} ms")
    print(f"  done {len(done)}/{expected}, lost {out['lost']}, each ran exactly once: {ran_once}")
    print(f"  most jobs running at once: {peak_user} of one user (tier limit 2), {peak_all} in all (4 slots)")
    aim("load: jobs lost", out["lost"], "<=", 0, digits=0)
    aim("load: jobs run more than once", len(runs) - len(set(runs)), "<=", 0, digits=0)
    aim("load: most jobs of one user running at once", peak_user, "<=", 2, digits=0)
    return out


def _peak(spans: list[tuple[float, float]]) -> int:
    """Most intervals overlapping at one moment."""
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans], key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def main() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        srv = _server(Path(tmp))
        try:
            return {"cached_repeat": cached_repeat(srv), "load": load(srv)}
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
