"""The archive service's policy core, without HTTP: who gets what (the hub tests run it for real)."""

from __future__ import annotations

import pytest

from mmoda_ext.access.tiers import TierTable
from mmoda_ext.archive.fitsutil import to_ijd
from mmoda_ext.errors import AccessError, ParameterError, PublicError
from mmoda_ext.services.archive import ArchiveCore

PRIV = {"ra": 83.633, "dec": 22.015, "radius": 15.0,
        "t1": to_ijd("2024-02-27T21:00:00"), "t2": to_ijd("2024-02-28T03:00:00")}
EARLY = {"ra": 83.633, "dec": 22.015, "radius": 15.0,
         "t1": to_ijd("2003-01-01T00:00:00"), "t2": to_ijd("2004-01-01T00:00:00"),
         "max_pointings": 3}


@pytest.fixture(scope="module")
def core(sky_archive):
    table = TierTable.load()
    c = ArchiveCore(sky_archive("archive-core"), table)
    yield c
    c.close()


def _user(core, name, *groups):
    return core.rights_for({"kind": "user", "name": name, "groups": ["mmoda-registered", *groups]})


def test_rights_from_hub_groups_and_services(core):
    assert _user(core, "ann").tier == "registered" and _user(core, "ann").max_scw == 500
    assert _user(core, "pia", "integral-private").private_data
    svc = core.rights_for({"kind": "service", "name": "mmoda"})
    assert svc.user == "service:mmoda" and svc.private_data and svc.max_scw >= 5000
    with pytest.raises(AccessError, match="'elsewhere' may not read"):
        core.rights_for({"kind": "service", "name": "elsewhere"})


def test_selection_limits(core):
    ann = _user(core, "ann")
    with pytest.raises(AccessError, match="private-data right") as err:
        core.select(ann, {**PRIV, "include_private": True})
    assert "integral-private" in err.value.message
    with pytest.raises(AccessError, match="at most 500"):
        core.select(ann, {**PRIV, "max_pointings": 501})
    with pytest.raises(AccessError, match="restricted-OSA"):
        core.select(ann, {**PRIV, "osa_version": "OSA11.2-beta"})
    with pytest.raises(ParameterError, match="OSA11.0"):
        core.select(ann, {**EARLY, "osa_version": "OSA11.0"})
    with pytest.raises(ParameterError, match="osa_version"):
        core.select(ann, {**PRIV, "osa_version": "OSA9"})
    with pytest.raises(ParameterError, match="'ra'"):
        core.select(ann, {**PRIV, "ra": "east"})
    public = core.select(ann, PRIV)["windows"]
    assert public and not any(w["private"] for w in public)
    pia = _user(core, "pia", "integral-private")
    both = core.select(pia, {**PRIV, "include_private": True, "osa_version": "OSA11.2-beta"})
    assert any(w["private"] for w in both["windows"])


def test_rate_limit_counts_new_selections_per_user(core):
    from dataclasses import replace

    bob = replace(_user(core, "bob"), requests_per_hour=2)
    core.select(bob, PRIV)
    core.select(bob, PRIV)  # the same selection again: free
    core.select(bob, {**PRIV, "t2": PRIV["t2"] + 0.5})
    with pytest.raises(PublicError) as err:
        core.select(bob, {**PRIV, "t2": PRIV["t2"] + 1})
    assert err.value.status == 429 and "allows 2 per hour" in err.value.message
    core.select(replace(bob, user="carl"), {**PRIV, "t2": PRIV["t2"] + 1})  # per user


async def test_data_only_for_selected_public_windows(core):
    dan = _user(core, "dan")
    ws = core.select(dan, PRIV)["windows"]
    path = await core.data_path(dan, "isgri", ws[0]["scw_id"])
    assert path.is_file()
    private = core.archive.index.select(PRIV["ra"], PRIV["dec"], PRIV["radius"], PRIV["t1"],
                                        PRIV["t2"], include_private=True)
    priv_id = next(w.scw_id for w in private if w.private)
    core.windows(dan, {"scw_list": [priv_id]})  # the index row is public...
    with pytest.raises(AccessError, match="private"):  # ...the data are not
        await core.data_path(dan, "isgri", priv_id)
    with pytest.raises(AccessError, match="Select it first"):
        await core.data_path(_user(core, "eve"), "isgri", ws[0]["scw_id"])
    with pytest.raises(ParameterError, match="instrument"):
        await core.data_path(dan, "spi", ws[0]["scw_id"])


