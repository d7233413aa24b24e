"""Tokens (MMODA claims, HS256) and the tier table (most generous tier wins)."""

from __future__ import annotations

import jwt
import pytest

from mmoda_ext.access.tiers import TierTable, default_tiers_path
from mmoda_ext.access.tokens import (
    EXPIRED_MESSAGE,
    INVALID_MESSAGE,
    TokenError,
    decode_token,
    issue_token,
    refresh_token,
    roles_of,
    update_email_options,
)
from mmoda_ext.errors import AccessError

SECRET = "secretkey_test"


def test_token_roundtrip_has_mmoda_claims():
    tok = issue_token(SECRET, "mtm@mtmco.net", roles="general,unige-hpc-full", lifetime=60, tem=0)
    claims = decode_token(tok, SECRET)
    assert claims["sub"] == "mtm@mtmco.net" and claims["email"] == "mtm@mtmco.net"
    assert roles_of(claims) == {"general", "unige-hpc-full"}
    assert claims["tem"] == 0 and claims["mssub"] is True and claims["intsub"] == 5
    assert jwt.get_unverified_header(tok)["alg"] == "HS256"


def test_roles_claim_as_list_or_string():
    assert roles_of({"roles": ["a", " b "]}) == {"a", "b"}
    assert roles_of({"roles": "a, b,"}) == {"a", "b"}
    assert roles_of({}) == frozenset()


def test_expired_and_forged_tokens_refused_with_mmoda_sentences():
    expired = issue_token(SECRET, "u@x", lifetime=-10)
    with pytest.raises(TokenError) as exc:
        decode_token(expired, SECRET)
    assert exc.value.message == EXPIRED_MESSAGE and exc.value.status == 403
    forged = issue_token("another-secret", "u@x", lifetime=100)
    with pytest.raises(TokenError) as exc:
        decode_token(forged, SECRET)
    assert exc.value.message == INVALID_MESSAGE
    with pytest.raises(TokenError):
        decode_token("not.a.token", SECRET)


def test_refresh_needs_role_and_extends_expiry():
    plain = decode_token(issue_token(SECRET, "u@x", lifetime=100), SECRET)
    with pytest.raises(AccessError, match="refresh-tokens"):
        refresh_token(plain, SECRET, interval=100)
    claims = decode_token(issue_token(SECRET, "u@x", roles="refresh-tokens", lifetime=100), SECRET)
    new = decode_token(refresh_token(claims, SECRET, interval=1000), SECRET)
    assert new["exp"] == claims["exp"] + 1000
    with pytest.raises(AccessError, match="at most"):
        refresh_token(claims, SECRET, interval=10**7)


def test_email_options_update():
    claims = decode_token(issue_token(SECRET, "u@x", lifetime=100), SECRET)
    new = decode_token(update_email_options(claims, SECRET, msfail="False", mssub="False", msdone="False"), SECRET)
    assert (new["msfail"], new["mssub"], new["msdone"]) == (False, False, False)
    assert new["exp"] == claims["exp"]


@pytest.fixture(scope="module")
def table():
    assert default_tiers_path().exists()
    return TierTable.load()


def test_tier_defaults_follow_design(table):
    anon = table.anonymous()
    assert (anon.tier, anon.max_scw, anon.requests_per_hour) == ("anonymous", 50, 50)
    assert not anon.private_data and not anon.restricted_osa
    reg = table.rights("a@b", roles={"general"})
    assert (reg.tier, reg.max_scw) == ("registered", 500)
    hpc = table.rights("a@b", roles={"unige-hpc-full"})
    assert hpc.max_scw > 500 and hpc.requests_per_hour > 50
    ext = table.rights("a@b", roles={"unige-hpc-full", "unige-hpc-extreme"})
    assert ext.max_scw > hpc.max_scw


def test_most_generous_of_several_tiers(table):
    r = table.rights("a@b", roles={"unige-hpc-full", "integral-private-qla"})
    assert r.max_scw == table.tier("hpc").max_scw
    assert r.private_data and r.restricted_osa
    assert "private" in r.tier and r.tier.startswith("hpc")
    private_only = table.rights("a@b", groups={"integral-private"})
    assert private_only.private_data and private_only.max_scw == 500


def test_refusal_names_ask_limit_and_how_to_get_more(table):
    anon = table.anonymous()
    anon.check_scw_count(50)
    with pytest.raises(AccessError) as exc:
        anon.check_scw_count(51)
    msg = exc.value.message
    assert "51" in msg and "50" in msg and "Log in" in msg


def test_admin_from_group_or_role(table):
    assert table.rights("a@b", groups={"mmoda-admin"}).admin
    assert table.rights("a@b", roles={"mmoda-admin"}).admin
    assert not table.rights("a@b", roles={"general"}).admin


def test_bad_table_rejected():
    with pytest.raises(ValueError, match="unknown keys"):
        TierTable({"tiers": {"anonymous": {"max_scw": 1, "bogus": 2}}})
    with pytest.raises(ValueError, match="anonymous"):
        TierTable({"tiers": {"x": {}}})
