"""Job ids: identical request -> same id, any other request or caller -> another id."""

from __future__ import annotations

import random

from mmoda_ext.access.rights import Rights
from mmoda_ext.instruments.base import Instrument, Product, ProductSet
from mmoda_ext.instruments.params import Float
from mmoda_ext.jobs import ids

BASE = {
    "src_name": "1E 1740.7-2942",
    "RA": 265.97845833,
    "DEC": -29.74516667,
    "T_format": "isot",
    "T1": "2017-03-06T13:26:48.000",
    "T2": "2017-03-06T15:32:27.000",
}
EMPTY = {"instrument": "empty", "p_list": []}


def test_anagram_values_give_different_ids():
    """MMODA's hash sorts a value's characters: these two ISGRI images shared one job."""
    a = {"instrument": "isgri", "product_type": "isgri_image", "query_type": "Real",
         "T1": "2016-02-01T00:00:00.000", "RA": 83.633}
    b = {**a, "T1": "2016-01-02T00:00:00.000", "RA": 83.363}
    assert ids.job_id(a) != ids.job_id(b)
    assert ids.job_id(a, "x@y") != ids.job_id(b, "x@y")


def test_no_collision_over_many_generated_requests():
    """Ten thousand distinct requests (anagram pairs, permuted lists, types) -> distinct ids;
    each request hashed twice (keys in another order) -> the same id."""
    rng = random.Random(8)
    seen: dict[str, str] = {}
    requests = []
    for i in range(2500):
        mm, dd = rng.randint(1, 12), rng.randint(1, 28)
        ra = f"{rng.randint(100, 359)}.{rng.randint(100, 999)}"
        scws = [f"{rng.randint(26, 2849):04d}{rng.randint(0, 99):04d}0010.001" for _ in range(3)]
        base = {**BASE, "instrument": "isgri", "product_type": "isgri_image", "query_type": "Real",
                "T1": f"2016-{mm:02d}-{dd:02d}T00:00:00.000", "RA": float(ra), "scw_list": scws,
                "E1_keV": 20.0 + i}
        # an anagram of both values: day and month swapped, RA's digits reversed
        swapped = {**base, "T1": f"2016-{dd:02d}-{mm:02d}T00:00:00.000", "RA": float(ra[::-1])}
        requests += [base, swapped, {**base, "scw_list": scws[::-1]}, {**base, "E1_keV": str(base["E1_keV"])}]
    for req in requests:
        key = ids.canonical_json(ids.hashable_params(req))
        jid = ids.job_id(req)
        assert seen.setdefault(jid, key) == key, f"collision: {key} and {seen[jid]}"
        assert ids.job_id(dict(reversed(list(req.items())))) == jid
        assert len(jid) == ids.ID_LENGTH and int(jid, 16) >= 0
    assert len(seen) == len({ids.canonical_json(ids.hashable_params(r)) for r in requests}) > 9000
    users = {ids.job_id(requests[0], f"user{i}@x") for i in range(1000)}
    assert len(users) == 1000 and ids.job_id(requests[0]) not in users


def test_identical_request_same_id_and_caller_cannot_be_forged_by_a_parameter():
    params = {**BASE, **EMPTY, "product_type": "dummy", "query_type": "Dummy"}
    assert ids.job_id(params) == ids.job_id(dict(params)) == ids.job_id({**params, "p_list": ()})
    assert ids.job_id({**params, "sub": "a@x"}) != ids.job_id(params, "a@x")
    assert ids.job_id(params, "") == ids.job_id(params, None)


def test_volatile_keys_none_values_and_key_order_do_not_matter():
    params = {**BASE, "instrument": "empty-async", "product_type": "dummy", "query_type": "Real"}
    noisy = {
        "session_id": "NTH57M3D3BAVP95A", "job_id": "x", "token": "secret", "dry_run": False,
        "oda_api_version": "1.3.5", "api": "True", "off_line": "False", "query_status": "new",
        "async_dispatcher": False, "scw_list": None, **dict(reversed(list(params.items()))),
    }
    assert ids.job_id(noisy) == ids.job_id(params)
    assert "sub" not in ids.hashable_params(params)


def test_changes_that_matter():
    params = {**BASE, "instrument": "empty-async", "product_type": "dummy", "query_type": "Real"}
    assert ids.job_id({**params, "T2": "2017-03-06T15:32:28.000"}) != ids.job_id(params)
    assert ids.job_id(params, "a@x") != ids.job_id(params, "b@x") != ids.job_id(params)
    assert ids.job_id({**params, "query_type": "Dummy"}) != ids.job_id(params)


class _Dummy(Product):
    name = "dummy"

    def run(self, params, ctx):
        return ProductSet()


class _Numerical(_Dummy):
    name = "numerical"

    def params(self):
        return [Float("p", default=10.0, unit="W")]


class _EmptyLike(Instrument):
    """Same common parameters as MMODA's empty-* instruments (p_list aside)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.products = {"dummy": _Dummy(), "numerical": _Numerical()}


def test_manager_hashes_normalised_parameters_as_mmoda(make_manager):
    """Raw request -> parse -> job id, through the manager: matches the wire job ids."""
    m = make_manager(start=False, instruments={n: _EmptyLike(n) for n in ("empty-async", "empty-semi-async")})
    raw = {"T1": "2017-03-06T13:26:48", "T2": "2017-03-06 15:32:27", "RA": "265.97845833",
           "DEC": "-29.74516667", "src_name": "1E 1740.7-2942", "token": "xyz", "session_id": "S"}
    job = m.submit("empty-async", "dummy", raw, Rights())
    wire = {**BASE, "instrument": "empty-async", "product_type": "dummy", "query_type": "Real"}
    assert job.job_id == ids.job_id(wire)
    mtm = Rights(user="mtm@mtmco.net", tier="registered", email="mtm@mtmco.net")
    job = m.submit("empty-semi-async", "numerical", {**raw, "p": "2"}, mtm)
    assert job.job_id == ids.job_id({**wire, "instrument": "empty-semi-async", "product_type": "numerical",
                                     "p": 2.0}, "mtm@mtmco.net")
    assert job.params["p"] == 2.0 and job.params["query_type"] == "Real"


def test_registered_empty_instrument_gives_the_wire_job_ids(make_manager, monkeypatch):
    """Through the real registry (mmoda_ext/instruments/empty.py) and the manager."""
    monkeypatch.setenv("DISPATCHER_DEBUG_MODE", "yes")
    m = make_manager(start=False, instruments={})
    general = Rights(roles=frozenset({"general"}))
    job = m.submit("empty", "numerical", {"p": "5"}, general, query_type="Dummy")
    assert job.job_id == m.submit("empty", "numerical", {"p": 5.0}, general, query_type="Dummy").job_id
    mtm = Rights(user="mtm@mtmco.net", tier="registered", roles=frozenset({"general"}))
    theirs = m.submit("empty", "numerical", {"p": 5.0}, mtm, query_type="Dummy").job_id
    assert theirs != job.job_id
    assert m.submit("empty", "dummy", {}, Rights(), query_type="Dummy").job_id not in (theirs, job.job_id)
