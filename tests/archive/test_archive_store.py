"""Archive: name resolution offline, file layout, shared instances, extra sources."""

from __future__ import annotations

import time

import numpy as np
import pytest
from astropy.table import Table

from mmoda_ext.archive import Archive, default_archive
from mmoda_ext.archive.sky import BUILTIN_SKY
from mmoda_ext.errors import ParameterError


@pytest.fixture
def archive(tmp_path) -> Archive:
    return Archive(root=tmp_path, resolve_online=False)


@pytest.mark.parametrize("name,ra,dec", [
    ("Crab", 83.633, 22.015), ("crab", 83.633, 22.015), ("  CRAB  ", 83.633, 22.015),
    ("Crab Nebula", 83.633, 22.015), ("M1", 83.633, 22.015),
    ("Cyg X-1", 299.590, 35.202), ("cygx1", 299.590, 35.202), ("CYG_X-1", 299.590, 35.202),
    ("Cygnus X-1", 299.590, 35.202), ("V404 Cygni", 306.016, 33.867), ("v404cyg", 306.016, 33.867),
    ("4U 1728-34", 262.989, -33.834), ("1E1740.7-2942", 265.978, -29.745), ("sco x-1", 244.979, -15.640),
])
def test_resolve_name_offline(archive, name, ra, dec):
    c = archive.resolve_name(name)
    assert c.ra.deg == pytest.approx(ra) and c.dec.deg == pytest.approx(dec)


def test_unknown_name_fails_clearly(archive):
    with pytest.raises(ParameterError) as err:
        archive.resolve_name("Not A Source 42")
    assert err.value.parameter == "src_name" and "Not A Source 42" in err.value.message
    assert "Crab" in err.value.message  # says what is allowed
    with pytest.raises(ParameterError):
        archive.resolve_name("   ")


def test_unknown_name_with_online_fallback_does_not_block(tmp_path, monkeypatch):
    monkeypatch.delenv("MMODA_OFFLINE", raising=False)
    a = Archive(root=tmp_path, resolve_timeout=1.0)
    assert a.resolve_online
    t = time.monotonic()
    try:
        c = a.resolve_name("PSR B1509-58")  # only if the network answers
        assert c.dec.deg == pytest.approx(-59.1, abs=0.2)
    except ParameterError as err:
        assert err.parameter == "src_name"
    assert time.monotonic() - t < 5.0


def test_path_for(archive):
    w = archive.index.get("066500220010.001")
    p = archive.path_for("ISGRI", w)
    assert p == archive.root / "isgri" / "0665" / "066500220010.001.fits"
    assert archive.path_for("jemx", "010200230010.001").parts[-3:] == ("jemx", "0102", "010200230010.001.fits")


def test_default_archive_is_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("MMODA_ARCHIVE", str(tmp_path / "env"))
    monkeypatch.delenv("MMODA_SKY_EXTRA", raising=False)
    a = default_archive()
    assert a is default_archive() and a.root == (tmp_path / "env").resolve()
    b = default_archive(tmp_path / "arg")
    assert b is not a and b.root == (tmp_path / "arg").resolve()
    assert b.index is a.index  # one index per seed in memory


def test_index_disk_cache(tmp_path):
    a = Archive(root=tmp_path)
    idx = a.index
    files = list((tmp_path / "index").glob("scw_index-*.npz"))
    assert len(files) == 1 and files[0].stat().st_size > 1e6
    assert a.describe()["pointings"] == idx.n_pointings


def test_extra_sources(tmp_path, monkeypatch):
    builtin = Table.read(BUILTIN_SKY, format="ascii.ecsv")
    extra = builtin[:0].copy()
    row = {c: builtin[0][c] for c in builtin.colnames}
    row.update(id=900, name="My Transient", aliases="MYT-1", ra=120.0, dec=-30.0, mcrab=50.0, K=np.nan,
               variability="")
    extra.add_row(row)
    path = tmp_path / "extra.ecsv"
    extra.write(path, format="ascii.ecsv")
    a = Archive(root=tmp_path, extra_sources=path, resolve_online=False)
    assert a.resolve_name("myt-1").ra.deg == 120.0
    assert a.sky.get("My Transient").mcrab_20_40(6000.0) == pytest.approx(50.0)
    monkeypatch.setenv("MMODA_SKY_EXTRA", str(path))
    b = default_archive(tmp_path / "other")
    assert b.sky.find("my transient") is not None
    monkeypatch.delenv("MMODA_SKY_EXTRA")
    assert default_archive(tmp_path / "other").sky.find("my transient") is None
    with pytest.raises(ParameterError, match="extra_sources"):
        _ = Archive(root=tmp_path, extra_sources=tmp_path / "missing.ecsv").sky


def test_archive_pickles_to_the_shared_instance(tmp_path):
    import pickle

    a = default_archive(tmp_path)
    assert pickle.loads(pickle.dumps(a)) is a
    b = Archive(root=tmp_path, resolve_online=False, index_seed=7)
    c = pickle.loads(pickle.dumps(b))
    assert c.index_seed == 7 and not c.resolve_online and c.root == b.root
    w = a.index.get("066500220010.001")
    assert pickle.loads(pickle.dumps(w)) == w
    crab = a.sky.get("Crab")
    assert pickle.loads(pickle.dumps(crab)).energy_flux(20, 40, 6000.0) == crab.energy_flux(20, 40, 6000.0)
