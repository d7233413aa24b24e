"""Faults under a real 50-window ISGRI mosaic (issue 8, evidence that stays in the suite).

* a Dask worker process SIGKILLed while the windows are being decoded: the job still finishes,
  once, with the mosaic of an undisturbed run;
* the archive's per-window cache folder deleted while a job reads it: the windows are made
  again (byte-identical) and the job finishes, once, with the same mosaic.

The mosaic of a run is a sum of per-window images merged in the order Dask finishes them, so
two runs agree to float rounding (``rtol`` 1e-5 on float32 images), not bit for bit: the merge
order differs between runs, disturbed or not.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from mmoda_ext.access.rights import Rights
from mmoda_ext.archive.isgri_data import generate_window
from mmoda_ext.jobs.compute import local_client
from mmoda_ext.jobs.manager import JobManager
from mmoda_ext.models import JobStatus

N_WINDOWS = 50
RIGHTS = Rights.local("fault-tester")


@pytest.fixture(scope="module")
def archive(sky_archive):
    return sky_archive("faults-archive")


@pytest.fixture(scope="module")
def windows(archive):
    """50 windows of the February 2016 Crab campaign, generated once (a warm archive cache)."""
    found = archive.index.select(83.633, 22.015, 10.0, Time("2016-02-01"), Time("2016-03-01"), 2 * N_WINDOWS)[::2]
    assert len(found) == N_WINDOWS
    for w in found:
        generate_window(archive, w)
    return found


@pytest.fixture(scope="module")
def client():
    """The embedded cluster as ``mmoda serve`` makes it: 2 single-threaded worker processes."""
    c = local_client(2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


def request(windows) -> dict:
    return {"RA": 83.633, "DEC": 22.015, "T1": "2016-02-01", "T2": "2016-03-01", "E1_keV": 25.0,
            "E2_keV": 40.0, "scw_list": ",".join(w.scw_id for w in windows)}


def run_job(root, archive, client, windows, during=None, at: float = 0.2):
    """Run the request on a fresh manager root; ``during(manager, job)`` is called once the job
    has reached progress ``at``. Returns (finished job, mosaic arrays by extension)."""
    m = JobManager(root=str(root), compute="dask", client=client, archive=archive, progress_interval=0.0,
                   retry_delay=0.0)
    m.start_sync()
    try:
        job = m.submit("isgri", "isgri_image", request(windows), RIGHTS)
        if during is not None:
            end = time.monotonic() + 120
            while m.store.get(job.job_id).progress < at:
                assert time.monotonic() < end and not m.store.get(job.job_id).status.finished, \
                    m.store.get(job.job_id).to_dict()
                time.sleep(0.005)
            during(m, job)
        done = m.wait(job.job_id, 300)
        assert done.status is JobStatus.DONE, done.error
        files = sorted(done.outdir.glob("*mosaic*.fits"))
        assert files, sorted(p.name for p in done.outdir.iterdir())
        with fits.open(files[0]) as hdul:
            arrays = {f"{i}:{h.header.get('IMATYPE', h.name)}": np.asarray(h.data, float)
                      for i, h in enumerate(hdul) if h.is_image and h.data is not None}
        return done, arrays
    finally:
        m.close()


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, archive, client, windows):
    return run_job(tmp_path_factory.mktemp("undisturbed"), archive, client, windows)


def same_mosaic(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) >= 3, (a.keys(), b.keys())
    for name in a:
        finite = np.isfinite(a[name])
        assert np.array_equal(finite, np.isfinite(b[name])), name
        np.testing.assert_allclose(b[name][finite], a[name][finite], rtol=1e-5, atol=1e-9, err_msg=name)


def test_worker_killed_mid_mosaic_same_product(tmp_path, archive, client, windows, undisturbed):
    ref_job, ref = undisturbed
    killed = []

    def kill_one_worker(manager, job):
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        killed.append((victim, manager.store.get(job.job_id)))

    job, mosaic = run_job(tmp_path / "killed", archive, client, windows, kill_one_worker)
    (victim, then), = killed
    assert not then.status.finished and then.progress < 0.8, then.to_dict()  # in the windows' pass
    assert job.attempts == 1, job.to_dict()  # the job ran once: Dask re-ran the lost worker's windows
    same_mosaic(ref, mosaic)
    # the nanny brought a new worker process back
    end = time.monotonic() + 60
    while len(client.scheduler_info()["workers"]) < 2:
        assert time.monotonic() < end, "the killed worker was not restarted"
        time.sleep(0.1)
    assert victim not in client.run(os.getpid).values()


def test_archive_cache_deleted_under_a_running_job(tmp_path, archive, client, windows, undisturbed):
    _, ref = undisturbed
    folder = archive.root / "isgri"
    before = {w.scw_id: archive.path_for("isgri", w).read_bytes() for w in windows[-3:]}
    deleted = []

    def delete_cache(manager, job):
        deleted.append(time.time())
        shutil.rmtree(folder)
        deleted.append(manager.store.get(job.job_id))

    job, mosaic = run_job(tmp_path / "deleted", archive, client, windows, delete_cache, at=0.4)
    when, then = deleted
    assert not then.status.finished, then.to_dict()
    # finished once, never failed or retried
    assert job.attempts == 1 and job.status is JobStatus.DONE, job.to_dict()
    same_mosaic(ref, mosaic)
    remade = [w for w in windows if archive.path_for("isgri", w).stat().st_mtime >= when]
    assert remade, "the job read no window after the deletion"
    for w in windows[-3:]:  # windows read after the deletion were made again, byte-identical
        assert archive.path_for("isgri", w).read_bytes() == before[w.scw_id]
