"""The real oda_api 1.3.5 client against a real `mmoda serve` subprocess (dispatcher protocol)."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from oda_api.api import DispatcherAPI, RemoteException, RequestNotUnderstood, Unauthorized
from serve_helpers import make_token

from mmoda_ext.access.tokens import EXPIRED_MESSAGE, INVALID_MESSAGE, issue_token

SCWS = ["066500220010.001", "066500230010.001"]


def client(server, **kw) -> DispatcherAPI:
    disp = DispatcherAPI(url=server.url, **kw)
    disp.n_max_tries = 3
    disp.retry_sleep_s = 0.2
    return disp


def poll_until(disp, predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = disp.poll()
        if predicate(disp):
            return result
        time.sleep(0.2)
    raise AssertionError(f"still {disp.query_status} after {timeout} s")


def test_metadata_endpoints(server):
    disp = client(server)
    assert {"empty", "empty-async", "empty-semi-async"} <= set(disp.get_instruments_list())
    desc = disp.get_instrument_description("empty")
    assert desc[0][0] == {"instrumet": "empty"} and "numerical" in desc[0][1]["prod_dict"]
    names = httpx.get(server.url + "/api/par-names", params={"instrument": "empty-semi-async",
                                                             "product_type": "numerical"}).json()
    assert names == ["src_name", "RA", "DEC", "T1", "T_format", "T2", "token", None, "selected_catalog", "p"]
    bad = httpx.get(server.url + "/api/par-names", params={"instrument": "nonexistent"})
    assert bad.status_code == 400 and "known" in bad.json()["error_message"]


def test_dummy_answers_done_with_mmoda_job_id_by_get_and_post(server):
    disp = client(server)
    data = disp.get_product(instrument="empty", product="dummy", product_type="Dummy")
    assert data is not None and data._p_list == []
    assert disp.query_status == "done" and len(disp.job_id) == 32
    post = client(server)
    post.preferred_request_method = "POST"
    post.get_product(instrument="empty", product="dummy", product_type="Dummy")
    assert post.job_id == disp.job_id  # identical request, same job, whatever the method
    assert post.response_json["exit_status"]["comment"] == ""


def test_numerical_product_decodes_with_shape(server):
    disp = client(server)
    data = disp.get_product(instrument="empty", product="numerical", product_type="Dummy", p=5,
                            token=make_token())
    anonymous_dummy = client(server)
    anonymous_dummy.get_product(instrument="empty", product="dummy", product_type="Dummy")
    assert disp.job_id != anonymous_dummy.job_id  # p=5.0 and sub mtm@mtmco.net are hashed in
    arr = data.numerical_0.data_unit[0].data
    assert arr.shape == (100, 100) and arr.dtype == np.float64 and not arr.any()


def test_roles_refused_with_mmoda_message(server):
    with pytest.raises(Unauthorized) as exc:
        client(server).get_product(instrument="empty", product="numerical", product_type="Dummy", p=5)
    assert "Your priviledge roles include []" in exc.value.message
    assert " - general: please refer to support for details" in exc.value.message
    with pytest.raises(Unauthorized) as exc:
        client(server).get_product(instrument="empty", product="numerical", product_type="Dummy", p=55,
                                   token=make_token())
    assert " - unige-hpc-full: unige-hpc-full role is needed for p>50 as well" in exc.value.message
    ok = client(server)
    ok.get_product(instrument="empty", product="numerical", product_type="Dummy", p=55,
                   token=make_token(roles="general,unige-hpc-full"))
    assert ok.query_status == "done"


def test_expired_and_forged_tokens_raise_the_clients_exceptions(server):
    with pytest.raises(Unauthorized) as exc:
        client(server).get_product(instrument="empty", product="dummy", product_type="Dummy",
                                   token=make_token(lifetime=-60))
    assert exc.value.message == "RequestNotAuthorized():" + EXPIRED_MESSAGE
    forged = issue_token("not-the-server-secret", "mtm@mtmco.net", roles="general", lifetime=600)
    with pytest.raises(Unauthorized) as exc:
        client(server).get_product(instrument="empty", product="dummy", product_type="Dummy", token=forged)
    assert exc.value.message == "RequestNotAuthorized():" + INVALID_MESSAGE


def test_bad_parameters_name_the_parameter(server):
    with pytest.raises(RequestNotUnderstood) as exc:
        client(server).get_product(instrument="empty", product="restricted", bounded_int_par=40)
    assert "bounded_int_par" in str(exc.value) and "8" in str(exc.value)
    with pytest.raises(RequestNotUnderstood) as exc:
        client(server).get_product(instrument="empty", product="numerical", product_type="Dummy", p=900,
                                   token=make_token())
    assert "'p'" in str(exc.value) and "800" in str(exc.value)
    with pytest.raises(RequestNotUnderstood) as exc:
        client(server).get_product(instrument="nonexistent", product="dummy")
    assert "known" in str(exc.value)


def test_unknown_argument_is_reported_in_the_comment(server):
    disp = client(server)
    disp.get_product(instrument="empty", product="dummy", product_type="Dummy", unkpar="foo")
    assert disp.response_json["exit_status"]["comment"] == "Please note that argument unkpar is not used"
    plain = client(server)
    plain.get_product(instrument="empty", product="dummy", product_type="Dummy")
    assert disp.job_id == plain.job_id  # an unused argument is not part of the job


def test_structured_parameter_and_echo(server):
    disp = client(server)
    disp.get_product(instrument="empty", product="structured", struct={"b": [3, 4]})
    again = client(server)
    again.get_product(instrument="empty", product="structured", struct='{"b": [3, 4]}')
    assert disp.job_id == again.job_id
    assert disp.response_json["products"]["echo"]["struct"] == '{"b": [3, 4]}'


def test_async_not_waiting_then_poll(server):
    server.set_state(None)  # the mock data server has not answered yet
    disp = client(server, wait=False)
    kw = dict(instrument="empty-async", product="dummy", T1="2020-01-03T00:00:00", scw_list=SCWS)
    assert disp.get_product(**kw) is None
    assert disp.query_status == "submitted"
    job_id = disp.job_id
    disp.poll()
    assert disp.query_status == "submitted" and disp.job_id == job_id
    server.set_state("progress")
    poll_until(disp, lambda d: d.query_status == "progress")
    server.set_state("done")
    data = poll_until(disp, lambda d: d.is_complete)
    assert disp.query_status == "done" and data is not None
    du = disp.response_json["products"]["input_param_scw_list"]["data_unit_list"][0]
    assert du["meta_data"] == {"scw_list": SCWS}
    # the documented asynchronous usage: the same request again answers done on its first poll
    again = client(server, wait=False)
    assert again.get_product(**kw) is not None
    assert again.query_status == "done" and again.job_id == job_id


def test_semi_async_status_follows_p(server, token):
    tok = token()
    server.set_state(None)
    waiting = client(server, wait=False)
    assert waiting.get_product(instrument="empty-semi-async", product="numerical", p=2, token=tok) is None
    assert waiting.query_status == "submitted"
    done = client(server)
    data = done.get_product(instrument="empty-semi-async", product="numerical", p=5, token=tok)
    assert done.query_status == "done" and data.numerical_0.data_unit[0].data.shape == (100, 100)
    with pytest.raises(RemoteException):
        client(server).get_product(instrument="empty-semi-async", product="numerical", p=-1, token=tok)
    server.set_state("done")
    poll_until(waiting, lambda d: d.is_complete)
    assert waiting.query_status == "done"


def test_large_request_switches_to_post(server):
    scws = [f"0665{i:04d}0010.001" for i in range(80)]
    disp = client(server)
    disp.get_product(instrument="empty-async", product="dummy", product_type="Dummy", scw_list=scws)
    assert disp.selected_request_method == "POST"
    du = disp.response_json["products"]["input_param_scw_list"]["data_unit_list"][0]
    assert du["meta_data"]["scw_list"] == scws


def test_backend_failure_raises_remote_exception(server):
    with pytest.raises(RemoteException) as exc:
        client(server).get_product(instrument="empty", product="failing", product_type="Dummy")
    assert "Error when getting query products" in exc.value.message


def test_science_window_limit_of_the_tier(server):
    scws = [f"0665{i:04d}0010.001" for i in range(51)]
    with pytest.raises(Unauthorized) as exc:
        client(server).get_product(instrument="isgri", product="isgri_image", scw_list=scws)
    assert "51" in exc.value.message and "at most 50" in exc.value.message
    with pytest.raises(Unauthorized) as exc:
        client(server).get_product(instrument="isgri", product="isgri_image", max_pointings=600,
                                   token=make_token())
    assert "600" in exc.value.message and "at most 500" in exc.value.message


def test_job_id_mismatch_is_refused(server):
    base = dict(instrument="empty", product_type="dummy", query_type="Dummy", session_id="S" * 16)
    r = httpx.get(server.url + "/run_analysis", params={**base, "query_status": "new", "job_id": "0" * 16})
    assert r.status_code == 400 and "does not match" in r.json()["error"]
    r = httpx.get(server.url + "/run_analysis", params={**base, "query_status": "submitted", "job_id": "0" * 16})
    assert r.status_code == 403 and "does not match" in r.json()["debug_message"]


def test_no_nan_and_required_fields_on_every_answer(server):
    r = httpx.get(server.url + "/run_analysis", params=dict(
        instrument="empty", product_type="echo", query_type="Dummy", query_status="new", ang="1e400"))
    assert r.status_code == 400  # an infinite value is refused, never echoed as Infinity
    r = httpx.post(server.url + "/run_analysis", data=dict(
        instrument="empty", product_type="echo", query_type="Dummy", query_status="new", ang="2.5"))
    body = r.json()
    assert "NaN" not in r.text and "Infinity" not in r.text
    assert body["products"]["echo"]["ang"] == 2.5
    for key in ("status", "message", "error_message", "debug_message", "comment", "warning"):
        assert key in body["exit_status"]
    assert httpx.get(server.url + "/run_analysis").status_code == 400
    assert httpx.get(server.url + "/run_analysis", params={"instrument": "empty"}).status_code == 400


def test_token_endpoints_the_client_offers(server):
    import jwt

    disp = client(server)
    with pytest.raises(RuntimeError, match="refresh-tokens"):
        disp.refresh_token(make_token())
    tok = make_token(roles="general,refresh-tokens", lifetime=600)
    new = disp.refresh_token(tok)
    old_claims = jwt.decode(tok, options={"verify_signature": False})
    new_claims = jwt.decode(new, "secretkey_test", algorithms=["HS256"])
    assert new_claims["exp"] == old_claims["exp"] + 604800 and new_claims["sub"] == old_claims["sub"]
    quiet = jwt.decode(disp.disable_email_token(tok), "secretkey_test", algorithms=["HS256"])
    assert (quiet["msfail"], quiet["mssub"], quiet["msdone"]) == (False, False, False)


def test_tokens_never_reach_the_server_logs(server):
    tok = make_token(sub="logcheck@example.org")
    client(server).get_product(instrument="empty", product="dummy", product_type="Dummy", token=tok)
    with pytest.raises(Unauthorized):
        client(server).get_product(instrument="empty", product="dummy", product_type="Dummy",
                                   token=make_token(lifetime=-1))
    logs = "".join((server.workdir / name).read_text() for name in ("serve.out", "serve.err"))
    assert tok not in logs and "eyJ" not in logs
