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
    names = [n for n in dir(data) if n.startswith("isgri_spectrum_")]
    assert "isgri_spectrum_0_Crab_isgri_spectrum" in names
    assert "isgri_spectrum_2_Crab_isgri_rmf" in names
    rmf = data.isgri_spectrum_2_Crab_isgri_rmf
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
