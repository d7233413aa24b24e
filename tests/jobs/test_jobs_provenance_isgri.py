"""Provenance cache of ISGRI per-window decoded+cleaned images, shared by overlapping requests.

Two ``isgri_image`` requests share two of their four science windows: the second decodes only
the two the first did not (counted by the product's cache statistics and by instrumenting the
decoder), and its mosaic equals the one computed without any cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from mmoda_ext import engine
from mmoda_ext.archive import default_archive
from mmoda_ext.instruments import _isgri_window
from mmoda_ext.instruments._isgri_window import decoded_key
from mmoda_ext.jobs.cache import ProvenanceCache
from mmoda_ext.jobs.compute import SerialContext

#: a source unknown to the built-in sky model, in an extra sky-model file
EXTRA = {"id": 90002, "name": "Injected J0535+2600", "ra": 84.0, "dec": 26.0,
         "kind": "uncatalogued", "mcrab": 40.0, "spectrum": "pl", "gamma1": 2.0}


@pytest.fixture(scope="module")
def archive(sky_archive):
    return sky_archive("prov-archive", EXTRA)


@pytest.fixture(scope="module")
def windows(archive):
    return archive.index.select(83.633, 22.015, 10.0, Time("2016-02-01"), Time("2016-03-01"), 6)


@pytest.fixture
def decodes(monkeypatch):
    """Science windows actually decoded (window_image calls), in order."""
    seen: list[str] = []
    real = _isgri_window.window_image

    def counting(archive, scw, *a, **kw):
        seen.append(scw.scw_id)
        return real(archive, scw, *a, **kw)

    monkeypatch.setattr(_isgri_window, "window_image", counting)
    return seen


def _image(archive, outdir, scws, cache=None, **extra):
    raw = {"RA": 83.633, "DEC": 22.015, "T1": "2016-02-01", "T2": "2016-03-01",
           "scw_list": ",".join(w.scw_id for w in scws), **extra}
    return engine.execute("isgri", "isgri_image", raw, SerialContext(archive, outdir, cache=cache))


def _mosaic(result) -> dict[str, np.ndarray]:
    path = next(p.fits for p in result.products if p.name == "mosaic")
    with fits.open(path) as hdul:
        return {str(h.header.get("IMATYPE", i)): np.asarray(h.data, float)
                for i, h in enumerate(hdul) if h.is_image and h.data is not None}


def test_overlapping_requests_share_windows(archive, windows, decodes, tmp_path):
    assert len(windows) == 6
    first, second = windows[:4], windows[2:]
    cache = ProvenanceCache(tmp_path / "cache")

    r1 = _image(archive, tmp_path / "a", first, cache)
    assert r1.meta["cache"] == {"hits": 0, "misses": 4}
    assert sorted(decodes) == sorted(w.scw_id for w in first)
    assert cache.size() == 4

    decodes.clear()
    r2 = _image(archive, tmp_path / "b", second, cache)
    assert r2.meta["cache"] == {"hits": 2, "misses": 2}
    # only the windows the first request did not have were decoded
    assert sorted(decodes) == sorted(w.scw_id for w in windows[4:])
    assert cache.size() == 6

    decodes.clear()
    plain = _image(archive, tmp_path / "c", second)  # no cache: everything decoded, nothing stored
    assert "cache" not in plain.meta
    assert sorted(decodes) == sorted(w.scw_id for w in second)
    assert cache.size() == 6

    cached_mos, plain_mos = _mosaic(r2), _mosaic(plain)
    assert set(cached_mos) == set(plain_mos) and "INTENSITY" in cached_mos
    for name, img in plain_mos.items():
        ok = np.isfinite(img)
        assert np.array_equal(ok, np.isfinite(cached_mos[name])), name
        scale = np.abs(img[ok]).max()
        np.testing.assert_allclose(cached_mos[name][ok], img[ok], rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=name)
    names = [d["name"] for d in plain.meta["catalog"]]
    assert "Crab" in names
    assert [d["name"] for d in r2.meta["catalog"]] == names
    for a, b in zip(r2.meta["catalog"], plain.meta["catalog"], strict=True):
        assert a["ra"] == pytest.approx(b["ra"], abs=1e-3)
        assert a["flux"] == pytest.approx(b["flux"], rel=1e-6)  # PIF fits never use the cache

    # an OSA version only rescales the mosaic: the same entries serve it
    decodes.clear()
    r3 = _image(archive, tmp_path / "d", second, cache, osa_version="OSA10.2")
    assert r3.meta["cache"] == {"hits": 4, "misses": 0} and decodes == []


def test_key_follows_band_sky_and_cleaning(archive, windows, tmp_path):
    scw = windows[0]
    base = decoded_key("isgri", scw, 20.0, 40.0, archive)
    assert base == decoded_key("isgri", scw, 20, 40, archive)  # same inputs, same key
    assert base != decoded_key("isgri", scw, 20.0, 60.0, archive)
    assert base != decoded_key("isgri", windows[1], 20.0, 40.0, archive)
    assert base != decoded_key("isgri", scw, 20.0, 40.0, archive, clean_threshold=4.0)
    assert base != decoded_key("isgri", scw, 20.0, 40.0, archive, clean=False)
    # the same archive root without the extra sky file, and with a second one
    bare = default_archive(archive.root)
    assert bare.sky.digest != archive.sky.digest
    assert base != decoded_key("isgri", scw, 20.0, 40.0, bare)
    other = tmp_path / "other_sky.ecsv"  # an extra file holding one more source
    Table(rows=[EXTRA, {**EXTRA, "id": 90003, "name": "Injected 2", "ra": 80.0}]).write(
        other, format="ascii.ecsv")
    two = default_archive(archive.root, extra_sources=other)
    assert base != decoded_key("isgri", scw, 20.0, 40.0, two)


def test_unwritable_cache_does_not_fail(archive, windows, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    got, hit = ProvenanceCache(blocker / "cache").fetch("ab" * 32, lambda: {"x": np.arange(3)})
    assert hit is False and got["x"].tolist() == [0, 1, 2]


def test_mmoda_run_cache_option(archive):
    from argparse import Namespace

    from mmoda_ext.cli.run import _take_run_options, provenance_cache

    args = Namespace(params=["--E1", "20", "--cache", "/some/where", "--T1", "2016-02-01"], cache=None,
                     no_cache=False, no_progress=False, out="p", archive=None, workers=None, scheduler=None)
    _take_run_options(args)
    assert args.params == ["--E1", "20", "--T1", "2016-02-01"]
    assert provenance_cache(args, archive).root == Path("/some/where")
    args.cache = None
    assert provenance_cache(args, archive).root == Path(archive.root).resolve().parent / "provenance-cache"
    args.params = ["--no-cache"]
    _take_run_options(args)
    assert args.no_cache and provenance_cache(args, archive) is None


def test_jemx_image_shares_windows(archive, tmp_path):
    wins = archive.index.select(83.633, 22.015, 4.0, Time("2011-10-01"), Time("2011-11-01"), None)
    wins = [w for w in wins if w.revolution == 1100][:3]
    assert len(wins) == 3
    cache = ProvenanceCache(tmp_path / "cache")

    def image(scws, cache, out):
        raw = {"RA": 83.633, "DEC": 22.015, "scw_list": ",".join(w.scw_id for w in scws)}
        return engine.execute("jemx", "jemx_image", raw, SerialContext(archive, tmp_path / out, cache=cache))

    assert image(wins[:2], cache, "a").meta["cache"] == {"hits": 0, "misses": 2}
    cached = image(wins[1:], cache, "b")
    assert cached.meta["cache"] == {"hits": 1, "misses": 1} and cache.size() == 3
    plain = image(wins[1:], None, "c")
    assert "cache" not in plain.meta
    a, b = _mosaic(cached), _mosaic(plain)
    assert set(a) == set(b) and "RECONSTRUCTED" in a
    for name, img in b.items():
        ok = np.isfinite(img)
        np.testing.assert_allclose(a[name][ok], img[ok], rtol=1e-4, atol=1e-5 * np.abs(img[ok]).max(),
                                   err_msg=name)
    assert cached.meta["catalog"]
    assert [d["name"] for d in cached.meta["catalog"]] == [d["name"] for d in plain.meta["catalog"]]
    # JEM-X and ISGRI entries of one window never collide
    assert decoded_key("jemx", wins[0], 20.0, 40.0, archive, unit=2) != decoded_key(
        "isgri", wins[0], 20.0, 40.0, archive)


def test_job_manager_shares_windows_between_users(make_manager, archive, windows, alice, bob, tmp_path):
    from mmoda_ext.instruments.isgri import Isgri

    m = make_manager(archive=archive, instruments={"isgri": Isgri()}, root=str(tmp_path / "jobs"))

    def job(scws, who):
        raw = {"RA": 83.633, "DEC": 22.015, "T1": "2016-02-01", "T2": "2016-03-01",
               "scw_list": ",".join(w.scw_id for w in scws)}
        done = m.wait(m.submit("isgri", "isgri_image", raw, who).job_id, 60)
        assert done.error is None, done.error
        return m.products(done.job_id, who).meta["cache"]

    assert job(windows[:3], alice) == {"hits": 0, "misses": 3}
    assert job(windows[1:5], bob) == {"hits": 2, "misses": 2}  # another user's request
    assert m.cache.size() == 5 and m.cache.root == tmp_path / "jobs" / "cache"
