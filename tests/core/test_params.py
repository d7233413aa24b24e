"""Parameter declarations: defaults, conversions, and errors that name parameter, value, allowed."""

import pytest

from mmoda_ext.errors import ParameterError
from mmoda_ext.instruments.params import Float, Integer, Json, ParamSet, ScwList, Select, TimeParam


def make_set() -> ParamSet:
    return ParamSet(
        [
            Float("E1_keV", default=20.0, unit="keV", min=15, max=800),
            Integer("max_pointings", default=50, min=1),
            Select("osa_version", default="OSA11.2", choices=["OSA10.2", "OSA11.2"]),
            TimeParam("T1", default="2017-03-06T13:26:48.000"),
            ScwList("scw_list"),
            Json("struct", default={"a": [1, 2]}),
        ]
    )


def test_defaults_are_filled_and_json_friendly():
    out = make_set().parse({})
    assert out == {
        "E1_keV": 20.0,
        "max_pointings": 50,
        "osa_version": "OSA11.2",
        "T1": "2017-03-06T13:26:48.000",
        "scw_list": None,
        "struct": {"a": [1, 2]},
        "T_format": "isot",
    }


def test_strings_from_forms_are_converted():
    out = make_set().parse(
        {"E1_keV": "28", "max_pointings": "10", "scw_list": "066500220010.001, 066500230010.001",
         "struct": '{"b": [3, 4]}'}
    )
    assert out["E1_keV"] == 28.0 and out["max_pointings"] == 10
    assert out["scw_list"] == ["066500220010.001", "066500230010.001"]
    assert out["struct"] == {"b": [3, 4]}


def test_mjd_time_format_normalises_to_isot():
    out = make_set().parse({"T1": "57419.0", "T_format": "mjd"})
    assert out["T1"] == "2016-02-01T00:00:00.000"


@pytest.mark.parametrize(
    "raw, name, fragment",
    [
        ({"E1_keV": 900}, "E1_keV", "from 15 to 800 keV"),
        ({"E1_keV": "abc"}, "E1_keV", "not a number"),
        ({"E1_keV": "nan"}, "E1_keV", "finite"),
        ({"max_pointings": 2.5}, "max_pointings", "integer"),
        ({"osa_version": "OSA9"}, "osa_version", "'OSA10.2', 'OSA11.2'"),
        ({"T1": "yesterday"}, "T1", "T_format"),
        ({"scw_list": "0665002200.001"}, "scw_list", "RRRRPPPPSSSF"),
        ({"struct": "{"}, "struct", "JSON"),
        ({"bogus": 1}, "bogus", "not known"),
    ],
)
def test_errors_name_parameter_value_and_allowed(raw, name, fragment):
    with pytest.raises(ParameterError) as err:
        make_set().parse(raw)
    assert err.value.parameter == name
    assert name in err.value.message and fragment in err.value.message
    assert "Allowed:" in err.value.message


def test_unknown_keys_pass_when_allowed():
    assert "bogus" not in make_set().parse({"bogus": 1}, allow_unknown=True)
