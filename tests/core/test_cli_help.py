"""Help where people look for it: bare ``mmoda``, ``--help`` and ``-h`` after a product."""

import re

import pytest


def test_bare_mmoda_lists_commands_and_where_to_start(mmoda):
    proc = mmoda()
    assert proc.returncode == 0, proc.stderr
    for command in ("run", "instruments", "archive", "serve", "token"):
        assert re.search(rf"^\s+{command}\s+\S", proc.stdout, re.M), command
    assert "start here" in proc.stdout and "mmoda run isgri image --help" in proc.stdout


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_product_help_lists_parameters_with_units_defaults_bounds_and_example(mmoda, flag):
    proc = mmoda("run", "isgri", "image", flag)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "not allowed" not in out + proc.stderr
    assert "--E1_keV (--E1)" in out
    assert "[keV]. Allowed: a number from 15 to 800 keV. Default: 20.0." in " ".join(out.split())
    assert "--max_pointings" in out and "Default: 50." in out
    example = re.search(r"^example:\n\s+(mmoda run .*)$", out, re.M)
    assert example and "--src-name Crab" in example.group(1)


def test_every_product_example_passes_validation(sky_archive, monkeypatch):
    """Each printed example's flags are parsed and checked as `mmoda run` would, before any work."""
    # science instruments only: tests/server's conftest turns MMODA's debug instruments on
    monkeypatch.delenv("DISPATCHER_DEBUG_MODE", raising=False)
    import shlex
    from types import SimpleNamespace

    from mmoda_ext import engine
    from mmoda_ext.access.rights import Rights
    from mmoda_ext.cli.run import EXAMPLES, _take_run_options, parse_flags
    from mmoda_ext.instruments import registry

    archive = sky_archive("examples")
    products = {(name, p) for name, inst in registry().items() for p in inst.products}
    assert {p for _, p in products} <= set(EXAMPLES)  # every product has an example
    for name, product in sorted(products):
        args = SimpleNamespace(params=shlex.split(EXAMPLES[product]))
        _take_run_options(args)
        inst = registry()[name]
        raw = parse_flags(args.params, inst.param_set(product).names() + ["T_format"])
        engine.prepare(name, product, raw, Rights.local(), archive)


def test_instrument_help_lists_products_and_run_help_lists_instruments(mmoda):
    proc = mmoda("run", "jemx", "--help")
    assert proc.returncode == 0 and "jemx_image" in proc.stdout and "jemx_lc" in proc.stdout
    proc = mmoda("run", "-h")
    assert proc.returncode == 0 and "isgri_image" in proc.stdout and "spi_acs_lc" in proc.stdout
    assert mmoda("run").returncode == 2  # nothing asked: help on stdout, but not a success


def test_archive_help_is_plain_text(mmoda):
    proc = mmoda("archive", "--help")
    assert proc.returncode == 0
    assert "``" not in proc.stdout and "mmoda archive list" in proc.stdout


def test_instruments_lists_science_instruments_unless_asked(mmoda):
    science = mmoda("instruments", env={"DISPATCHER_DEBUG_MODE": ""})
    assert science.returncode == 0
    names = re.findall(r"^(\S+): ", science.stdout, re.M)
    assert names == ["antares", "isgri", "jemx", "polar", "spi_acs"], names
    every = mmoda("instruments", "--all", env={"DISPATCHER_DEBUG_MODE": ""})
    assert every.returncode == 0 and re.search(r"^empty: ", every.stdout, re.M)
    refused = mmoda("instruments", "empty", env={"DISPATCHER_DEBUG_MODE": ""})
    assert refused.returncode == 2 and "--all" in refused.stderr
