"""Fast reading of ISGRI window files: the block-by-block reader gives what astropy's HDU list
gives, reads the RICE-compressed files of older archives, and survives the cache being
deleted between a window's check and its reading."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from mmoda_ext.archive import isgri_data
from mmoda_ext.archive.isgri_data import band_channels, generate_window, load_window


def _windows(archive, n):
    from astropy.time import Time

    return archive.index.select(83.633, 22.015, 10.0, Time("2016-02-01"), Time("2016-03-01"), n)


def test_fast_reader_equals_astropy_and_reads_compressed_files(isgri_archive, tmp_path):
    scw = _windows(isgri_archive, 1)[0]
    path = generate_window(isgri_archive, scw)
    win = load_window(isgri_archive, scw, bands=((20.0, 40.0), (30.0, 80.0)))
    with fits.open(path) as hdul:
        assert not isinstance(hdul["ISGR-DETE-SHD"], fits.CompImageHDU)  # a band is one read
        cube = np.asarray(hdul["ISGR-DETE-SHD"].data)
        for e1, e2 in ((20.0, 40.0), (30.0, 80.0), (15.0, 1000.0)):
            i0, i1 = band_channels(e1, e2)
            got, _ = win.band(e1, e2)
            assert got.dtype == np.int32 and np.array_equal(got, cube[i0:i1].sum(axis=0, dtype=np.int32))
        assert np.array_equal(win.efficiency, hdul["ISGR-EFFI-SHD"].data)
        assert np.array_equal(win.background, hdul["ISGR-BACK-BKG"].data)
        assert win.header["SWID"] == scw.scw_id and win.exposure == hdul[0].header["EXPOSURE"]
        # the same window as an older archive wrote it: RICE tiles, one per channel
        old = fits.HDUList([hdul[0].copy(), fits.CompImageHDU(cube, compression_type="RICE_1",
                            tile_shape=(1, *cube.shape[1:]), name="ISGR-DETE-SHD"),
                            *(h.copy() for h in hdul[2:])])
    old.writeto(path, overwrite=True)
    assert isgri_data.is_current(isgri_archive, path)
    again = load_window(isgri_archive, scw, bands=((20.0, 40.0),))
    assert np.array_equal(again.band(20.0, 40.0)[0], win.band(20.0, 40.0)[0])
    assert np.array_equal(again.efficiency, win.efficiency)
    path.unlink()


def test_window_deleted_between_check_and_read_is_made_again(isgri_archive, monkeypatch):
    scw = _windows(isgri_archive, 2)[1]
    first = generate_window(isgri_archive, scw).read_bytes()
    real = type(isgri_archive).ensure_window
    calls = []

    def ensure_then_lose(self, instrument, window):
        path = real(self, instrument, window)
        calls.append(path)
        if len(calls) == 1:
            path.unlink()  # the cache is cleaned right after the check
        return path

    monkeypatch.setattr(type(isgri_archive), "ensure_window", ensure_then_lose)
    win = load_window(isgri_archive, scw, bands=((20.0, 40.0),))
    assert len(calls) == 2 and win.path.read_bytes() == first  # made again, byte-identical
    assert not isgri_data.is_current(isgri_archive, win.path.with_name("missing.fits"))


def test_stored_decoding_operator_is_the_computed_one(isgri_archive, tmp_path):
    """A revolution's operator comes back from the archive's store array for array, so an image
    never depends on whether the operator was stored (and the store survives being deleted)."""
    from mmoda_ext.archive.isgri_data import DecoderStore, decoder_store
    from mmoda_ext.science import coded_mask

    scw = _windows(isgri_archive, 1)[0]
    win = load_window(isgri_archive, scw, bands=((20.0, 40.0),))
    counts, _ = win.band(20.0, 40.0)
    fresh = coded_mask.decoder_for(win.efficiency, win.background, reuse=False)
    store = DecoderStore(tmp_path / "decoders")
    coded_mask._CACHE.clear()
    built = coded_mask.decoder_for(win.efficiency, win.background, store=store)
    (stored,) = (tmp_path / "decoders").glob("*/*")
    coded_mask._CACHE.clear()
    loaded = coded_mask.decoder_for(win.efficiency, win.background, store=store)
    assert loaded is not built
    for name, arr in fresh.state().items():
        assert np.array_equal(loaded.state()[name], arr, equal_nan=True), name
    a, b = fresh.decode(counts, win.exposure), loaded.decode(counts, win.exposure)
    for name in ("intensity", "variance", "exposure"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
    damaged = stored / "response.npy"
    damaged.write_bytes(damaged.read_bytes()[:1000])  # a damaged entry is not trusted
    assert store.get(stored.name) is None
    (stored / "response.npy").unlink()  # an entry missing an array is rebuilt
    coded_mask._CACHE.clear()
    rebuilt = coded_mask.decoder_for(win.efficiency, win.background, store=store)
    assert np.array_equal(rebuilt.response, fresh.response, equal_nan=True)
    assert np.array_equal(store.get(stored.name)["response"], fresh.response, equal_nan=True)  # stored again
    assert decoder_store(isgri_archive).root == isgri_archive.root / "isgri-decoders"
    coded_mask._CACHE.clear()
