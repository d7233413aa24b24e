"""The MMODA job id reproduces every test vector of dispatcher-protocol.md §7."""

from __future__ import annotations

import pytest

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
VECTORS = [
    ({**EMPTY, "product_type": "dummy", "query_type": "Dummy"}, None, "9424935f19fa0808"),
    ({**EMPTY, "product_type": "failing", "query_type": "Dummy"}, None, "257eac7d0b88f0fa"),
    ({**EMPTY, "product_type": "numerical", "query_type": "Dummy", "p": 5.0}, None, "6f3b101fe3cedcd4"),
    ({**EMPTY, "product_type": "numerical", "query_type": "Dummy", "p": 5.0}, "mtm@mtmco.net", "a8396329c064baa4"),
    ({"instrument": "empty-semi-async", "product_type": "numerical", "query_type": "Real", "p": 2.0},
     "mtm@mtmco.net", "6f841666da3b577f"),
    ({"instrument": "empty-async", "product_type": "dummy", "query_type": "Real"}, None, "c675ecfddcceecb7"),
    ({"instrument": "empty-async", "product_type": "dummy", "query_type": "Real", "T1": "2020-01-03T00:00:00.000"},
     None, "45036a7be370ba06"),
    ({**EMPTY, "product_type": "structured", "query_type": "Real", "struct": '{"b": [3, 4]}'}, None,
     "086e9dd1ab918957"),
]


@pytest.mark.parametrize(("extra", "sub", "expected"), VECTORS)
def test_protocol_vectors(extra, sub, expected):
    assert ids.job_id({**BASE, **extra}, sub) == expected


def test_volatile_keys_none_values_and_key_order_do_not_matter():
    params = {**BASE, "instrument": "empty-async", "product_type": "dummy", "query_type": "Real"}
    noisy = {
        "session_id": "NTH57M3D3BAVP95A", "job_id": "x", "token": "secret", "dry_run": False,
        "oda_api_version": "1.3.5", "api": "True", "off_line": "False", "query_status": "new",
        "async_dispatcher": False, "scw_list": None, **dict(reversed(list(params.items()))),
    }
    assert ids.job_id(noisy) == ids.job_id(params) == "c675ecfddcceecb7"
    assert "sub" not in ids.hashable_params(params)


def test_changes_that_matter():
    params = {**BASE, "instrument": "empty-async", "product_type": "dummy", "query_type": "Real"}
    assert ids.job_id({**params, "T2": "2017-03-06T15:32:28.000"}) != ids.job_id(params)
    assert ids.job_id(params, "a@x") != ids.job_id(params, "b@x") != ids.job_id(params)


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
    assert job.job_id == "c675ecfddcceecb7"
    mtm = Rights(user="mtm@mtmco.net", tier="registered", email="mtm@mtmco.net")
    job = m.submit("empty-semi-async", "numerical", {**raw, "p": "2"}, mtm)
    assert job.job_id == "6f841666da3b577f"
    assert job.params["p"] == 2.0 and job.params["query_type"] == "Real"


def test_registered_empty_instrument_gives_the_wire_job_ids(make_manager):
    """Through the real registry (mmoda_ext/instruments/empty.py) and the manager."""
    m = make_manager(start=False, instruments={})
    general = Rights(roles=frozenset({"general"}))
    job = m.submit("empty", "numerical", {"p": "5"}, general, query_type="Dummy")
    assert job.job_id == "6f3b101fe3cedcd4"
    mtm = Rights(user="mtm@mtmco.net", tier="registered", roles=frozenset({"general"}))
    assert m.submit("empty", "numerical", {"p": 5.0}, mtm, query_type="Dummy").job_id == "a8396329c064baa4"
    assert m.submit("empty", "dummy", {}, Rights(), query_type="Dummy").job_id == "9424935f19fa0808"