async def test_grants_survive_a_restart_of_the_service(sky_archive, tmp_path):
    """A window selected before a restart stays downloadable after it (a running job's
    workers fetch it later); expired grants are not kept; the file is refused clearly when bad."""
    import time

    archive = sky_archive("archive-core")
    grants = tmp_path / "state" / "grants.sqlite"
    first = ArchiveCore(archive, TierTable.load(), grants_file=str(grants))
    fay = _user(first, "fay")
    windows = first.select(fay, PRIV)["windows"]
    first.close()  # the service stops (or dies)
    again = ArchiveCore(archive, TierTable.load(), grants_file=str(grants))
    try:
        path = await again.data_path(_user(again, "fay"), "isgri", windows[0]["scw_id"])
        assert path.is_file()
        with pytest.raises(AccessError, match="Select it first"):  # still per user
            await again.data_path(_user(again, "gus"), "isgri", windows[0]["scw_id"])
    finally:
        again.close()
    short = ArchiveCore(archive, TierTable.load(), grants_file=str(grants), grant_seconds=1.0)
    short.select(_user(short, "hal"), PRIV)
    short.close()
    time.sleep(1.1)
    later = ArchiveCore(archive, TierTable.load(), grants_file=str(grants))
    try:
        with pytest.raises(AccessError, match="Select it first"):
            await later.data_path(_user(later, "hal"), "isgri", windows[0]["scw_id"])
    finally:
        later.close()
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    with pytest.raises(RuntimeError, match="bad.sqlite.*cannot be used"):
        ArchiveCore(archive, TierTable.load(), grants_file=str(bad))


def test_hourly_budget_survives_a_restart_of_the_service(sky_archive, tmp_path):
    """The new selections of the last hour are kept with the grants: a restart of the service
    does not give a user a fresh hourly budget (a repeat stays free); older ones are pruned."""
    import sqlite3
    from dataclasses import replace

    archive = sky_archive("archive-core")
    state = str(tmp_path / "grants.sqlite")
    first = ArchiveCore(archive, TierTable.load(), grants_file=state)
    ivy = replace(_user(first, "ivy"), requests_per_hour=2)
    first.select(ivy, PRIV)
    first.select(ivy, {**PRIV, "t2": PRIV["t2"] + 0.5})
    with pytest.raises(PublicError) as before:
        first.select(ivy, {**PRIV, "t2": PRIV["t2"] + 1})
    first.close()  # the service stops (or dies) and the hub starts it again
    again = ArchiveCore(archive, TierTable.load(), grants_file=state)
    try:
        with pytest.raises(PublicError) as after:
            again.select(ivy, {**PRIV, "t2": PRIV["t2"] + 1})
        assert after.value.status == 429 and after.value.message == before.value.message
        assert "made 2 new selections" in after.value.message
        again.select(ivy, PRIV)  # a repeat of a selection made before the restart: still free
        again.select(replace(ivy, user="jon"), {**PRIV, "t2": PRIV["t2"] + 1})  # still per user
    finally:
        again.close()
    with sqlite3.connect(state) as db:  # the hour is over: pruned when the service starts
        db.execute("UPDATE requests SET at = at - 3601 WHERE user = 'ivy'")
    later = ArchiveCore(archive, TierTable.load(), grants_file=state)
    try:
        later.select(ivy, {**PRIV, "t2": PRIV["t2"] + 1})
        with sqlite3.connect(state) as db:
            rows = db.execute("SELECT count(*) FROM requests WHERE user = 'ivy'").fetchone()[0]
        assert rows == 1
    finally:
        later.close()
