"""The MMODA extension in hub users' servers, on the real platform (provider, hub, gateway,
archive, public service), used as the users would: REST calls with their hub token, an
unchanged ``oda_api`` script in a kernel of their own server, e-mails to their provider address,
and the public dispatcher at /services/mmoda/ for anonymous and token users.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dask_gateway import Gateway, JupyterHubAuth
from oda_api.api import DispatcherAPI, RemoteException

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from extension_helpers import ISGRI_IMAGE, ODA_API_SCRIPT, run_in_kernel  # noqa: E402

pytestmark = pytest.mark.integration

TIMEOUT = 60
OWNER, OTHER = "registered", "hpc"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


@pytest.fixture(scope="module")
def users(platform):
    """Both users logged in through the provider, with a hub token; their servers running.

    The owner's server sends completion mails for jobs longer than 1 s (its own Jupyter config
    in its home): a "long job" here, without waiting for MMODA's 30 minutes.
    """
    home = platform.state / "home" / OWNER / ".jupyter"
    home.mkdir(parents=True, exist_ok=True)
    (home / "jupyter_server_config.json").write_text(json.dumps(
        {"EmailNotifier": {"completion_threshold": 1.0}}))
    out = {}
    for user in (OWNER, OTHER):
        platform.login(user).close()
        token = platform.user_token(user)
        url = platform.spawn(user).rstrip("/")
        out[user] = {"token": token, "url": url, "api": url + "/mmoda/api/v1"}
    return out


def wait_job(api: str, token: str, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/jobs/{job_id}", headers=auth(token), timeout=TIMEOUT).json()
        if job.get("finished"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not finished in {timeout} s: {job}")


async def users_clusters(platform, token: str) -> list[str]:
    async with Gateway(address=f"{platform.hub_url}/services/dask-gateway",
                       proxy_address=f"gateway://127.0.0.1:{platform.ports['gateway']}",
                       auth=JupyterHubAuth(api_token=token), asynchronous=True) as gw:
        return [c.name for c in await gw.list_clusters()]


@pytest.fixture(scope="module")
def owner_job(platform, users):
    """An ISGRI image submitted through the owner's extension REST API (4 windows, 20-40 keV)."""
    u = users[OWNER]
    params = {k: v for k, v in ISGRI_IMAGE.items() if k not in ("instrument", "product")}
    r = httpx.post(f"{u['api']}/jobs", headers=auth(u["token"]), timeout=TIMEOUT,
                   json={"instrument": "isgri", "product": "isgri_image", "params": params})
    assert r.status_code == 201, r.text
    return wait_job(u["api"], u["token"], r.json()["job_id"])


def test_identity_is_the_hub_user_and_groups(users):
    for user, tier, max_scw in ((OWNER, "registered", 500), (OTHER, "hpc", 5000)):
        u = users[user]
        me = httpx.get(f"{u['api']}/whoami", headers=auth(u["token"]), timeout=TIMEOUT)
        assert me.status_code == 200, me.text
        assert (me.json()["user"], me.json()["tier"], me.json()["max_scw"]) == (user, tier, max_scw)


async def test_rest_image_runs_on_the_users_gateway_cluster(platform, users, owner_job):
    assert owner_job["status"] == "done", owner_job
    compute = owner_job["compute"]
    assert compute["scheduler_address"].startswith(f"gateway://127.0.0.1:{platform.ports['gateway']}/")
    assert compute["cluster"] in await users_clusters(platform, users[OWNER]["token"])
    assert compute["cluster"] not in await users_clusters(platform, users[OTHER]["token"])
    assert compute["dashboard_link"] == f"/services/mmoda-dashboards/{compute['cluster']}/status"
    # kept to adopt it again after a crash of the server (and only it)
    state = platform.state / "home" / OWNER / ".mmoda" / "gateway-cluster"
    assert state.read_text().strip() == compute["cluster"]
    # the cluster panel's view of it: the gateway cluster, capped by the tier, guarded dashboard
    panel = httpx.get(f"{users[OWNER]['api']}/cluster", headers=auth(users[OWNER]["token"]),
                      timeout=TIMEOUT).json()
    assert panel["kind"] == "gateway" and panel["dashboard"] == compute["dashboard_link"]
    assert 1 <= len(panel["workers"]) <= panel["limits"]["max_workers"]
    # products are in the owner's home, readable through the owner's server only
    outdir = platform.state / "home" / OWNER / ".mmoda" / "jobs" / "jobs" / owner_job["job_id"]
    assert (outdir / "products.json").is_file()
    # the data came from the archive service into the user's per-window cache, not a local archive
    assert list((platform.state / "home" / OWNER / ".mmoda" / "archive-cache" / "isgri").rglob("*.fits"))
    assert not (platform.state / "home" / OWNER / ".cache" / "mmoda" / "archive").exists()


