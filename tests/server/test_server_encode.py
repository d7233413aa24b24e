"""Products encoded for oda_api decode into the real oda_api 1.3.5 classes."""

from __future__ import annotations

import ast
import base64
import io
import json
import pickle
import struct
import zlib

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from mmoda_ext.instruments.base import ProductFile, ProductSet
from mmoda_ext.server.encode import (
    b64_pickle,
    catalog_dict,
    encode_products,
    json_safe,
    picture_product,
)

data_products = pytest.importorskip("oda_api.data_products")
from oda_api.api import DataCollection  # noqa: E402


def client_decode(products: dict) -> DataCollection:
    """What oda_api does with a response: JSON text -> literal_eval(null->None) -> classes."""
    text = json.dumps({"products": products, "job_monitor": {"job_id": "x"}}, allow_nan=False)
    res = ast.literal_eval(str(json.loads(text)).replace("null", "None"))
    return DataCollection.from_response_json(res, "isgri", "isgri_image")


@pytest.fixture
def image_fits(tmp_path):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [83.63, 22.01]
    w.wcs.crpix = [20.5, 15.5]
    w.wcs.cdelt = [-0.08, 0.08]
    img = np.random.default_rng(1).normal(size=(30, 40))
    hdr = w.to_header()
    hdr["BUNIT"] = "count/s"
    hdr["NANKEY"] = 0.0
    path = tmp_path / "mosaic.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img, header=hdr, name="INTENSITY")]).writeto(path)
    return path, img


@pytest.fixture
def lc_fits(tmp_path):
    t = Table({"TIME": np.arange(5.0) * u.d, "RATE": np.ones(5) * u.ct / u.s,
               "ERROR": np.full(5, 0.1) * u.ct / u.s})
    hdu = fits.BinTableHDU(t, name="ISGR-SRC.-LCR")
    hdu.header["TIMEDEL"] = 0.01
    path = tmp_path / "lc.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_image_and_lightcurve_decode_with_shapes_units_and_names(image_fits, lc_fits):
    path, img = image_fits
    ps = ProductSet(products=[
        ProductFile("isgri_image", "isgri_mosaic", fits=path,
                    meta={"oda_name": "mosaic_image", "oda_meta": {"product": "mosaic", "instrument": "isgri", "src_name": ""}}),
        ProductFile("isgri_lc", "isgri_lc", fits=lc_fits, meta={"src_name": "OAO 1657-415", "time_bin": 100.0}),
    ])
    dc = client_decode(encode_products(ps, "isgri", "isgri_image"))
    assert dc._n_list == ["mosaic_image_0_mosaic", "isgri_lc_1_OAO1657m415"]
    mosaic = dc.mosaic_image_0_mosaic
    hdul = mosaic.to_fits_hdu_list()
    assert hdul[1].data.shape == (30, 40) and np.allclose(hdul[1].data, img)
    assert hdul[1].header["BUNIT"] == "count/s" and "NANKEY" in hdul[1].header
    assert WCS(hdul[1].header).wcs.crval[0] == pytest.approx(83.63)
    lc = dc.isgri_lc_1_OAO1657m415
    t = Table.read(lc.to_fits_hdu_list()[1])
    assert len(t) == 5 and t["RATE"].unit == u.ct / u.s and t["TIME"].unit == u.d
    assert lc.data_unit[1].name == "ISGR-SRC.-LCR" and lc.data_unit[1].header["TIMEDEL"] == 0.01


def test_catalog_decodes_as_api_catalog(tmp_path):
    t = Table({"NAME": ["Crab", "A 0535+26"], "RA_FIN": [83.63, 84.73], "DEC_FIN": [22.01, 26.31],
               "DETSIG": [120.5, np.nan]})
    path = tmp_path / "cat.fits"
    t.write(path)
    ps = ProductSet(products=[ProductFile("isgri_catalog", "isgri_catalog", fits=path)])
    enc = encode_products(ps, "isgri", "isgri_image")
    assert enc["catalog"]["cat_column_list"][4][1] is None  # NaN -> null
    dc = client_decode(enc)
    cat = dc.dispatcher_catalog_0
    assert list(cat.table["src_names"]) == ["Crab", "A 0535+26"]
    assert cat.table["ra"].unit == u.deg and float(cat.table["ra"][0]) == pytest.approx(83.63)
    assert json.loads(cat.get_api_dictionary())["cat_lat_name"] == "dec"


