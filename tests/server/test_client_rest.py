"""mmoda_ext.client.Client (sync and async) and the REST API against a real `mmoda serve`."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from astropy.io import fits
from serve_helpers import ServeProcess, make_token

from mmoda_ext.client import Client, ClientError


def test_submit_wait_products_as_astropy(server):
    c = Client(server.url, token=make_token())
    try:
        assert "empty" in [i["name"] for i in c.instruments()]
        spec = c.instrument("empty")["products"]["numerical"]["parameters"]
        assert {"name": "p", "unit": "W", "default": 10.0} .items() <= {
            k: v for p in spec if p["name"] == "p" for k, v in p.items()}.items()
        job = c.submit("empty", "numerical", query_type="Dummy", p=7)
        job = c.wait(job["job_id"], timeout=30, progress=False)
        assert job["status"] == "done" and job["params"]["p"] == 7.0
        prods = c.products(job["job_id"])
        assert isinstance(prods[0].hdul, fits.HDUList)
        assert prods[0].hdul[0].data.shape == (100, 100) and not np.any(prods[0].hdul[0].data)
        assert job["job_id"] in [j["job_id"] for j in c.jobs()]
        me = c.whoami()
        assert me["tier"] == "registered" and me["max_scw"] == 500
    finally:
        c.close()


async def test_async_client(server):
    c = Client(server.url, token=make_token(), asynchronous=True)
    job = await c.submit("empty", "numerical", query_type="Dummy", p=8)
    job = await c.wait(job["job_id"], timeout=30, progress=False)
    prods = await c.products(job["job_id"])
    data = prods[0].hdul[0].data
    assert data.dtype.kind == "f" and data.dtype.itemsize == 8 and data.shape == (100, 100)


def test_errors_name_parameter_and_limit(server):
    c = Client(server.url)
    with pytest.raises(ClientError) as exc:
        c.submit("empty", "restricted", bounded_int_par=40)
    assert exc.value.status == 400 and exc.value.parameter == "bounded_int_par"
    with pytest.raises(ClientError) as exc:
        c.submit("isgri", "isgri_image", max_pointings=51)
    assert exc.value.status == 403 and "51" in exc.value.message and "50" in exc.value.message
    with pytest.raises(ClientError) as exc:
        Client(server.url, token=make_token(lifetime=-5)).jobs()
    assert exc.value.status == 403 and "expired" in exc.value.message
    c.close()


def test_users_never_see_each_others_jobs(server):
    alice = Client(server.url, token=make_token("alice@example.org"))
    bob = Client(server.url, token=make_token("bob@example.org"))
    job = alice.submit("empty", "numerical", query_type="Dummy", p=3)
    with pytest.raises(ClientError) as exc:
        bob.status(job["job_id"])
    assert exc.value.status == 404
    assert job["job_id"] not in [j["job_id"] for j in bob.jobs()]
    same = bob.submit("empty", "numerical", query_type="Dummy", p=3)
    assert same["job_id"] != job["job_id"]  # the user is part of the job id
    alice.close(), bob.close()


def test_cancel_a_waiting_job(server):
    server.set_state(None)
    c = Client(server.url)
    try:
        job = c.submit("empty-async", "dummy", T1="2019-05-05T00:00:00")
        assert job["status"] == "submitted"
        job = c.cancel(job["job_id"])
        assert job["status"] == "cancelled" and job["finished"]
        with pytest.raises(ClientError) as exc:
            c.products(job["job_id"])
        assert exc.value.status == 409
    finally:
        server.set_state("done")
        c.close()


def test_feedback_admin_only_and_visible_to_the_user(server):
    user = Client(server.url, token=make_token("carol@example.org"))
    job = user.submit("empty", "numerical", query_type="Dummy", p=4)
    url = f"{server.url}/api/v1/jobs/{job['job_id']}/feedback"
    r = httpx.post(url, json={"message": "nice"}, headers={"Authorization": f"Bearer {user.token}"})
    assert r.status_code == 403 and "administrators" in r.json()["error"]
    admin = make_token("team@odahub.io", roles="mmoda-admin")
    r = httpx.post(url, json={"message": "Your source is outside the field of view."},
                   headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 201
    assert user.status(job["job_id"])["feedback"][0]["message"] == "Your source is outside the field of view."
    assert user.feedback(job["job_id"])[0]["author"] == "team@odahub.io"
    user.close()


def test_banner_get_and_admin_post(server):
    anon = httpx.post(f"{server.url}/api/v1/banner", json={"text": "hello"})
    assert anon.status_code == 403
    admin = make_token("team@odahub.io", roles="mmoda-admin")
    r = httpx.post(f"{server.url}/api/v1/banner", json={"text": "OSA11.2 is out", "kind": "news"},
                   headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 201
    assert "OSA11.2 is out" in [b["text"] for b in Client(server.url).banners()]


def test_openapi_document_served_and_valid(server):
    from openapi_spec_validator import validate

    text = httpx.get(f"{server.url}/api/v1/openapi.yaml").text
    import yaml

    validate(yaml.safe_load(text))
    as_json = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    assert as_json["openapi"].startswith("3.")


def test_rate_limit_per_hour_from_the_tier_table(tmp_path, archive_dir):
    tiers = tmp_path / "tiers.json"
    tiers.write_text(json.dumps({"tiers": {
        "anonymous": {"max_scw": 50, "requests_per_hour": 3, "how_to_get_more": "Log in to get 50 per hour."},
        "registered": {"authenticated": True, "max_scw": 500, "requests_per_hour": 50}}}))
    srv = ServeProcess(tmp_path / "srv", archive_dir, "--MMODAServe.tiers_file=" + str(tiers)).start()
    try:
        body = {"instrument": "empty", "product": "dummy", "query_type": "Dummy", "session_id": "S1"}
        for day in range(1, 4):
            r = httpx.post(f"{srv.url}/api/v1/jobs", json={**body, "params": {"T1": f"2018-01-0{day}"}},
                           timeout=120)  # the first request loads the archive
            assert r.status_code == 201
        again = httpx.post(f"{srv.url}/api/v1/jobs", json={**body, "params": {"T1": "2018-01-01"}},
                           timeout=60)
        assert again.status_code == 201  # repeating an earlier request is free
        r = httpx.post(f"{srv.url}/api/v1/jobs", json={**body, "params": {"T1": "2018-01-05"}}, timeout=60)
        assert r.status_code == 429
        assert "allows 3 per hour" in r.json()["error"] and "Log in" in r.json()["error"]
    finally:
        srv.stop()