def test_unchanged_oda_api_script_inside_the_users_server(platform, users, owner_job):
    u = users[OWNER]
    out = run_in_kernel(u["url"], auth(u["token"]), ODA_API_SCRIPT.format(max_pointings=3))
    assert "STATUS done" in out, out
    job_id = next(ln for ln in out.splitlines() if ln.startswith("JOB")).split()[1]
    job = httpx.get(f"{u['api']}/jobs/{job_id}", headers=auth(u["token"]), timeout=TIMEOUT).json()
    assert job["user"] == OWNER and job["status"] == "done"
    # the same cluster as the REST job: created on first need, then reused
    assert job["compute"]["cluster"] == owner_job["compute"]["cluster"]
    env = run_in_kernel(u["url"], auth(u["token"]), "import os; print(os.environ['DISPATCHER_URL'])")
    assert env.strip().endswith(f"/user/{OWNER}/mmoda") and env.startswith("http://127.0.0.1:")


def test_a_long_job_mails_once_on_submission_and_once_on_completion(platform, users, owner_job):
    tag = owner_job["job_id"][:8]
    mine = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mine = [m for m in platform.smtp_messages if tag in m["Subject"]]
        if {"submitted", "done"} <= {m["Subject"].split("][")[1].split("]")[0] for m in mine}:
            break
        time.sleep(0.5)
    time.sleep(3)  # a duplicate would have arrived by now
    mine = [m for m in platform.smtp_messages if tag in m["Subject"]]
    kinds = sorted(m["Subject"].split("][")[1].split("]")[0] for m in mine)
    assert kinds == ["done", "submitted"], [m["Subject"] for m in mine]
    assert {m["To"] for m in mine} == {f"{OWNER}@example.org"}  # the provider's email claim
    assert {m["From"] for m in mine} == {"mmoda-hub@example.org"}


def test_no_route_to_another_users_jobs_products_or_server(platform, users, owner_job):
    owner, other = users[OWNER], users[OTHER]
    jid = owner_job["job_id"]
    routes = [f"{owner['api']}/jobs/{jid}", f"{owner['api']}/jobs/{jid}/products",
              f"{owner['api']}/jobs", f"{owner['url']}/mmoda/run_analysis?instrument=isgri&job_id={jid}",
              f"{owner['url']}/api/contents", f"{owner['url']}/api/kernels"]
    for url in routes:
        r = httpx.get(url, headers=auth(other["token"]), timeout=TIMEOUT)
        assert r.status_code == 403, (url, r.status_code, r.text[:200])
        anonymous = httpx.get(url, timeout=TIMEOUT)
        assert anonymous.status_code in (302, 403), (url, anonymous.status_code)
        assert jid not in anonymous.text
    # the other user's own server and the public service do not know the job
    r = httpx.get(f"{other['api']}/jobs/{jid}", headers=auth(other["token"]), timeout=TIMEOUT)
    assert r.status_code == 404
    r = httpx.get(f"{platform.hub_url}/services/mmoda/api/v1/jobs/{jid}", headers=auth(other["token"]),
                  timeout=TIMEOUT)
    assert r.status_code in (403, 404)
    # the owner's ODA token is only the owner's: the other server refuses it
    oda_token = run_in_kernel(owner["url"], auth(owner["token"]),
                              "import os; print(os.environ['ODA_TOKEN'])").strip()
    r = httpx.get(f"{other['url']}/mmoda/api/instr-list", params={"token": oda_token}, timeout=TIMEOUT)
    assert r.status_code in (302, 403)
    # and the owner's dashboard is not the other user's
    dash = platform.hub_url + owner_job["compute"]["dashboard_link"]
    r = httpx.get(dash, headers=auth(other["token"]), timeout=TIMEOUT)
    assert r.status_code in (403, 404), r.status_code


def public_disp(platform) -> DispatcherAPI:
    disp = DispatcherAPI(url=f"{platform.hub_url}/services/mmoda")
    disp.n_max_tries, disp.retry_sleep_s = 2, 0.5
    return disp


