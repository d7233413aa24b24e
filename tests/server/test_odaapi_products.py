"""Every (instrument, product) of the registry through the real oda_api client, decoded.

Real instruments get small requests (a few science windows, short intervals); products
decode into the client's classes and every FITS-like product converts back to FITS HDUs.
"""

from __future__ import annotations

import io
import json
import os

import httpx
import pytest
from astropy.io import fits
from astropy.table import Table
from oda_api.api import DispatcherAPI, RemoteException
from oda_api.data_products import ApiCatalog, NumpyDataProduct, ODAAstropyTable
from serve_helpers import make_token

from mmoda_ext.instruments import registry
from mmoda_ext.server.encode import MMODA_CATALOG_COLUMNS

#: small requests for products that compute for real
#: (the Crab's field, not the default Galactic centre: MMODA extracts a spectrum and a light curve
#: for every catalogue source in the field, ~30 there, which other tests cover)
CRAB = {"src_name": "Crab", "RA": 83.6331, "DEC": 22.0145, "T1": "2016-02-01T00:00:00", "T2": "2016-03-01T00:00:00"}
SMALL = {
    "isgri": {"max_pointings": 2, **CRAB},
    "jemx": {"max_pointings": 2, **CRAB},
    "spi_acs": {"T1": "2017-03-06T13:26:48", "T2": "2017-03-06T14:26:48"},
}
#: products whose MMODA semantics is to fail, or to answer without data products
FAILS = {("empty", "failing")}
NO_DATA = {"dummy", "dummy-log-submit", "parametrical", "echo", "restricted", "structured", "optional"}

CASES = [(i, p) for i, inst in registry().items() for p in inst.products]


def request_for(instrument: str, product: str) -> dict:
    kw = dict(instrument=instrument, product=product, **SMALL.get(instrument, {}))
    if instrument.startswith("empty"):
        kw["product_type"] = "Dummy" if instrument != "empty-semi-async" else "Real"
        kw["token"] = make_token()  # `numerical` needs the role general
    return kw


@pytest.mark.parametrize(("instrument", "product"), CASES, ids=[f"{i}-{p}" for i, p in CASES])
def test_every_product_through_oda_api(server, instrument, product):
    disp = DispatcherAPI(url=server.url)
    disp.n_max_tries, disp.retry_sleep_s = 3, 0.2
    kw = request_for(instrument, product)
    if (instrument, product) in FAILS:
        with pytest.raises(RemoteException):
            disp.get_product(**kw)
        return
    data = disp.get_product(**kw, silent=True)
    assert disp.query_status == "done", disp.response_json["exit_status"]
    if product in NO_DATA:
        return
    assert data._p_list, f"{instrument}/{product} returned no product"
    for name, prod in zip(data._n_list, data._p_list, strict=True):
        assert name.isidentifier()
        if isinstance(prod, NumpyDataProduct):
            hdul = prod.to_fits_hdu_list()
            assert isinstance(hdul, fits.HDUList) and len(hdul) >= 1
            for hdu in hdul:
                if isinstance(hdu, fits.BinTableHDU):
                    assert len(Table.read(hdu).colnames) > 0
        elif isinstance(prod, ApiCatalog):
            # exactly MMODA's catalogue: users add_row 9 values and send it back as selected_catalog
            assert prod.table.colnames == list(MMODA_CATALOG_COLUMNS)
            prod.table.add_row((len(prod.table), "MySource", 0.0, 83.63, 22.01, 1, 2, 0, 0.0))
            assert json.loads(prod.get_api_dictionary())["cat_column_list"][1][-1] == "MySource"
        elif isinstance(prod, ODAAstropyTable):
            assert len(prod.table) > 0
    # the same job through the REST API: its FITS files are served and open with astropy
    token = kw.get("token")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    listing = httpx.get(f"{server.url}/api/v1/jobs/{disp.job_id}/products", headers=headers).json()
    for entry in listing["products"]:
        if entry.get("fits_url"):
            r = httpx.get(server.url + entry["fits_url"], headers=headers)
            assert r.status_code == 200
            if entry["meta"].get("format") == "ROOT":  # POLAR's second product, as MMODA's
                assert r.content[:4] == b"root"
                continue
            with fits.open(io.BytesIO(r.content)) as hdul:
                assert len(hdul) >= 1


def test_oda_api_cli_prints_mmoda_query_names(server):
    """The oda_api suite's own ``oda-api get -i empty`` (MMODA's test_get) against mmoda serve."""
    import subprocess
    import sys
    from pathlib import Path

    cli = Path(sys.executable).with_name("oda-api")
    out = subprocess.run([str(cli), "-u", server.url, "get", "-i", "empty"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "ODA_TOKEN": ""})
    assert out.returncode == 0, out.stderr
    assert ("'prod_dict': {'dummy': 'empty_parameters_dummy_query', 'numerical': "
            "'numerical_parameters_dummy_query'") in out.stdout + out.stderr
    meta = httpx.get(f"{server.url}/api/meta-data", params={"instrument": "isgri"}).json()[0]
    assert meta[1]["prod_dict"] == {"isgri_image": "isgri_image_query", "isgri_spectrum": "isgri_spectrum_query",
                                    "isgri_lc": "isgri_lc_query", "spectral_fit": "spectral_fit_query"}
    assert meta[2][0] == {"query_name": "src_query"} and meta[3][0] == {"query_name": "isgri_parameters"}
    assert "selected_catalog" in [e.get("name") for e in meta[3]]
    queries = {q[0]["query_name"]: q for q in meta[4:]}
    assert "selected_catalog" not in [e.get("name") for e in queries["isgri_spectrum_query"]]
    meta = httpx.get(f"{server.url}/api/meta-data", params={"instrument": "antares"}).json()[0]
    assert meta[2][0] == {"query_name": "source_query"} and meta[3][0] == {"query_name": "instrument_query"}
    names = httpx.get(f"{server.url}/api/par-names",
                      params={"instrument": "jemx", "product_type": "jemx_spectrum"}).json()
    assert names.count("selected_catalog") == 1 and names[7] == "scw_list"
