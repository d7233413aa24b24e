"""Refusals are built from the tier table: what was asked, this caller's limit, that tier's advice."""

import pytest

from mmoda_ext import engine
from mmoda_ext.access.tiers import TierTable
from mmoda_ext.errors import AccessError

CRAB = {"RA": 83.633, "DEC": 22.015, "T1": "2016-02-01T00:00:00", "T2": "2016-03-01T00:00:00"}


@pytest.fixture(scope="module")
def table():
    return TierTable.load()  # hub_config/tiers.yaml, as the server reads it


def refusal(rights, **params) -> str:
    with pytest.raises(AccessError) as err:
        engine.prepare("isgri", "isgri_image", {**CRAB, **params}, rights, archive=None)
    return err.value.message


@pytest.mark.parametrize("who, asked", [("anonymous", 51), ("registered", 501), ("hpc", 5001)])
def test_too_many_windows_quotes_the_callers_own_tier(table, who, asked):
    rights = {"anonymous": table.anonymous(),
              "registered": table.rights("jane@example.org", roles={"general"}),
              "hpc": table.rights("jane@example.org", roles={"general", "unige-hpc-full"})}[who]
    assert rights.tier == who
    msg = refusal(rights, max_pointings=asked)
    assert f"{asked} science windows (max_pointings)" in msg
    assert f"at most {rights.max_scw}" in msg and f"'{who}'" in msg
    assert " ".join(table.tier(who).how_to_get_more.split()) in " ".join(msg.split())
    if who != "anonymous":
        assert "Log in" not in msg  # never tell a logged-in user to log in
    if who == "registered":
        assert "unige-hpc-extreme" not in msg  # 501 windows need hpc, as the table says


def test_scw_list_count_is_named(table):
    scws = [f"1665{i:04d}0010.001" for i in range(51)]
    msg = refusal(table.anonymous(), scw_list=",".join(scws))
    assert "51 science windows (scw_list)" in msg


def test_rights_refusals_name_the_tier_that_grants_them(table):
    anon = table.anonymous()
    for params, right in (({"osa_version": "OSA11.2-beta"}, "restricted_osa"),
                          ({"integral_data_rights": "all-private"}, "private_data")):
        msg = refusal(anon, **params)
        granting = [t for t in table.tiers if getattr(t, right)]
        assert granting and f"tier '{granting[0].name}'" in msg
        assert any(r in msg for r in granting[0].roles)
        assert "Log in" not in msg  # the anonymous advice is about window counts, not these rights