def test_public_service_anonymous_50_token_500(platform):
    request = dict(ISGRI_IMAGE, max_pointings=51)
    with pytest.raises(RemoteException) as err:
        public_disp(platform).get_product(**request)
    assert "at most 50" in str(err.value.message) + str(err.value.debug_message)
    secret = platform.environment()["MMODA_TOKEN_SECRET"]
    token = subprocess.run(
        [str(Path(sys.executable).with_name("mmoda")), "token", "issue", "--sub", "jane@example.org",
         "--email", "jane@example.org", "--roles", "general"],
        env=dict(os.environ, MMODA_TOKEN_SECRET=secret), capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    me = httpx.get(f"{platform.hub_url}/services/mmoda/api/v1/whoami", headers={"Authorization": f"Bearer {token}"},
                   timeout=TIMEOUT).json()
    assert (me["tier"], me["max_scw"]) == ("registered", 500)
    with pytest.raises(RemoteException) as err:
        public_disp(platform).get_product(**dict(ISGRI_IMAGE, max_pointings=501), token=token)
    assert "at most 500" in str(err.value.message) + str(err.value.debug_message)
    # 51 windows: refused to anonymous callers, accepted with the token (then cancelled)
    api = f"{platform.hub_url}/services/mmoda/api/v1"
    params = {k: v for k, v in ISGRI_IMAGE.items() if k not in ("instrument", "product")}
    body = {"instrument": "isgri", "product": "isgri_image", "params": {**params, "max_pointings": 51}}
    r = httpx.post(f"{api}/jobs", json=body, timeout=TIMEOUT)
    assert r.status_code == 403 and "at most 50 " in r.json()["error"], r.text
    bearer = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{api}/jobs", json=body, headers=bearer, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    job = httpx.post(f"{api}/jobs/{r.json()['job_id']}/cancel", headers=bearer, timeout=TIMEOUT).json()
    assert job["status"] in ("cancelled", "done")


def test_a_group_removed_at_the_provider_lowers_the_tier_in_the_running_server(platform):
    """The extension reads the hub's groups per request: no restart of the user's server."""
    sub = "demoted-ext"
    claims = {"preferred_username": sub, "email": f"{sub}@example.org", "name": "De Moted"}
    platform.set_claims(sub, {**claims, "groups": ["mmoda-registered", "mmoda-hpc"]})
    platform.login(sub).close()
    token = platform.user_token(sub)
    url = platform.spawn(sub).rstrip("/")
    started = platform.user_model(sub)["servers"][""]["started"]

    def tier() -> tuple[str, int]:
        me = httpx.get(f"{url}/mmoda/api/v1/whoami", headers=auth(token), timeout=TIMEOUT).json()
        return me["tier"], me["max_scw"]

    assert tier() == ("hpc", 5000)
    platform.set_claims(sub, {**claims, "groups": ["mmoda-registered"]})
    deadline = time.monotonic() + 6 * platform.auth_refresh_age + 60
    seen = None
    while time.monotonic() < deadline:
        seen = tier()
        if seen == ("registered", 500):
            break
        time.sleep(1)
    assert seen == ("registered", 500)
    assert platform.user_model(sub)["servers"][""]["started"] == started  # the same server
    platform.stop_server(sub)


async def test_a_culled_cluster_is_replaced_on_the_next_job(platform, users, owner_job):
    """The gateway shuts an idle cluster down (tier idle timeout); the next job starts another."""
    u = users[OWNER]
    old = owner_job["compute"]["cluster"]
    async with Gateway(address=f"{platform.hub_url}/services/dask-gateway",
                       proxy_address=f"gateway://127.0.0.1:{platform.ports['gateway']}",
                       auth=JupyterHubAuth(api_token=u["token"]), asynchronous=True) as gw:
        await gw.stop_cluster(old)  # what the idle timeout does
    params = {k: v for k, v in ISGRI_IMAGE.items() if k not in ("instrument", "product")}
    r = httpx.post(f"{u['api']}/jobs", headers=auth(u["token"]), timeout=TIMEOUT,
                   json={"instrument": "isgri", "product": "isgri_image", "params": {**params, "max_pointings": 2}})
    assert r.status_code == 201, r.text
    job = wait_job(u["api"], u["token"], r.json()["job_id"])
    assert job["status"] == "done", job.get("error")
    assert job["compute"]["cluster"] != old
    assert job["compute"]["cluster"] in await users_clusters(platform, u["token"])


async def test_stopping_the_server_stops_its_cluster(platform, users):
    """Last: the owner's server stops (e.g. the idle culler); its cluster goes with it."""
    token = users[OWNER]["token"]
    assert await users_clusters(platform, token)
    platform.stop_server(OWNER)
    deadline = time.monotonic() + 60
    while await users_clusters(platform, token) and time.monotonic() < deadline:
        await asyncio.sleep(1)
    assert await users_clusters(platform, token) == []
