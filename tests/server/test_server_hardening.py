"""The server as an attacker and a careless user see it (issue 8): rate limits that hold,
anonymous sessions kept apart, tokens in any header spelling, bounded input, 4xx not 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
from serve_helpers import ServeProcess, make_token

RUN = "/run_analysis"
ANON_PER_HOUR = 4


@pytest.fixture(scope="module")
def hard(tmp_path_factory, archive_dir):
    """A server behind a trusted proxy (127.0.0.1) with a small anonymous hourly limit."""
    tiers = tmp_path_factory.mktemp("tiers") / "tiers.json"
    tiers.write_text(json.dumps({"tiers": {
        "anonymous": {"max_scw": 50, "requests_per_hour": ANON_PER_HOUR, "how_to_get_more": "Log in."},
        "registered": {"authenticated": True, "max_scw": 500, "requests_per_hour": 1000},
        "jobmanager": {"roles": ["job manager"], "max_scw": 500, "requests_per_hour": 1000}}}))
    srv = ServeProcess(tmp_path_factory.mktemp("hard"), archive_dir, "--MMODAServe.tiers_file=" + str(tiers),
                       "--MMODAServe.trusted_proxies=127.0.0.1").start()
    srv.set_state("done")
    yield srv
    srv.set_state("done")
    srv.stop()


def from_(addr: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.113.99, {addr}"}  # the proxy appends the real peer last


def dummy(t1: str, **kw) -> dict:
    return {"instrument": "empty", "product_type": "dummy", "query_type": "Dummy", "query_status": "new",
            "T1": t1, **kw}


def test_anonymous_rate_limit_is_per_client_address(hard):
    # a fresh session_id per request, or none at all, does not reset the count
    for day in range(1, ANON_PER_HOUR + 1):
        params = dummy(f"2018-02-0{day}", **({"session_id": f"S{day}"} if day % 2 else {}))
        assert httpx.get(hard.url + RUN, params=params, headers=from_("198.51.100.1")).status_code == 200
    r = httpx.get(hard.url + RUN, params=dummy("2018-02-09", session_id="NEW"), headers=from_("198.51.100.1"))
    assert r.status_code == 429 and "per hour" in r.json()["error"]
    r = httpx.get(hard.url + RUN, params=dummy("2018-02-09"), headers=from_("198.51.100.1"))
    assert r.status_code == 429
    # repeating an earlier request is free; another client is not locked out
    assert httpx.get(hard.url + RUN, params=dummy("2018-02-01"), headers=from_("198.51.100.1")).status_code == 200
    assert httpx.get(hard.url + RUN, params=dummy("2018-02-09"), headers=from_("198.51.100.2")).status_code == 200
    # REST door: the same per-address bucket
    body = {"instrument": "empty", "product": "dummy", "query_type": "Dummy", "params": {"T1": "2018-03-01"}}
    r = httpx.post(hard.url + "/api/v1/jobs", json=body, headers=from_("198.51.100.1"))
    assert r.status_code == 429
    # users are limited per user, not per address
    tok = make_token("rate@example.org")
    r = httpx.post(hard.url + "/api/v1/jobs", json=body, headers={**from_("198.51.100.1"), "Authorization": f"Bearer {tok}"})
    assert r.status_code == 201


def test_anonymous_job_control_belongs_to_its_session(hard):
    hard.set_state(None)  # empty-async Real jobs wait
    try:
        body = {"instrument": "empty-async", "product": "dummy", "params": {"T1": "2019-07-07"}}
        first = httpx.post(hard.url + "/api/v1/jobs", json={**body, "session_id": "OWNER"}, headers=from_("192.0.2.1"))
        assert first.status_code == 201 and first.json()["session_id"] == "OWNER"
        jid = first.json()["job_id"]
        other = httpx.post(hard.url + "/api/v1/jobs", json={**body, "session_id": "INTRUDER"}, headers=from_("192.0.2.2"))
        assert other.json()["job_id"] == jid and "OWNER" not in other.text  # shared, not revealed
        assert "OWNER" not in httpx.get(f"{hard.url}/api/v1/jobs/{jid}").text
        r = httpx.delete(f"{hard.url}/api/v1/jobs/{jid}", params={"session_id": "INTRUDER"})
        assert r.status_code == 403 and r.json()["parameter"] == "session_id"
        assert httpx.delete(f"{hard.url}/api/v1/jobs/{jid}").status_code == 403
        listed = httpx.get(f"{hard.url}/api/v1/jobs", params={"session_id": "INTRUDER"}).json()
        assert jid not in [j["job_id"] for j in listed]
        # the dispatcher door: a repeat answers with the caller's own session id
        params = {"instrument": "empty-async", "product_type": "dummy", "query_status": "new",
                  "T1": "2019-07-07", "session_id": "THIRD"}
        r = httpx.get(hard.url + RUN, params=params, headers=from_("192.0.2.3"))
        assert r.status_code == 200 and r.json()["job_monitor"]["job_id"] == jid
        assert "OWNER" not in r.text and r.json()["job_monitor"]["session_id"] == "THIRD"
        r = httpx.delete(f"{hard.url}/api/v1/jobs/{jid}", params={"session_id": "OWNER"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
    finally:
        hard.set_state("done")


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "token"])
def test_authorization_header_on_every_door(hard, scheme):
    tok = make_token("header@example.org")
    auth = {"Authorization": f"{scheme} {tok}"}
    me = httpx.get(hard.url + "/api/v1/whoami", headers=auth).json()
    assert me["user"] == "header@example.org"
    r = httpx.get(hard.url + RUN, params=dummy("2018-04-04"), headers=auth)
    anon = httpx.get(hard.url + RUN, params=dummy("2018-04-04"), headers=from_("192.0.2.50"))
    assert r.status_code == 200 and r.json()["job_monitor"]["job_id"] != anon.json()["job_monitor"]["job_id"]
    mine = httpx.get(hard.url + "/api/v1/jobs", headers=auth).json()
    assert r.json()["job_monitor"]["job_id"] in [j["job_id"] for j in mine]
