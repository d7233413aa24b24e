"""Panel state without a browser: the form follows the instrument's parameters, tier rules,
errors on their field, the science-window count, name resolution, the code, the selection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.table import Table
from mmoda_widgets.state import JobsState, ProductsState, QueryState, selected_catalog
from widget_helpers import CRAB

from mmoda_ext.archive import default_archive
from mmoda_ext.client import ClientError
from mmoda_ext.instruments.params import to_time


def test_form_follows_the_instrument_parameters(anon):
    q = QueryState(anon).load("isgri", "isgri_image")
    spec = anon.instrument("isgri")["products"]["isgri_image"]["parameters"]
    assert [f.name for f in q.fields] == [p["name"] for p in spec]
    e1 = q.field("E1_keV")
    assert (e1.unit, e1.default, e1.minimum, e1.maximum, e1.label) == ("keV", 20.0, 15.0, 800.0, "E1_keV [keV]")
    assert q.field("osa_version").kind == "select"
    q.select("spi_acs")
    names = [f.name for f in q.fields]
    assert q.product == "spi_acs_lc" and "time_bin" in names and "E1_keV" not in names
    assert [p["name"] for p in anon.instrument("spi_acs")["products"]["spi_acs_lc"]["parameters"]] == names
    q.select("isgri", "isgri_lc")
    assert q.field("time_bin").unit == "s"
    with pytest.raises(ValueError, match="no product 'nope'"):
        q.select("isgri", "nope")


def test_tier_limits_disable_what_is_not_allowed(anon, private):
    q = QueryState(anon).load("isgri", "isgri_image")
    rights = q.field("integral_data_rights")
    assert rights.disabled and rights.choices == ["public"] and "private-data right" in rights.note
    assert "OSA11.2-beta" not in q.field("osa_version").choices
    assert q.field("max_pointings").maximum == 50
    p = QueryState(private).load("isgri", "isgri_image")
    assert not p.field("integral_data_rights").disabled
    assert "all-private" in p.field("integral_data_rights").choices
    assert "OSA11.2-beta" in p.field("osa_version").choices
    assert p.field("max_pointings").maximum == private.whoami()["max_scw"] == 500


def test_errors_land_on_their_field_with_the_api_message(anon):
    q = QueryState(anon).load("isgri", "isgri_image")
    q.field("E1_keV").value = 900.0
    assert q.check() is None
    with pytest.raises(ClientError) as direct:
        anon.submit("isgri", "isgri_image", **{**q.values()})
    assert q.field("E1_keV").error == direct.value.message and "900" in direct.value.message
    assert all(not f.error for f in q.fields if f.name != "E1_keV")
    q.field("E1_keV").value = 20.0
    q.field("max_pointings").value = 51  # over the anonymous tier's 50
    assert q.submit() is None and not q.job
    assert "50" in q.field("max_pointings").error and q.field("E1_keV").error == ""


def test_science_windows_counted_before_submit(anon, widget_server):
    q = QueryState(anon).load("isgri", "isgri_image")
    for k, v in CRAB.items():
        q.field(k).value = v
    out = q.check()
    sw = out["science_windows"]
    archive = default_archive(widget_server.archive)
    rows = archive.index.cone(CRAB["RA"], CRAB["DEC"], 15.0, to_time(CRAB["T1"]), to_time(CRAB["T2"]))
    assert sw == {"available": len(rows), "selected": 3, "limit": 50, "by": "max_pointings"}
    assert len(rows) > 3 and f"3 of {len(rows)} science windows" in q.message
    assert not anon.jobs()  # nothing was submitted


def test_source_name_resolved_on_the_spot(anon):
    q = QueryState(anon).load("isgri", "isgri_image")
    q.field("src_name").value = "Crab"
    assert q.resolve()
    assert q.field("RA").value == pytest.approx(83.633, abs=0.01)
    assert q.field("DEC").value == pytest.approx(22.014, abs=0.01)
    q.field("src_name").value = "No Such Source 123"
    assert not q.resolve() and "No Such Source 123" in q.field("src_name").error


def test_show_the_code_runs_unchanged_with_oda_api(registered):
    q = QueryState(registered).load("spi_acs", "spi_acs_lc")
    q.field("T1").value, q.field("T2").value = "2023-03-07T15:40:00", "2023-03-07T15:45:00"
    q.field("time_bin").value = 2.0
    code = q.code()
    assert "DispatcherAPI(url=" in code and "instrument='spi_acs'" in code and "time_bin=2.0" in code
    assert registered.token not in code  # the token is read from the environment, never printed
    oda_part = code.split("# native client")[0]
    scope: dict = {}
    import os

    os.environ["ODA_TOKEN"] = registered.token
    try:
        exec(compile(oda_part, "show_the_code", "exec"), scope)
    finally:
        del os.environ["ODA_TOKEN"]
    lc = scope["data"]._p_list[0]
    rate = np.asarray(lc.data_unit[1].data["RATE"])
    assert len(rate) == 150 and np.all(np.isfinite(rate))


def test_selected_catalog_is_mmoda_api_catalog():
    t = Table({"meta_ID": np.arange(3), "src_names": ["Crab", "A0535+26", "NEW_1"],
               "significance": [200.0, 9.0, 7.5], "ra": [83.63, 84.73, 80.0], "dec": [22.01, 26.32, 20.0],
               "NEW_SOURCE": np.array([0, 0, 1], np.int16), "ISGRI_FLAG": np.array([1, 1, 0], np.int16),
               "FLAG": np.zeros(3, np.int16), "ERR_RAD": [0.01, 0.05, 0.06], "FLUX": [1.0, 2.0, 3.0]})
    cat = json.loads(selected_catalog(t, ["NEW_1", "Crab"]))
    assert cat["cat_column_names"][:5] == ["meta_ID", "src_names", "significance", "ra", "dec"]
    assert len(cat["cat_column_names"]) == 9 and cat["cat_lon_name"] == "ra"
    assert cat["cat_column_list"][1] == ["Crab", "NEW_1"] and cat["cat_column_list"][0] == [0, 2]
    with pytest.raises(ValueError, match="Vela"):
        selected_catalog(t, ["Vela"])


def test_selection_reaches_the_follow_up_request(registered, crab_image):
    p = ProductsState(registered)
    prods = p.load(crab_image)
    assert {x.kind for x in prods} >= {"isgri_mosaic", "isgri_catalog"}
    names = [str(n) for n in p.catalog["src_names"]]
    assert "Crab" in names
    with pytest.raises(ValueError, match="select one or more"):
        p.follow_up_request("isgri_spectrum")
    p.selected = ["Crab"]
    instrument, params = p.follow_up_request("isgri_spectrum")
    assert instrument == "isgri" and params["src_name"] == "Crab"
    assert params["T1"] == crab_image["params"]["T1"] and params["max_pointings"] == 3
    if "selected_catalog" in params:
        assert json.loads(params["selected_catalog"])["cat_column_list"][1] == ["Crab"]
    job = p.follow_up("isgri_spectrum")
    assert job is not None, p.error
    assert job["params"]["src_name"] == "Crab" and job["product"] == "isgri_spectrum"
    jobs = JobsState(registered)
    jobs.track(job)
    jobs.wait(120)
    done = [j for j in jobs.jobs if j["job_id"] == job["job_id"]][0]
    assert done["status"] == "done", done
    spectra = ProductsState(registered)
    spectra.load(done)
    assert "Crab" in {x.meta.get("src_name") for x in spectra.of_kind("isgri_spectrum")}
