"""The jupyter-server extension ``mmoda_ext`` without a hub (a laptop, Binder): a real
``jupyter server`` on 127.0.0.1, the REST API and the dispatcher door under ``/mmoda/``,
jupyter-server's authentication in front of both, and an unchanged ``oda_api`` script in a
script given the environment of that server's kernels getting an ISGRI image through the
ODA_TOKEN the extension exported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import jwt
import pytest
from astropy.io import fits
from extension_helpers import ISGRI_IMAGE, JUPYTER, ODA_API_SCRIPT, JupyterServer, run_in_kernel

from mmoda_ext.access.tokens import issue_token

TIMEOUT = 60


@pytest.fixture(scope="module")
def jserver(tmp_path_factory, archive_dir):
    srv = JupyterServer(tmp_path_factory.mktemp("jserver"), {"MMODA_ARCHIVE": str(archive_dir)},
                        "--JobManager.n_workers=1").start()
    yield srv
    srv.stop()


def test_extension_enabled_on_install():
    out = subprocess.run([JUPYTER, "server", "extension", "list"], capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("mmoda_ext ") and "enabled" in ln)
    assert "enabled" in line
    assert "mmoda_ext 0.1.0 \x1b[32mOK" in text or "mmoda_ext 0.1.0 OK" in text


def test_every_route_needs_authentication(jserver):
    for path in ("/mmoda/api/v1/whoami", "/mmoda/api/v1/jobs", "/mmoda/run_analysis?instrument=empty",
                 "/mmoda/api/instr-list", "/mmoda/dispatch-data/run_analysis"):
        r = httpx.get(jserver.url + path, timeout=TIMEOUT)
        assert r.status_code == 403, (path, r.text)
    # a token of another secret (e.g. MMODA's own) is not this server's owner token
    forged = issue_token("not-this-server", "someone@example.org", roles="general,unige-hpc-full")
    r = httpx.get(jserver.url + "/mmoda/api/instr-list", params={"token": forged}, timeout=TIMEOUT)
    assert r.status_code == 403
    r = httpx.post(jserver.url + "/mmoda/api/v1/jobs", json={"instrument": "empty", "product": "dummy"},
                   params={"token": forged}, timeout=TIMEOUT)
    assert r.status_code == 403


def test_local_user_through_the_server_token(jserver):
    r = httpx.get(jserver.url + "/mmoda/api/v1/whoami", headers=jserver.auth, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["tier"] == "local" and me["max_scw"] >= 5000
    r = httpx.get(jserver.url + "/mmoda/api/v1/instruments", headers=jserver.auth, timeout=TIMEOUT)
    assert {"isgri", "jemx", "empty"} <= {i["name"] for i in r.json()}


def test_rest_job_in_the_users_home(jserver):
    body = {"instrument": "isgri", "product": "isgri_image", "params": {
        k: v for k, v in ISGRI_IMAGE.items() if k not in ("instrument", "product")} | {"max_pointings": 2}}
    r = httpx.post(jserver.url + "/mmoda/api/v1/jobs", json=body, headers=jserver.auth, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    job = r.json()
    for _ in range(600):
        job = httpx.get(jserver.url + f"/mmoda/api/v1/jobs/{job['job_id']}", headers=jserver.auth,
                        timeout=TIMEOUT).json()
        if job["finished"]:
            break
        time.sleep(0.5)
    assert job["status"] == "done", job
    assert (jserver.home / ".mmoda" / "jobs" / "jobs" / job["job_id"] / "products.json").is_file()
    prods = httpx.get(jserver.url + f"/mmoda/api/v1/jobs/{job['job_id']}/products", headers=jserver.auth,
                      timeout=TIMEOUT).json()["products"]
    fits_url = next(p["fits_url"] for p in prods if p.get("fits_url"))
    r = httpx.get(f"http://127.0.0.1:{jserver.port}{fits_url}", headers=jserver.auth, timeout=TIMEOUT)
    assert r.status_code == 200 and r.headers["content-type"] == "application/fits"
    # the REST answer is the same list of routes as `mmoda serve`'s: the job is listed as ours
    mine = httpx.get(jserver.url + "/mmoda/api/v1/jobs", headers=jserver.auth, timeout=TIMEOUT).json()
    assert job["job_id"] in {j["job_id"] for j in mine}


def test_oda_api_script_in_a_subprocess_with_the_exported_env(jserver, tmp_path):
    """An unchanged oda_api script, run with the variables every kernel of the server inherits."""
    env_text = run_in_kernel(jserver.url, jserver.auth,
                             "import os; print(os.environ['DISPATCHER_URL'], os.environ['ODA_TOKEN'])")
    url, token = env_text.split()
    assert url == f"http://127.0.0.1:{jserver.port}/mmoda"
    claims = jwt.decode(token, options={"verify_signature": False})  # what oda_api itself does
    assert claims["exp"] > claims["iat"] and not claims["roles"]
    script = tmp_path / "script.py"
    script.write_text(ODA_API_SCRIPT.format(max_pointings=3))
    env = dict(os.environ, DISPATCHER_URL=url, ODA_TOKEN=token, HOME=str(tmp_path))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "STATUS done" in out.stdout
    units = next(ln for ln in out.stdout.splitlines() if ln.startswith("UNITS"))
    assert units.count("ISGR-MOSA-IMA") == 4, units  # intensity, variance, significance, exposure
    # the door took the ODA token alone (no jupyter token): the job is the owner's
    job_id = next(ln for ln in out.stdout.splitlines() if ln.startswith("JOB")).split()[1]
    job = httpx.get(jserver.url + f"/mmoda/api/v1/jobs/{job_id}", headers=jserver.auth, timeout=TIMEOUT)
    assert job.status_code == 200 and job.json()["status"] == "done"
    # the token opens the dispatcher door only, not the REST API
    r = httpx.get(url + "/api/instr-list", params={"token": token}, timeout=TIMEOUT)
    assert r.status_code == 200 and "isgri" in r.json()
    r = httpx.get(url + "/api/v1/whoami", params={"token": token}, timeout=TIMEOUT)
    assert r.status_code == 403
    # oda_api POSTs large requests as a form: the token in the body opens the door (no XSRF
    # cookie is involved); the answer is the dispatcher's own (400 for an unknown instrument)
    form = {"instrument": "no-such-instrument", "query_status": "new", "product_type": "x"}
    r = httpx.post(url + "/run_analysis", data={**form, "token": token}, timeout=TIMEOUT)
    assert r.status_code == 400 and "InstrumentNotRecognized" in r.json()["error"], r.text
    r = httpx.post(url + "/run_analysis", data=form, timeout=TIMEOUT)
    assert r.status_code == 403
    prods = httpx.get(jserver.url + f"/mmoda/api/v1/jobs/{job_id}/products", headers=jserver.auth,
                      timeout=TIMEOUT).json()["products"]
    fits_url = next(p["fits_url"] for p in prods if p.get("fits_url"))
    data = httpx.get(f"http://127.0.0.1:{jserver.port}{fits_url}", headers=jserver.auth, timeout=TIMEOUT).content
    path = tmp_path / "mosaic.fits"
    path.write_bytes(data)
    with fits.open(path) as hdul:
        images = [h for h in hdul if h.name == "ISGR-MOSA-IMA"]
        assert [h.header["IMATYPE"] for h in images][:1] == ["INTENSITY"]
        assert images[0].data.ndim == 2 and images[0].data.shape[0] > 10
