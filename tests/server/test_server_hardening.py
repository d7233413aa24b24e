"""The server as an attacker and a careless user see it (issue 8): rate limits that hold,
anonymous sessions kept apart, tokens in any header spelling, bounded input, 4xx not 5xx."""

from __future__ import annotations

import json
import os
import random
import socket
import time

import httpx
import jwt
import pytest
from serve_helpers import SECRET, ServeProcess, make_token

RUN = "/run_analysis"
#: wall-clock budget of the fuzzer (the suite stays lean; raise it for a long run)
FUZZ_SECONDS = float(os.environ.get("MMODA_FUZZ_SECONDS", "30"))
ANON_PER_HOUR = 4


@pytest.fixture(scope="module")
def hard(tmp_path_factory, archive_dir):
    """A server behind a trusted proxy (127.0.0.1) with a small anonymous hourly limit."""
    tiers = tmp_path_factory.mktemp("tiers") / "tiers.json"
    tiers.write_text(json.dumps({"tiers": {
        "anonymous": {"max_scw": 50, "requests_per_hour": ANON_PER_HOUR, "how_to_get_more": "Log in."},
        "registered": {"authenticated": True, "max_scw": 500, "requests_per_hour": 1000},
        "jobmanager": {"roles": ["job manager"], "max_scw": 500, "requests_per_hour": 1000}},
        "admin_roles": ["mmoda-admin"]}))
    srv = ServeProcess(tmp_path_factory.mktemp("hard"), archive_dir, "--MMODAServe.tiers_file=" + str(tiers),
                       "--MMODAServe.trusted_proxies=127.0.0.1", "--MMODAServe.idle_timeout=2").start()
    srv.set_state("done")
    # the first request loads the archive (seconds on a busy machine); the tests time the rest
    httpx.get(srv.url + RUN, params=dummy("2010-10-10"), headers=from_("192.0.2.250"), timeout=300)
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


