"""The hub as a new user meets it: from login to the first ISGRI image, split by stage.

Starts the platform on loopback (``mmoda platform``'s launcher), then for two users the
provider has never seen before (the first on a cold archive, the second once the archive has
the science windows, as on a running platform):

* login         the provider's form, the hub's callback (``Platform.login``)
* spawn         the user's server (JupyterLab + the MMODA extension) until ready
* cluster start from submitting the job until the user's Dask Gateway cluster is RUNNING
  (the extension creates it on first need)
* mosaic        from there until the 20-window ISGRI mosaic (Crab, 20-40 keV) is done and its
  product list is served

Prints seconds per stage (one run, no timed assertions). Aims (printed with their verdicts):
under 30 s from login to image; the login page within 60 s of ``make run`` (issue 11).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.report import aim
from mmoda_ext.platform import Platform

REQUEST = {"src_name": "Crab", "RA": 83.633, "DEC": 22.015, "T1": "2016-02-01T00:00:00",
           "T2": "2016-03-01T00:00:00", "E1_keV": 20.0, "E2_keV": 40.0, "max_pointings": 20}


def first_image(p: Platform, user: str, timeout: float = 900) -> dict[str, float]:
    """Seconds per stage for ``user``'s first image (the user is created at the provider)."""
    p.set_claims(user, {"preferred_username": user, "email": f"{user}@example.org",
                        "name": user.title(), "groups": ["mmoda-registered"]})
    stages: dict[str, float] = {}
    t = time.perf_counter()
    p.login(user).close()
    stages["login"] = time.perf_counter() - t
    t = time.perf_counter()
    url = p.spawn(user).rstrip("/")
    stages["spawn"] = time.perf_counter() - t
    token = p.user_token(user)
    auth = {"Authorization": f"token {token}"}
    api = f"{url}/mmoda/api/v1"
    t = time.perf_counter()
    r = httpx.post(f"{api}/jobs", headers=auth, timeout=120,
                   json={"instrument": "isgri", "product": "isgri_image", "params": REQUEST})
    r.raise_for_status()
    job_id = r.json()["job_id"]
    clusters = f"{p.hub_url}/services/dask-gateway/api/v1/clusters/?status=RUNNING"
    cluster_at = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster_at is None:
            running = httpx.get(clusters, headers={"Authorization": f"jupyterhub {token}"},
                                timeout=60).json()
            if running:
                cluster_at = time.perf_counter()
        job = httpx.get(f"{api}/jobs/{job_id}", headers=auth, timeout=60).json()
        if job.get("finished"):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"{user}'s job {job_id} did not finish within {timeout:.0f} s")
    if job["status"] != "done":
        raise RuntimeError(f"{user}'s job ended {job['status']}: {job}")
    products = httpx.get(f"{api}/jobs/{job_id}/products", headers=auth, timeout=60).json()
    if not any(pr.get("fits") for pr in products["products"]):
        raise RuntimeError(f"{user}'s job has no FITS image: {products}")
    end = time.perf_counter()
    cluster_at = cluster_at or end
    stages["cluster start"] = cluster_at - t
    stages["mosaic"] = end - cluster_at
    stages["login to image"] = sum(stages.values())
    return stages


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        t = time.perf_counter()
        p = Platform(state=Path(tmp) / "state")
        p.start()
        try:
            print(f"platform start: {time.perf_counter() - t:.1f} s", flush=True)
            aim("login page after make run (venv ready)", p.login_ready_after, "<=", 60, " s", digits=1)
            rows = {"new user, cold archive": first_image(p, "newcomer-1"),
                    "new user, warm archive": first_image(p, "newcomer-2")}
        finally:
            p.stop()
    stages = list(next(iter(rows.values())))
    print(f"{'stage':<16}" + "".join(f"{name:>26}" for name in rows))
    for stage in stages:
        print(f"{stage:<16}" + "".join(f"{row[stage]:>24.1f} s" for row in rows.values()))
    # the aim is a new user on a running platform (the archive has the windows)
    aim("login to first image, new user", rows["new user, warm archive"]["login to image"], "<", 30, " s",
        digits=1)


if __name__ == "__main__":
    main()
