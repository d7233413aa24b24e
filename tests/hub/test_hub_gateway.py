"""Dask Gateway behind the hub: clusters sized by the user's tier, caps held by the gateway.

Users call the gateway as a notebook does (their hub token, ``auth=jupyterhub``); the caps are
checked with raw HTTP too, so they hold whatever a client sends.
"""

from __future__ import annotations

import asyncio
import os
import time
import warnings

import httpx
import pytest
import yaml
from dask_gateway import Gateway, JupyterHubAuth

from mmoda_ext.access.tiers import TierTable

pytestmark = pytest.mark.integration


def gateway_for(platform, token: str) -> Gateway:
    return Gateway(address=f"{platform.hub_url}/services/dask-gateway",
                   proxy_address=f"gateway://127.0.0.1:{platform.ports['gateway']}",
                   auth=JupyterHubAuth(api_token=token), asynchronous=True)


def gateway_api(platform, token: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{platform.hub_url}/services/dask-gateway/api/v1{path}",
                         headers={"Authorization": f"jupyterhub {token}"}, timeout=60, **kw)


def option_bounds(platform, token: str) -> dict:
    r = gateway_api(platform, token, "GET", "/options")
    assert r.status_code == 200, r.text
    return {f["field"]: f["spec"] for f in r.json()["cluster_options"]}


@pytest.fixture(scope="module")
def tokens(platform):
    for user in ("registered", "hpc"):
        platform.login(user).close()
    return {u: platform.user_token(u) for u in ("registered", "hpc")}


async def workers_after_scale(platform, token: str, ask: int) -> tuple[int, str, dict]:
    """Create a cluster, ask for ``ask`` workers with a raw HTTP call, wait for what comes;
    returns (number of workers, the gateway's answer, each worker's MMODA_USER/MMODA_TIER)."""
    async with gateway_for(platform, token) as gw:
        cluster = await gw.new_cluster()
        try:
            r = gateway_api(platform, token, "POST", f"/clusters/{cluster.name}/scale",
                            json={"count": ask})
            assert r.status_code == 200, r.text
            answer = r.json().get("msg", "")
            async with cluster.get_client(set_as_default=False) as client:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    n = len((await client.scheduler.identity())["workers"])
                    if n and n >= min(ask, 1):
                        await asyncio.sleep(3)  # more would have started by now
                        n = len((await client.scheduler.identity())["workers"])
                        break
                    await asyncio.sleep(0.5)
                env = await client.run(lambda: (os.environ.get("MMODA_USER"),
                                                os.environ.get("MMODA_TIER")))
            return n, answer, env
        finally:
            await cluster.shutdown()


async def test_registered_cluster_is_capped_at_the_tier(platform, tokens):
    table = TierTable.load(platform.tiers)
    cap = table.rights("registered", groups={"mmoda-registered"}).max_workers
    n, answer, env = await workers_after_scale(platform, tokens["registered"], ask=cap + 4)
    assert n == cap
    assert f"resource limit of {cap} workers" in answer
    assert set(env.values()) == {("registered", "registered")}


async def test_hpc_cluster_is_larger(platform, tokens):
    table = TierTable.load(platform.tiers)
    reg = table.rights("registered", groups={"mmoda-registered"})
    hpc = table.rights("hpc", groups={"mmoda-registered", "mmoda-hpc"})
    assert hpc.max_workers > reg.max_workers
    n, answer, env = await workers_after_scale(platform, tokens["hpc"], ask=hpc.max_workers + 3)
    assert n == hpc.max_workers
    assert {v[1] for v in env.values()} == {"hpc"}


def test_options_bounds_and_refusal_follow_the_tier(platform, tokens):
    table = TierTable.load(platform.tiers)
    reg = table.rights("registered", groups={"mmoda-registered"})
    bounds = option_bounds(platform, tokens["registered"])
    assert bounds["worker_cores"]["max"] == reg.worker_cores
    assert bounds["worker_memory"]["max"] == pytest.approx(reg.worker_memory / 2**30)
    r = gateway_api(platform, tokens["registered"], "POST", "/clusters/",
                    json={"cluster_options": {"worker_cores": reg.worker_cores + 1}})
    assert r.status_code == 422
    assert f"worker_cores must be <= {reg.worker_cores}" in r.text


def test_token_without_gateway_scope_is_refused(platform, tokens):
    token = platform.user_token("registered", scopes=["read:users:name!user"])
    assert gateway_api(platform, token, "GET", "/options").status_code == 401


def test_edited_tier_table_changes_the_cap(platform, tokens):
    """An operator edits the table: the next cluster gets the new figures, no restart."""
    original = platform.tiers.read_text()
    table = yaml.safe_load(original)
    old = TierTable(table).tier("registered")
    table["tiers"]["registered"]["max_workers"] = old.max_workers + 1
    table["tiers"]["registered"]["worker_memory"] = "1.5 GiB"  # above anonymous' (also matched)
    try:
        platform.tiers.write_text(yaml.safe_dump(table, sort_keys=False))
        os.utime(platform.tiers, ns=(time.time_ns(), time.time_ns() + 10**9))
        bounds = option_bounds(platform, tokens["registered"])
        assert bounds["worker_memory"]["max"] == pytest.approx(1.5)

        async def ask_more():
            async with gateway_for(platform, tokens["registered"]) as gw:
                cluster = await gw.new_cluster(worker_memory=1.0)
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        await cluster.scale(old.max_workers + 5)
                    return [str(w.message) for w in caught]
                finally:
                    await cluster.shutdown()

        messages = asyncio.run(ask_more())
        assert any(f"resource limit of {old.max_workers + 1} workers" in m for m in messages), messages
    finally:
        platform.tiers.write_text(original)
        os.utime(platform.tiers, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert option_bounds(platform, tokens["registered"])["worker_memory"]["max"] == pytest.approx(
        old.worker_memory / 2**30)
