"""The ``mmoda`` command: flag parsing and clear errors (exit code 2, message on stderr)."""

import pytest

from mmoda_ext.cli import main
from mmoda_ext.cli.run import parse_flags
from mmoda_ext.errors import ParameterError

NAMES = ["src_name", "RA", "DEC", "T1", "T2", "E1_keV", "E2_keV", "max_pointings", "scw_list", "T_format"]


def test_flags_accept_dashes_aliases_and_equals():
    out = parse_flags(
        ["--src-name", "Crab", "--E1", "20", "--E2=40", "--max-pointings", "50", "--ra", "83.6"], NAMES
    )
    assert out == {"src_name": "Crab", "E1_keV": "20", "E2_keV": "40", "max_pointings": "50", "RA": "83.6"}


def test_unknown_flag_is_named():
    with pytest.raises(ParameterError) as err:
        parse_flags(["--colour", "red"], NAMES)
    assert "colour" in err.value.message and "max_pointings" in err.value.message


def test_unknown_instrument_exits_2_with_message(capsys):
    assert main(["run", "hubble", "image"]) == 2
    err = capsys.readouterr().err
    assert "instrument" in err and "hubble" in err


def test_instruments_lists_every_registered_instrument(capsys):
    from mmoda_ext.instruments import registry

    assert main(["instruments"]) == 0
    out = capsys.readouterr().out
    for name in registry():
        assert f"{name}:" in out
