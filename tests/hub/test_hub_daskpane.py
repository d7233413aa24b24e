"""JupyterLab's Dask pane (dask-labextension) in a hub user's server, on the real platform, and
the gateway's own idle timeout.

The pane's REST API (``/user/<name>/dask/clusters``, dask_labextension.clusterhandler) creates
and lists the user's own gateway cluster (the one MMODA jobs compute on, capped by the tier),
whose dashboard link is the owner-only guard. With a copy of the tier table whose idle timeout is
short, the gateway itself shuts the idle cluster down; the next job starts another, and the pane
shows the new one instead.
"""

from __future__ import annotations

import asyncio
import os
import time
from urllib.parse import quote

import httpx
import pytest
import yaml
from dask_gateway import Gateway, JupyterHubAuth

pytestmark = pytest.mark.integration

OWNER, OTHER = "registered", "hpc"
IDLE = 15.0  # s: the registered tier's cluster_idle_timeout in the idle-timeout test
TIMEOUT = 60


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"}


async def users_clusters(platform, token: str) -> list[str]:
    async with Gateway(address=f"{platform.hub_url}/services/dask-gateway",
                       proxy_address=f"gateway://127.0.0.1:{platform.ports['gateway']}",
                       auth=JupyterHubAuth(api_token=token), asynchronous=True) as gw:
        return [c.name for c in await gw.list_clusters()]


def name_of(model: dict) -> str:
    return model["scheduler_address"].rsplit("/", 1)[-1]


@pytest.fixture(scope="module")
def pane(platform):
    """The owner's server running (stopped at the end, with its cluster); the other user's token."""
    for user in (OWNER, OTHER):
        platform.login(user).close()
    owner = platform.user_token(OWNER)
    url = platform.spawn(OWNER).rstrip("/")
    yield {"token": owner, "other": platform.user_token(OTHER), "url": url,
           "dask": url + "/dask/clusters", "api": url + "/mmoda/api/v1"}
    platform.stop_server(OWNER)