def raw_request(srv, data: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh connection; everything answered until the server closes it."""
    host, port = srv.url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_oversized_input_gets_a_status_and_no_echo(hard):
    long_url = b"GET /run_analysis?instrument=empty&x=" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert raw_request(hard, long_url).startswith(b"HTTP/1.1 414")
    big_header = b"GET /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    answer = raw_request(hard, big_header)
    assert answer.startswith(b"HTTP/1.1 431") and len(answer) < 2000
    r = httpx.post(hard.url + RUN, data={**dummy("2018-05-05"), "p_list": "x" * 3_000_000})
    assert r.status_code == 413 and "p_list" in r.json()["error"] and len(r.content) < 2000
    r = httpx.post(hard.url + RUN, data={**dummy("2018-05-05"), "session_id": "S" * 10_000_000})
    assert r.status_code == 413
    r = httpx.post(hard.url + RUN, data={**dummy("2018-05-05"), "session_id": "S" * 10_000})
    assert r.status_code == 400 and "session_id" in r.json()["error"] and len(r.content) < 2000
    r = httpx.post(hard.url + "/api/v1/jobs", json={"instrument": "empty", "product": "restricted",
                                                     "params": {"string_select_par": "z" * 1_000_000}})
    assert r.status_code == 400 and r.json()["parameter"] == "string_select_par" and len(r.content) < 2000


def test_half_open_connection_is_closed(hard):
    t0 = time.monotonic()
    answer = raw_request(hard, b"GET /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n", timeout=10)
    assert answer == b"" and time.monotonic() - t0 < 6  # idle_timeout=2 s


def token_with(**claims) -> str:
    return jwt.encode({"sub": "u@x", "email": "u@x", "exp": time.time() + 86400, **claims}, SECRET, algorithm="HS256")


DEEP = "[" * 1000 + "]" * 1000
#: (method, path, params / form / json, headers, expected status, parameter named in the answer)
BAD = [
    ("GET", RUN, {"params": dummy("2018-06-01", p_list=DEEP)}, {}, 400, "p_list"),
    ("POST", "/api/v1/jobs", {"content": '{"instrument": ' + DEEP + "}"}, {}, 400, "body"),
    ("GET", RUN, {"params": {**dummy("2018-06-01"), "instrument": '["empty"]'}}, {}, 400, "instrument"),
    ("GET", RUN, {"params": {**dummy("2018-06-01"), "product_type": '["dummy"]'}}, {}, 400, "product_type"),
    ("GET", RUN, {"params": {"instrument": "isgri", "product_type": "isgri_image", "query_status": "new",
                             "T1": "0001-01-01T00:00:00"}}, {}, 400, "T1"),
    ("POST", "/api/v1/jobs", {"json": {"instrument": "isgri", "product": "isgri_image",
                                       "params": {"T2": "0001-01-01T00:00:00"}}}, {}, 400, "T2"),
    ("GET", RUN, {"params": {**dummy("2018-06-01"), "instrument": "empty", "product_type": "numerical",
                             "p": "1" + "0" * 400}}, {}, 400, "'p'"),
    ("POST", "/api/v1/jobs", {"json": {"instrument": "isgri", "product": "isgri_image",
                                       "params": {"scw_list": ["\u0660" * 12 + ".001"]}}}, {}, 400, "scw_list"),
    ("GET", "/api/v1/whoami", {}, {"Authorization": "Bearer " + token_with(roles=5)}, 403, "roles"),
    ("GET", "/api/v1/whoami", {}, {"Authorization": "Bearer " + token_with(groups="admins")}, 403, "groups"),
    ("GET", RUN, {"params": {**dummy("2018-06-01"), "token": token_with(email=["a", "b"])}}, {}, 403, "email"),
    ("GET", "/inspect-state", {"params": {"job_id": "nope", "token": make_token("op@x", roles="job manager")}},
     {}, 404, "nope"),
    ("GET", "/refresh_token", {"params": {"token": make_token(roles="refresh-tokens"), "refresh_interval": "abc"}},
     {}, 400, "refresh_interval"),
    ("GET", "/refresh_token", {"params": {"token": make_token(roles="refresh-tokens"), "refresh_interval": "nan"}},
     {}, 403, "refresh interval"),
    ("GET", "/update_token_email_options", {"params": {"token": make_token(), "intsub": "x"}}, {}, 400, "intsub"),
    ("GET", "/api/v1/whoami", {}, {"Host": "attacker.example"}, 400, "Host"),
]


@pytest.mark.parametrize(("method", "path", "kw", "headers", "status", "named"), BAD,
                         ids=[f"{b[1]}-{b[5]}" for b in BAD])
def test_bad_input_is_a_4xx_naming_the_parameter(hard, method, path, kw, headers, status, named):
    r = httpx.request(method, hard.url + path, headers=headers, **kw)
    assert r.status_code == status, r.text[:300]
    assert named in r.text


def test_405_lists_allowed_methods_and_lesser_defects(hard):
    r = httpx.put(hard.url + RUN)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, POST"
    assert httpx.delete(hard.url + "/api/v1/banner").headers["Allow"] == "GET, POST"
    # a job manager sees the jobs but may not publish banners
    jm = {"Authorization": "Bearer " + make_token("op@x", roles="job manager")}
    assert httpx.post(hard.url + "/api/v1/banner", json={"text": "x"}, headers=jm).status_code == 403
    assert httpx.get(hard.url + "/inspect-state", headers=jm).status_code == 200
    admin = {"Authorization": "Bearer " + make_token("a@x", roles="mmoda-admin")}
    r = httpx.post(hard.url + "/api/v1/banner", json={"text": "x", "expires": False}, headers=admin)
    assert r.status_code == 400 and r.json()["parameter"] == "expires"


def exhaust(srv, addr: str) -> dict[str, str]:
    """Use up an address's anonymous hourly budget, so fuzzed valid requests run nothing (429)."""
    headers = {} if addr == "127.0.0.1" else from_(addr)
    month = 1 + sum(map(ord, addr)) % 12  # requests no other address made (repeats are free)
    for day in range(1, ANON_PER_HOUR + 2):
        httpx.get(srv.url + RUN, params=dummy(f"2011-{month:02d}-{day:02d}"), headers=headers, timeout=120)
    assert httpx.get(srv.url + RUN, params=dummy(f"2011-{month:02d}-20"), headers=headers).status_code == 429
    return headers


def hostile_value(rng: random.Random) -> str:
    """A value a careless user or an attacker might send for any parameter."""
    kind = rng.randrange(6)
    if kind == 0:
        return "".join(rng.choice("aZ09 .,:-_[]{}\"'\\/%\x00é٠\u202e") for _ in range(rng.randrange(40)))
    if kind == 1:
        return str(rng.choice([0, -1, 1, 2**31, -(2**63), 10**400, rng.randrange(-10**6, 10**6)]))
    if kind == 2:
        return repr(rng.choice([0.0, -0.0, 1e-320, 1e308, float("nan"), float("inf"), rng.uniform(-1e3, 1e3)]))
    if kind == 3:
        depth = rng.choice([1, 5, 31, 33, 60, 1000])
        return rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth])
    if kind == 4:
        return rng.choice(["0001-01-01T00:00:00", "9999-99-99", "2016-02-30T25:61:61", "57419", "-1e400",
                           "None", "[]", "{}", "\x00", "066500220010.001", "0665,0010", "0" * 5000,
                           "2016-02-01T00:00:00", "83.633", "Crab", "isgri", '["a", 1, null]'])
    return json.dumps(rng.choice([None, True, [], {}, [1, [2, [3]]], {"x": {"y": []}}, ["066500220010.001"] * 3]))


