"""ISGRI spectrum and light curve through the oda_api wire encoding into OdaSpectrum / OdaLightCurve."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest

from mmoda_ext import engine
from mmoda_ext.archive import default_archive
from mmoda_ext.jobs.compute import SerialContext
from mmoda_ext.server.encode import encode_products

plot_tools = pytest.importorskip("oda_api.plot_tools")
from oda_api.api import DataCollection  # noqa: E402

REQ = dict(src_name="Crab", T1="2016-02-05T08:30", T2="2016-02-05T12:30", max_pointings=3,
           osa_version="OSA10.2")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    archive = default_archive(tmp_path_factory.mktemp("oda-archive"))

    def _run(product, **raw):
        res = engine.execute("isgri", product, raw, SerialContext(archive, tmp_path_factory.mktemp(product)))
        text = json.dumps({"products": encode_products(res, "isgri", product),
                           "job_monitor": {"job_id": "x"}}, allow_nan=False)
        decoded = ast.literal_eval(str(json.loads(text)).replace("null", "None"))
        return DataCollection.from_response_json(decoded, "isgri", product)
    return _run


def test_oda_spectrum_reads_the_crab(run):
    data = run("isgri_spectrum", **REQ)
    names = [n for n in data._n_list if n.startswith("isgri_spectrum_")]
    # one triple per catalogue source of the field (the Crab and 1A 0535+262), named as MMODA's
    crab = [n for n in names if "_Crab_" in n]
    assert [n.split("_", 3)[3] for n in crab] == ["Crab_isgri_spectrum", "Crab_isgri_arf", "Crab_isgri_rmf"]
    assert len(names) % 3 == 0
    rmf = getattr(data, crab[2])
    assert rmf.data_unit[1].name == "EBOUNDS" and rmf.data_unit[2].name == "SPECRESP MATRIX"
    assert rmf.data_unit[2].data["MATRIX"].shape[0] == len(rmf.data_unit[2].data["ENERG_LO"])
    x, dx, y, dy = plot_tools.OdaSpectrum(data).get_values("Crab")
    assert len(x) == 58 and x[0] == pytest.approx(15.5)
    band = (x > 20) & (x < 40)
    # 20–40 keV Crab rate at the OSA10.2 scale (oda_api divides RATE by the half width dx)
    assert np.sum(y[band] * dx[band]) == pytest.approx(136.3, rel=0.06)


def test_oda_lightcurve_reads_the_crab(run):
    data = run("isgri_lc", time_bin=1000, E1_keV=20, E2_keV=40, **REQ)
    lc = plot_tools.OdaLightCurve(data)
    t, dt, rate, err, e1, e2 = lc.get_lc("Crab")[:6]
    assert len(t) >= 8 and e1 == 20 and e2 == 40
    assert 120 < np.average(rate, weights=err**-2) < 150
    assert np.all(dt > 0)


BLANK = ("Blank J0550+2500", 87.5, 25.0)  # 4.3° from the Crab: coded, no source


def _selected(rows) -> str:
    """The image's catalogue as a user edits it (ApiCatalog.add_row of 9 values) and sends it back."""
    from oda_api.data_products import ApiCatalog

    from mmoda_ext.products.isgri import catalog_table
    from mmoda_ext.server.encode import catalog_dict

    det = {"name": "Crab", "ra": 83.63, "dec": 22.01, "significance": 300.0, "new": False,
           "err_rad": 0.005, "flux": 136.0, "flux_err": 0.5}
    cat = ApiCatalog(catalog_dict(catalog_table([det])), name="dispatcher_catalog")
    for name, ra, dec in rows:
        cat.table.add_row((len(cat.table), name, 0.0, ra, dec, 1, 2, 0, 0.0))
    return cat.get_api_dictionary()


def test_selected_catalog_drives_spectra_and_names_products_as_mmoda(run, tmp_path, monkeypatch):
    data = run("isgri_spectrum", selected_catalog=_selected([BLANK]), **REQ)
    assert sorted({p.meta_data["src_name"] for p in data._p_list}) == sorted(["Crab", BLANK[0]])
    assert data._n_list == ["isgri_spectrum_0_Crab_isgri_spectrum", "isgri_spectrum_1_Crab_isgri_arf",
                            "isgri_spectrum_2_Crab_isgri_rmf",
                            "isgri_spectrum_3_BlankJ0550p2500_isgri_spectrum",
                            "isgri_spectrum_4_BlankJ0550p2500_isgri_arf",
                            "isgri_spectrum_5_BlankJ0550p2500_isgri_rmf"]
    x, dx, y, dy = plot_tools.OdaSpectrum(data).get_values(BLANK[0])
    band = (x > 20) & (x < 100)
    assert abs(np.sum(y[band] * dx[band])) < 4 * np.sqrt(np.sum((dy[band] * dx[band]) ** 2))
    # MMODA's file names from the user's usual save step
    monkeypatch.chdir(tmp_path)
    data.new_from_metadata("src_name", "Crab").save_all_data()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "prod_0_Crab_isgri_spectrum.fits", "prod_1_Crab_isgri_arf.fits", "prod_2_Crab_isgri_rmf.fits"]


def test_selected_catalog_drives_light_curves(run):
    data = run("isgri_lc", time_bin=2000, selected_catalog=_selected([BLANK]), **REQ)
    assert data._n_list == ["isgri_lc_0_Crab", "isgri_lc_1_BlankJ0550p2500"]
    t, dt, rate, err = plot_tools.OdaLightCurve(data).get_lc(BLANK[0])[:4]
    assert len(t) >= 4 and abs(np.average(rate, weights=err**-2)) < 4 / np.sqrt(np.sum(err**-2))