@pytest.fixture(scope="module")
def lab_cluster(platform, pane):
    """'+ NEW' in the pane (PUT), then 'scale' to more workers than the tier allows."""
    r = httpx.put(pane["dask"] + "/", headers=auth(pane["token"]), timeout=240)
    assert r.status_code == 200, r.text
    model = r.json()
    r = httpx.patch(f"{pane['dask']}/{model['id']}", headers=auth(pane["token"]), json={"workers": 5},
                    timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return model


def submit_image(pane: dict, e1_kev: float) -> dict:
    """A 2-window ISGRI image; a new band each time (the same request would be answered from
    its earlier job, without computing)."""
    params = dict(src_name="Crab", RA=83.633, DEC=22.015, T1="2016-02-01T00:00:00", T2="2016-03-01T00:00:00",
                  E1_keV=e1_kev, E2_keV=40.0, max_pointings=2)
    r = httpx.post(f"{pane['api']}/jobs", headers=auth(pane["token"]), timeout=TIMEOUT,
                   json={"instrument": "isgri", "product": "isgri_image", "params": params})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = httpx.get(f"{pane['api']}/jobs/{r.json()['job_id']}", headers=auth(pane["token"]),
                        timeout=TIMEOUT).json()
        if job.get("finished"):
            assert job["status"] == "done", job.get("error")
            return job
        time.sleep(0.5)
    raise AssertionError(f"job not finished: {job}")


async def test_the_pane_creates_the_users_own_gateway_cluster_capped_by_the_tier(platform, pane, lab_cluster):
    name = name_of(lab_cluster)
    assert lab_cluster["scheduler_address"] == f"gateway://127.0.0.1:{platform.ports['gateway']}/{name}"
    assert name in await users_clusters(platform, pane["token"])
    assert name not in await users_clusters(platform, pane["other"])
    # kept where the extension's jobs find it (they compute on it, next test)
    assert (platform.state / "home" / OWNER / ".mmoda" / "gateway-cluster").read_text().strip() == name
    listed = httpx.get(pane["dask"], headers=auth(pane["token"]), timeout=TIMEOUT).json()
    assert [m["id"] for m in listed] == [lab_cluster["id"]]
    # '+ NEW' again while it is shown: the same entry, not a second card for the same cluster
    again = httpx.put(pane["dask"], headers=auth(pane["token"]), timeout=TIMEOUT)
    assert again.status_code == 200 and again.json()["id"] == lab_cluster["id"], again.text
    listed = httpx.get(pane["dask"], headers=auth(pane["token"]), timeout=TIMEOUT).json()
    assert [m["id"] for m in listed] == [lab_cluster["id"]]
    # asked for 5 workers: the registered tier's cap (1 in the hub tests) is what comes
    deadline = time.monotonic() + 120
    model = lab_cluster
    while time.monotonic() < deadline and model["workers"] < 1:
        await asyncio.sleep(1)
        model = httpx.get(f"{pane['dask']}/{lab_cluster['id']}", headers=auth(pane["token"]), timeout=TIMEOUT).json()
    await asyncio.sleep(5)  # a second worker would have come by now
    model = httpx.get(f"{pane['dask']}/{lab_cluster['id']}", headers=auth(pane["token"]), timeout=TIMEOUT).json()
    assert model["workers"] == 1, model
    # another user's server is not reachable, nor their pane
    r = httpx.get(pane["dask"], headers=auth(pane["other"]), timeout=TIMEOUT, follow_redirects=False)
    assert r.status_code in (302, 403, 404), r.status_code


def test_its_dashboard_link_is_the_guard_for_the_owner_only(platform, pane, lab_cluster):
    name = name_of(lab_cluster)
    link = lab_cluster["dashboard_link"]
    assert link == f"/services/mmoda-dashboards/{name}/status"  # never /services/dask-gateway/clusters/
    owner = httpx.get(platform.hub_url + link, headers=auth(pane["token"]), timeout=TIMEOUT)
    assert owner.status_code == 200 and "bokeh" in owner.text.lower(), owner.status_code
    other = httpx.get(platform.hub_url + link, headers=auth(pane["other"]), timeout=TIMEOUT)
    assert other.status_code == 403
    anonymous = httpx.get(platform.hub_url + link, timeout=TIMEOUT, follow_redirects=False)
    assert anonymous.status_code == 302 and "/hub/" in anonymous.headers["location"]
    # the pane's own check of the link (server side) finds the dashboard's plots
    check = httpx.get(f"{pane['url']}/dask/dashboard-check/{quote(link, safe='')}", headers=auth(pane["token"]),
                      timeout=TIMEOUT)
    assert check.status_code == 200, check.text
    assert check.json()["isActive"] is True and check.json()["plots"], check.json()
    # a cluster name that is not the owner's: inactive, nothing shown
    foreign = f"/services/mmoda-dashboards/{name[:-4]}beef/status"
    check = httpx.get(f"{pane['url']}/dask/dashboard-check/{quote(foreign, safe='')}",
                      headers=auth(pane["token"]), timeout=TIMEOUT).json()
    assert check["isActive"] is False and not check["plots"]


def test_a_job_computes_on_the_panes_cluster(pane, lab_cluster):
    job = submit_image(pane, 20.7)  # a band no other test of the session asks for
    assert job["compute"]["cluster"] == name_of(lab_cluster)
    assert job["compute"]["dashboard_link"] == lab_cluster["dashboard_link"]
    listed = httpx.get(pane["dask"], headers=auth(pane["token"]), timeout=TIMEOUT).json()
    assert [name_of(m) for m in listed] == [name_of(lab_cluster)]  # shown once


async def test_the_gateway_shuts_an_idle_cluster_down_and_the_next_job_starts_another(platform, pane, lab_cluster):
    # 'shut down' in the pane stops the cluster at the gateway
    r = httpx.delete(f"{pane['dask']}/{lab_cluster['id']}", headers=auth(pane["token"]), timeout=TIMEOUT)
    assert r.status_code == 204, r.text
    assert name_of(lab_cluster) not in await users_clusters(platform, pane["token"])
    # the operator shortens the idle timeout of the tiers a registered user matches (the most
    # generous applies: anonymous and registered); the gateway re-reads the table
    original = platform.tiers.read_text()
    table = yaml.safe_load(original)
    for tier in ("anonymous", "registered"):
        table["tiers"][tier]["cluster_idle_timeout"] = f"{IDLE:g} s"
    platform.tiers.write_text(yaml.safe_dump(table, sort_keys=False))
    os.utime(platform.tiers, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime, surely
    try:
        job = submit_image(pane, 22.7)  # the next need: a new cluster, with the short idle timeout
    finally:
        platform.tiers.write_text(original)
        os.utime(platform.tiers, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    idle = job["compute"]["cluster"]
    assert idle != name_of(lab_cluster)
    done = time.monotonic()
    while idle in await users_clusters(platform, pane["token"]):
        assert time.monotonic() - done < 4 * IDLE + 60, f"cluster {idle} still running"
        await asyncio.sleep(0.5)
    waited = time.monotonic() - done
    print(f"the gateway stopped the idle cluster {waited:.1f} s after its last job (idle timeout {IDLE:g} s)")
    assert waited > IDLE / 2  # its own timeout, not at once
    # and the next job starts another; the pane shows it instead of the stopped one
    job = submit_image(pane, 24.7)
    new = job["compute"]["cluster"]
    assert new not in (idle, name_of(lab_cluster)) and new in await users_clusters(platform, pane["token"])
    deadline = time.monotonic() + 30
    while True:
        listed = httpx.get(pane["dask"], headers=auth(pane["token"]), timeout=TIMEOUT).json()
        if [name_of(m) for m in listed] == [new] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert [name_of(m) for m in listed] == [new]
    assert listed[0]["dashboard_link"] == f"/services/mmoda-dashboards/{new}/status"
