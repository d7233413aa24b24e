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
