"""POLAR: mission window, refusals, SAA gaps, an injected GRB seen where it belongs, product format."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from mmoda_ext.access.rights import Rights
from mmoda_ext.archive.polar_data import PolarArchive
from mmoda_ext.archive.spiacs_data import load_grb_catalog
from mmoda_ext.engine import prepare, run
from mmoda_ext.errors import NoDataError, ParameterError
from mmoda_ext.jobs.compute import SerialContext
from mmoda_ext.science.bursts import fred_mean


def polar(raw, tmp_path=None):
    inst, params = prepare("polar", "polar_lc", raw, Rights(), None)
    if tmp_path is None:
        return params
    return run("polar", "polar_lc", params, SerialContext(None, tmp_path))


def test_outside_mission_refused():
    with pytest.raises(NoDataError) as err:
        polar({"T1": "2018-03-01T00:00:00", "T2": "2018-03-01T02:00:00"})
    msg = err.value.message
    assert "T1 = 2018-03-01T00:00:00.000" in msg and "T2 = 2018-03-01T02:00:00.000" in msg
    assert "2016-09-22" in msg and "2017-04-04T00:46:36" in msg
    with pytest.raises(NoDataError):
        polar({"T1": "2016-09-01T00:00:00", "T2": "2016-09-10T00:00:00"})


def test_inverted_range_refused():
    with pytest.raises(ParameterError, match="inverted"):
        polar({"T1": "2017-01-02T00:00:00", "T2": "2017-01-01T00:00:00"})
    with pytest.raises(ParameterError, match="E2_keV"):
        polar({"T1": "2017-01-01T00:00:00", "T2": "2017-01-01T01:00:00", "E1_keV": 300, "E2_keV": 100})


def test_grb_170114a_visible(tmp_path):
    ps = polar({"T1": "2017-01-14T21:51:10", "T2": "2017-01-14T22:11:10", "time_bin": 1}, tmp_path)
    prod = ps.find("polar_lc")[0]
    with fits.open(prod.fits) as f:
        assert f[1].name == "POLAR_LC" and f[1].columns.names == ["rate", "rate_err", "time"]
        d = f[1].data
    cat = load_grb_catalog()
    row = cat[cat["name"] == "GRB 170114A"][0]
    t_peak = Time(row["t0_utc"], scale="utc").unix + row["delay"]
    i = int(np.argmax(d["rate"]))
    assert abs(d["time"][i] - t_peak) <= 1.0
    bkg = np.median(d["rate"])
    assert 1e3 < bkg < 2e3
    signif = (d["rate"][i] - bkg) / d["rate_err"][i]
    assert signif > 20
    # the excess matches the injected pulse averaged over the bin (E1-E2 = 0-10000 keV: whole band)
    truth = fred_mean(d["time"][i] - 0.5, d["time"][i] + 0.5, t_peak, row["polar_peak"], row["t_rise"], row["t_decay"])
    assert d["rate"][i] - bkg == pytest.approx(float(truth), abs=4 * d["rate_err"][i])
    assert any("GRB 170114A" in m for m in ps.messages)
    assert prod.png.stat().st_size > 10000 and prod.meta["src_name"] == "lc"


def test_saa_gaps_and_default_request(tmp_path):
    ps = polar({"T1": "2017-01-20T00:00:00", "T2": "2017-01-20T12:00:00", "time_bin": 10}, tmp_path)
    with fits.open(ps.products[0].fits) as f:
        t = f["POLAR_LC"].data["time"]
    gaps = np.diff(t)[np.diff(t) > 15]
    assert gaps.size >= 2 and gaps.max() > 8 * 60  # SAA passages of 8-18 min
    assert any("South Atlantic Anomaly" in m for m in ps.messages)
    assert PolarArchive().in_saa(np.arange(t[0], t[-1], 10.0)).any()


def test_energy_band_scales_rate(tmp_path):
    lo = polar({"T1": "2017-02-01T00:00:00", "T2": "2017-02-01T00:30:00", "E1_keV": 50, "E2_keV": 500,
                "time_bin": 60}, tmp_path / "a")
    full = polar({"T1": "2017-02-01T00:00:00", "T2": "2017-02-01T00:30:00", "time_bin": 60}, tmp_path / "b")
    with fits.open(lo.products[0].fits) as a, fits.open(full.products[0].fits) as b:
        ratio = a[1].data["rate"].mean() / b[1].data["rate"].mean()
    assert ratio == pytest.approx(np.log(10) / np.log(200), rel=0.02)


def test_root_file_beside_the_light_curve_as_mmoda(tmp_path):
    """Two products as MMODA's POLAR: the FITS light curve and the ROOT file (legacy BinaryData)."""
    import ast
    import json

    import uproot
    from oda_api.api import DataCollection

    from mmoda_ext.server.encode import encode_products

    ps = polar({"T1": "2017-01-14T21:51:10", "T2": "2017-01-14T22:11:10", "time_bin": 10}, tmp_path)
    assert [p.kind for p in ps.products] == ["polar_lc", "polar_root"]
    with fits.open(ps.products[0].fits) as f:
        d = f["POLAR_LC"].data
    with uproot.open(ps.products[1].fits) as root:
        tree = root["polar_lc"].arrays(library="np")
        np.testing.assert_allclose(tree["time"], d["time"])
        np.testing.assert_allclose(tree["rate"], d["rate"])
        counts, edges = root["lc"].to_numpy()
        np.testing.assert_allclose(counts, d["rate"])
        assert "SIMULATED" in root["polar_lc"].title
    text = json.dumps({"products": encode_products(ps, "polar", "polar_lc"), "job_monitor": {"job_id": "x"}})
    decoded = ast.literal_eval(str(json.loads(text)).replace("null", "None"))  # what the client does
    data = DataCollection.from_response_json(decoded, "polar", "polar_lc")
    assert data._n_list == ["polar_lc_0_lc", "polar_lc_1"]
    raw = data.polar_lc_1
    assert isinstance(raw, bytes) and raw == (tmp_path / "polar_lc.root").read_bytes()
    assert raw[:4] == b"root"


def test_saa_gaps_are_not_drawn_as_data():
    """The preview's line breaks at every gap: NaN at both ends of it, one bin inside."""
    from mmoda_ext.products.plots import _break_gaps

    t = np.array([0.0, 10, 20, 30, 700, 710, 720])
    r = np.arange(7.0)
    tt, rr = _break_gaps(t, r)
    assert np.isnan(rr).sum() == 2 and list(tt[4:6]) == [40.0, 690.0]
    assert np.all(np.diff(tt) > 0)