def test_table_picture_binary_text(tmp_path):
    t = Table({"E": [1.0, 10.0] * u.GeV, "flux_UL": [1e-8, 2e-8]}, meta={"RA": 80.0})
    tpath = tmp_path / "ul.fits"
    t.write(tpath)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    png = tmp_path / "p.png"
    fig.savefig(png)
    plt.close(fig)
    root = tmp_path / "x.root"
    root.write_bytes(b"root\x00file" * 10)
    ps = ProductSet(products=[
        ProductFile("antares_spectrum", "spectrum", fits=tpath, meta={"oda_encoding": "table"}),
        ProductFile("preview", "image", png=png, meta={"oda_encoding": "picture"}),
        ProductFile("polar_root", "lc", fits=root, meta={"oda_encoding": "binary"}),
        ProductFile("note", "text", meta={"value": "hello"}),
    ])
    dc = client_decode(encode_products(ps, "antares", "antares_spectrum"))
    kinds = [type(p).__name__ for p in dc._p_list]
    assert kinds == ["BinaryProduct", "ODAAstropyTable", "PictureProduct", "TextLikeProduct"]
    assert dc._p_list[0].bin_data == root.read_bytes()
    assert dc._p_list[1].table["E"].unit == u.GeV
    assert dc._p_list[2].img_type == "png"
    assert dc._p_list[3].value == "hello"


def test_base64_payloads_never_contain_null():
    # plant the bytes whose base64 reads 'null' at each alignment until the plain pickle shows it
    seed = base64.b64decode("null")
    for offset in range(3):
        arr = np.zeros(64, dtype=np.uint8)
        arr[offset:offset + 3] = np.frombuffer(seed, dtype=np.uint8)
        plain = base64.b64encode(pickle.dumps(arr, protocol=4)).decode()
        if "null" in plain:
            break
    else:  # pragma: no cover
        pytest.fail("no test vector found")
    text = b64_pickle(arr)
    assert "null" not in text
    assert np.array_equal(pickle.loads(base64.b64decode(text), encoding="bytes"), arr)


def test_png_null_avoidance_keeps_a_valid_image():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = buf.getvalue()
    seed = base64.b64decode("null")
    for k in range(3):  # a text chunk whose bytes read 'null' in base64 at some alignment
        text = b"Comment\x00" + b"x" * k + seed
        chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))
        data = png[:33] + chunk + png[33:]
        if "null" in base64.urlsafe_b64encode(data).decode():
            break
    else:  # pragma: no cover
        pytest.fail("no test vector found")
    enc = picture_product(data, "p", {})
    assert "null" not in enc["b64data"]
    pic = data_products.PictureProduct.decode(enc)
    import matplotlib.image as mpimg

    assert mpimg.imread(io.BytesIO(pic.binary_data)).shape[:2] == (100, 100)


def test_scw_echo_and_json_safety():
    ps = ProductSet(meta={"input_param_scw_list": ["066500220010.001"], "echo": {"x": float("nan")}})
    enc = encode_products(ps, "empty-async", "dummy")
    assert enc["echo"] == {"x": None}
    du = data_products.NumpyDataProduct.decode(enc["input_param_scw_list"])
    assert du.data_unit[0].meta_data == {"scw_list": ["066500220010.001"]}
    assert du.data_unit[0].data.shape == (0,)
    assert json_safe({"a": np.float32(np.inf), "b": (np.int64(3),)}) == {"a": None, "b": [3]}
    assert catalog_dict(Table({"ra": [1.0], "dec": [2.0]}))["cat_column_names"] == ["meta_ID", "ra", "dec"]
