"""The tier table's compute limits and the gateway's cluster options, as pure functions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.models import User

from mmoda_ext.access import gateway, tiers
from mmoda_ext.access.gateway import GiB, cluster_options, cluster_overrides, load_table
from mmoda_ext.access.tiers import TierTable

REPO_TABLE = Path(__file__).resolve().parents[2] / "hub_config" / "tiers.yaml"


@pytest.fixture(scope="module")
def table() -> TierTable:
    return TierTable.load(REPO_TABLE)


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(REPO_TABLE.read_text())


def test_compute_limits_come_from_the_table(table, raw):
    reg = table.rights("bob", groups={"mmoda-registered"})
    spec = raw["tiers"]["registered"]
    assert reg.max_workers == spec["max_workers"]
    assert reg.worker_cores == spec["worker_cores"]
    assert reg.worker_memory == int(float(spec["worker_memory"].split()[0]) * GiB)
    hpc = table.rights("ann", groups={"mmoda-registered", "mmoda-hpc"})
    assert hpc.max_workers == raw["tiers"]["hpc"]["max_workers"] > reg.max_workers
    assert hpc.worker_memory > reg.worker_memory
    # a tier without compute limits (private) does not lower those of the others
    priv = table.rights("eve", groups={"mmoda-registered", "integral-private"})
    assert (priv.max_workers, priv.worker_cores) == (reg.max_workers, reg.worker_cores)
    assert priv.private_data


def test_units_are_parsed_and_bad_values_named():
    t = TierTable({"tiers": {"anonymous": {"worker_memory": "512 MiB",
                                           "cluster_idle_timeout": "2 min", "max_workers": 1}}})
    anon = t.anonymous()
    assert (anon.worker_memory, anon.cluster_idle_timeout) == (GiB // 2, 120.0)
    with pytest.raises(ValueError, match=r"worker_memory='lots'.*GiB"):
        TierTable({"tiers": {"anonymous": {"worker_memory": "lots"}}})
    with pytest.raises(ValueError, match=r"cluster_idle_timeout='1 GiB'"):
        TierTable({"tiers": {"anonymous": {"cluster_idle_timeout": "1 GiB"}}})
    with pytest.raises(ValueError, match=r"max_workers=0 must be an integer >= 1"):
        TierTable({"tiers": {"anonymous": {"max_workers": 0}}})


def test_table_loads_without_the_checkout(monkeypatch, tmp_path, raw):
    """An installed wheel has no hub_config/: the packaged copy (package data) is used."""
    monkeypatch.delenv("MMODA_TIERS", raising=False)
    monkeypatch.setattr(tiers, "repo_tiers_path", lambda: tmp_path / "nowhere" / "tiers.yaml")
    path = tiers.default_tiers_path()
    assert path == tiers.packaged_tiers_path()
    assert path.read_text() == REPO_TABLE.read_text()  # one table, not a drifting copy
    assert TierTable().tier("registered").max_workers == raw["tiers"]["registered"]["max_workers"]
    # $MMODA_TIERS wins over both
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"tiers": {"anonymous": {"max_scw": 7}}}))
    monkeypatch.setenv("MMODA_TIERS", str(mine))
    assert TierTable.load().anonymous().max_scw == 7
    monkeypatch.setenv("MMODA_TIERS", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        TierTable.load()


def test_options_bounds_follow_the_tier(table):
    reg = cluster_options(User("bob", groups={"mmoda-registered"}), table)
    hpc = cluster_options(User("ann", groups={"mmoda-registered", "mmoda-hpc"}), table)
    spec = {f["field"]: f["spec"] for f in reg.get_specification()}
    hspec = {f["field"]: f["spec"] for f in hpc.get_specification()}
    rights = table.rights("bob", groups={"mmoda-registered"})
    assert spec["worker_cores"]["max"] == rights.worker_cores
    assert spec["worker_memory"]["max"] == rights.worker_memory / GiB
    assert hspec["worker_cores"]["max"] > spec["worker_cores"]["max"]
    # the gateway validates against these bounds (422 for the client)
    with pytest.raises(ValueError, match="worker_cores must be <= 1"):
        reg.parse_options({"worker_cores": 2})
    with pytest.raises(ValueError):
        reg.parse_options({"max_workers": 50})  # not an option at all


def test_handler_returns_hard_caps(table):
    user = User("bob", groups={"mmoda-registered"})
    rights = table.rights("bob", groups={"mmoda-registered"})
    opts = cluster_options(user, table, environment={"PATH": "/x/bin"})
    config = opts.get_configuration({"worker_memory": 0.5}, user)
    assert config["cluster_max_workers"] == rights.max_workers
    assert config["worker_cores"] == config["worker_threads"] == rights.worker_cores
    assert config["worker_memory"] == GiB // 2
    assert config["idle_timeout"] == rights.cluster_idle_timeout
    assert config["environment"] == {"PATH": "/x/bin", "MMODA_USER": "bob",
                                     "MMODA_TIER": "registered"}
    # whatever reaches the handler, the caps hold
    capped = cluster_overrides({"worker_cores": 64, "worker_memory": 512}, rights, "bob")
    assert capped["worker_cores"] == rights.worker_cores
    assert capped["worker_memory"] == rights.worker_memory


def test_table_without_compute_limits_is_a_public_error():
    bare = TierTable({"tiers": {"anonymous": {"max_scw": 5}}})
    with pytest.raises(PublicException, match="no compute limits"):
        cluster_options(User("bob", groups=set()), bare)


def test_edited_table_is_reread(tmp_path, raw):
    path = tmp_path / "tiers.yaml"
    shutil.copy(REPO_TABLE, path)
    assert load_table(path).tier("registered").max_workers == raw["tiers"]["registered"]["max_workers"]
    edited = dict(raw)
    edited["tiers"] = {**raw["tiers"], "registered": {**raw["tiers"]["registered"], "max_workers": 1}}
    path.write_text(yaml.safe_dump(edited))
    import os

    os.utime(path, ns=(1, 10**18))  # a new mtime even within the clock's resolution
    assert load_table(path).tier("registered").max_workers == 1
    assert gateway._cache  # cached between edits