def test_fuzz_every_dispatcher_parameter_get_and_post(hard):
    """Up to 3000 requests (GET and POST form) with hostile values for every parameter any
    product declares, within FUZZ_SECONDS (env MMODA_FUZZ_SECONDS): no 5xx, no hang, and the
    server healthy afterwards. Valid requests are answered 429 (the address's budget is spent),
    so the fuzzer runs no job."""
    from mmoda_ext.instruments import registry

    headers = exhaust(hard, "198.51.100.200")
    names = sorted({n for inst in registry().values() for p in inst.products
                    for n in inst.param_set(p).names()} | {"T_format", "session_id", "job_id", "token"})
    products = sorted({p for inst in registry().values() for p in inst.products})
    rng = random.Random(8)
    seen: dict[int, int] = {}
    end = time.monotonic() + FUZZ_SECONDS
    with httpx.Client(timeout=30, headers=headers) as http:
        while time.monotonic() < end and sum(seen.values()) < 3000:
            params = {"instrument": rng.choice([*registry(), "nope", '["isgri"]', ""]),
                      "product_type": rng.choice([*products, "", '{"x": 1}']),
                      "query_status": rng.choice(["new", "submitted", "ready", "done", "x"]),
                      "query_type": rng.choice(["Dummy", "Real", "bogus"])}
            params.update({rng.choice(names): hostile_value(rng) for _ in range(rng.randrange(7))})
            if rng.random() < 0.5:
                r = http.post(hard.url + RUN, data=params)
            else:
                r = http.get(hard.url + RUN, params=params)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (params, r.text[:500])
    print(f"dispatcher fuzz: {sum(seen.values())} requests in {FUZZ_SECONDS:g} s, statuses {seen}")
    assert sum(seen.values()) >= 100 and set(seen) - {200, 400, 403, 404, 413, 429} == set(), seen
    assert httpx.get(hard.url + "/api/v1/whoami", timeout=10).status_code == 200  # still healthy


def test_property_based_run_over_the_openapi_document(hard):
    """schemathesis: cases generated from /api/v1/openapi.yaml for every operation; no 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    from mmoda_ext.server.rest import openapi_path

    exhaust(hard, "127.0.0.1")  # anonymous POST /jobs from this test run nothing
    schema = schemathesis.openapi.from_path(str(openapi_path()))
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def one(case):
            r = case.call(base_url=hard.url, timeout=30)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert r.status_code < 500, (case.method, case.formatted_path, r.text[:300])

        one()
    assert sum(statuses.values()) >= 200, statuses
    assert httpx.get(hard.url + "/api/v1/whoami", timeout=10).status_code == 200


def test_no_token_in_any_log_of_the_server(hard):
    """Last in this module: every token sent above (headers, query strings, forms) stayed out of the logs."""
    tok = make_token("logcheck@example.org")
    httpx.get(hard.url + RUN, params=dummy("2018-07-07", token=tok), headers=from_("192.0.2.77"), timeout=60)
    httpx.get(hard.url + "/api/v1/whoami", headers={"Authorization": f"bearer {tok}"})
    httpx.get(hard.url + "/api/v1/nope", params={"token": tok})
    logs = "".join(p.read_text(errors="replace") for p in hard.workdir.glob("serve.*"))
    assert logs and "eyJ" not in logs and tok.split(".")[2] not in logs
