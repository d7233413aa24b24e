"""JEM-X products end to end on a few simulated windows, checked against the injected truth.

The sky extension file replaces the Crab by a steady pure power law (Γ = 2.3, 1 Crab at
20–40 keV): its position, photon index and count rate are then known exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time
from scipy.optimize import least_squares

from mmoda_ext import engine
from mmoda_ext.access.rights import Rights
from mmoda_ext.archive import default_archive, jemx_data
from mmoda_ext.errors import NoDataError
from mmoda_ext.jobs.compute import SerialContext
from mmoda_ext.science import jemx_response

RA, DEC, GAMMA = 83.633, 22.015, 2.3
EXTRA = f"""# %ECSV 1.0
# ---
# datatype:
# - {{name: id, datatype: int64}}
# - {{name: name, datatype: string}}
# - {{name: ra, datatype: float64}}
# - {{name: dec, datatype: float64}}
# - {{name: mcrab, datatype: float64}}
# - {{name: spectrum, datatype: string}}
# - {{name: gamma1, datatype: float64}}
# schema: astropy-2.0
id name ra dec mcrab spectrum gamma1
1 Crab {RA} {DEC} 1000.0 pl {GAMMA}
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("jemx")
    extra = root / "extra.ecsv"
    extra.write_text(EXTRA)
    archive = default_archive(root / "archive", extra_sources=extra)
    wins = archive.index.select(RA, DEC, 4.0, Time("2011-10-01"), Time("2011-11-01"), None)
    wins = [w for w in wins if w.revolution == 1100][:3]
    assert len(wins) == 3
    return archive, wins, root


def run(setup, product, **extra):
    archive, wins, root = setup
    raw = {"src_name": "Crab", "RA": RA, "DEC": DEC, "scw_list": ",".join(w.scw_id for w in wins), **extra}
    return engine.execute("jemx", product, raw, SerialContext(archive, root / product))


def test_image_finds_the_source_within_one_arcmin(setup):
    ps = run(setup, "jemx_image")
    mosaic = ps.find("jemx_mosaic")[0]
    with fits.open(mosaic.fits) as hdul:
        types = [h.header.get("IMATYPE") for h in hdul[1:]]
        assert types == ["RECONSTRUCTED", "VARIANCE", "SIGNIFICANCE", "EXPOSURE"]
        assert all(h.name == "JMX2-MOSA-IMA" for h in hdul[1:])
        assert hdul[1].header["CTYPE1"] == "RA---TAN" and hdul[1].header["MJDREF"] == 51544.0
    assert mosaic.png.stat().st_size > 20000
    cat = Table.read(ps.find("jemx_catalog")[0].fits, hdu="JMX2-SRCL-RES")
    for col in ("meta_ID", "src_names", "significance", "ra", "dec", "NEW_SOURCE", "ISGRI_FLAG", "FLAG", "ERR_RAD"):
        assert col in cat.colnames
    assert len(cat) == 1  # no ghost or coding-noise detection above 7σ
    row = cat[0]
    assert row["src_names"] == "Crab" and row["significance"] > 500
    sep = math.hypot((row["ra"] - RA) * math.cos(math.radians(DEC)), row["dec"] - DEC) * 60
    assert sep < 1.0, f"{sep:.2f}′"
    # flux: on-axis-equivalent rate of the injected spectrum in the band, within 3 %
    archive = setup[0]
    truth = jemx_response.expected_pha_rate(archive.sky.get("Crab").photon_flux(jemx_response.ENERGY_EDGES, 4300.0))
    c1, c2, _, _ = jemx_response.band_channels(3.0, 20.0)
    assert row["FLUX"] == pytest.approx(truth[c1 : c2 + 1].sum(), rel=0.03)


def test_spectrum_recovers_the_photon_index(setup):
    ps = run(setup, "jemx_spectrum")
    spec, arf, rmf = (ps.find(k)[0].fits for k in ("jemx_spectrum", "jemx_arf", "jemx_rmf"))
    pha = Table.read(spec, hdu="JMX2-PHA1-SPE")
    h = fits.getheader(spec, 1)
    assert (h["RESPFILE"], h["ANCRFILE"]) == (rmf.name, arf.name) and h["SIMULATE"] is True
    assert len(pha) == 16 and fits.getheader(spec, 1)["HDUCLAS1"] == "SPECTRUM"
    assert [h.name for h in fits.open(rmf)] == ["PRIMARY", "EBOUNDS", "SPECRESP MATRIX"]  # OSA order
    assert [h.name for h in fits.open(arf)] == ["PRIMARY", "SPECRESP"]
    matrix = Table.read(rmf, hdu="SPECRESP MATRIX")
    ebounds = Table.read(rmf, hdu="EBOUNDS")
    area = Table.read(arf, hdu="SPECRESP")
    assert ebounds["E_MIN"][0] == pytest.approx(3.04) and ebounds["E_MAX"][-1] == pytest.approx(34.88)
    lo, hi = np.asarray(matrix["ENERG_LO"], float), np.asarray(matrix["ENERG_HI"], float)
    resp = np.asarray(matrix["MATRIX"], float) * np.asarray(area["SPECRESP"], float)[:, None]
    rate, err = np.asarray(pha["RATE"], float), np.asarray(pha["STAT_ERR"], float)

    def model(p):
        k, g = p
        return (k / (1 - g) * (hi ** (1 - g) - lo ** (1 - g))) @ resp

    fit = least_squares(lambda p: (model(p) - rate) / err, [5.0, 2.0])
    sigma = np.sqrt(np.diag(np.linalg.inv(fit.jac.T @ fit.jac)))
    # stated tolerance: 0.03 in Γ (statistical error here ≈ 0.002)
    assert fit.x[1] == pytest.approx(GAMMA, abs=0.03), (fit.x, sigma)
    assert (fit.fun**2).sum() < 3 * 14


def test_light_curve_rate_matches_the_injected_rate(setup):
    ps = run(setup, "jemx_lc", time_bin=600, E1_keV=3.0, E2_keV=20.0)
    path = ps.find("jemx_lc")[0].fits
    lc = Table.read(path, hdu="JMX2-SRC.-LCR")
    h = fits.getheader(path, "JMX2-SRC.-LCR")
    assert h["TIMEUNIT"] == "d" and h["TIMEPIXR"] == 0.5 and h["MJDREF"] == 51544.0 and h["NAME"] == "Crab"
    for col in ("TIME", "RATE", "ERROR", "BRATE", "BERROR", "FRACEXP", "TIMEDEL"):
        assert col in lc.colnames
    assert np.all(np.diff(lc["TIME"]) > 0) and np.allclose(lc["TIMEDEL"], 600 / 86400)
    archive = setup[0]
    truth = jemx_response.expected_pha_rate(archive.sky.get("Crab").photon_flux(jemx_response.ENERGY_EDGES, 4300.0))
    c1, c2, _, _ = jemx_response.band_channels(3.0, 20.0)
    expected = truth[c1 : c2 + 1].sum()
    rate, err = np.asarray(lc["RATE"], float), np.asarray(lc["ERROR"], float)
    mean = np.sum(rate / err**2) / np.sum(1 / err**2)
    assert mean == pytest.approx(expected, rel=0.02)
    chi2 = np.sum(((rate - expected) / err) ** 2)
    assert chi2 / len(rate) < 3.0  # steady source: scatter consistent with the errors
    # BRATE: the injected background under the source (≈ the 25 % open mask's share of it, in band)
    wins = setup[1]
    bkg = np.median([fits.getheader(jemx_data.window_path(archive, w, 2))["BKGRATE"] for w in wins])
    band = jemx_data._background_spectrum()[c1 : c2 + 1].sum()
    assert np.median(lc["BRATE"]) == pytest.approx(0.25 * bkg * band, rel=0.15)
    assert ps.find("jemx_lc")[0].png.stat().st_size > 10000


def test_window_files_are_deterministic(setup):
    archive, wins, root = setup
    path = jemx_data.window_path(archive, wins[0], 2)
    first = path.read_bytes()
    path.unlink()
    jemx_data.generate_window(archive, wins[0], 2)
    assert path.read_bytes() == first


def test_unit_switched_off_is_refused(setup):
    archive, _, root = setup
    wins = [w for w in archive.index.select(RA, DEC, 4.0, Time("2004-01-01"), Time("2004-12-31"), None)
            if w.revolution == 180][:2]
    assert wins and jemx_data.units_on(180) == (1,)
    raw = {"RA": RA, "DEC": DEC, "scw_list": ",".join(w.scw_id for w in wins), "jemx_num": 2}
    _, params = engine.prepare("jemx", "jemx_image", raw, Rights.local(), archive)
    with pytest.raises(NoDataError) as err:
        engine.run("jemx", "jemx_image", params, SerialContext(archive, root / "off"))
    assert err.value.parameter == "jemx_num" and "jemx_num=1" in err.value.message


def _catalog_json(rows: list[tuple[str, float, float]]) -> str:
    """What a user sends back: the image's catalogue as ApiCatalog, edited with add_row."""
    from oda_api.data_products import ApiCatalog

    from mmoda_ext.products.isgri import catalog_table
    from mmoda_ext.server.encode import catalog_dict

    first = {"name": "GX 1+4", "ra": 263.0, "dec": -24.7, "significance": 9.0, "new": False,
             "err_rad": 0.01, "flux": 1.0, "flux_err": 0.1}
    cat = ApiCatalog(catalog_dict(catalog_table([first])), name="dispatcher_catalog")
    for i, (name, ra, dec) in enumerate(rows):
        cat.table.add_row((i + 1, name, 10.0, ra, dec, 0, 2, 0, 0.0))
    cat.table.remove_row(0)  # the user drops a source of the image's catalogue
    return cat.get_api_dictionary()


BLANK = ("Blank J0543+2300", 85.8, 23.0)  # 2.2° from the Crab: in the field, no source


def test_selected_catalog_drives_spectra_one_triple_per_source(setup):
    cat = _catalog_json([("Crab", RA, DEC), BLANK])
    ps = run(setup, "jemx_spectrum", selected_catalog=cat)
    kinds = [(p.kind, p.meta["src_name"]) for p in ps.products]
    assert kinds == [(k, n) for n in ("Crab", BLANK[0]) for k in ("jemx_spectrum", "jemx_arf", "jemx_rmf")]
    crab, blank = (Table.read(ps.products[i].fits, hdu=1) for i in (0, 3))
    assert fits.getheader(ps.products[3].fits, 1)["NAME"] == BLANK[0]
    truth = jemx_response.expected_pha_rate(setup[0].sky.get("Crab").photon_flux(jemx_response.ENERGY_EDGES, 4300.0))
    assert np.sum(crab["RATE"]) == pytest.approx(truth.sum(), rel=0.03)
    # the blank position: consistent with no flux
    assert abs(np.sum(blank["RATE"])) < 4 * np.sqrt(np.sum(blank["STAT_ERR"] ** 2))


def test_selected_catalog_drives_light_curves(setup):
    cat = _catalog_json([(BLANK[0], BLANK[1], BLANK[2]), ("Crab", RA, DEC)])
    ps = run(setup, "jemx_lc", time_bin=1000, selected_catalog=cat)
    assert [p.meta["src_name"] for p in ps.products] == [BLANK[0], "Crab"]
    for p in ps.products:
        h = fits.getheader(p.fits, "JMX2-SRC.-LCR")
        assert h["NAME"] == p.meta["src_name"]
        names = Table.read(p.fits, hdu=1).colnames
        assert names == ["TIME", "RATE", "ERROR", "BRATE", "BERROR", "BARYTIME", "FRACEXP", "TIMEDEL"]
    lc = Table.read(ps.products[1].fits, hdu=1)
    # BARYTIME - TIME: Roemer delay towards the Crab in October (≈ +5 min), never more than 8.4 min
    delay = (np.asarray(lc["BARYTIME"]) - np.asarray(lc["TIME"])) * 86400
    assert np.all(np.abs(delay) < 510) and np.ptp(delay) < 5


def test_default_target_outside_the_field_gives_the_catalogue_sources(setup):
    """MMODA's default target (1E 1740.7-2942) with Crab windows: the Crab's products, no crash."""
    archive, wins, root = setup
    raw = {"scw_list": ",".join(w.scw_id for w in wins)}  # RA/DEC/src_name left at the defaults
    ps = engine.execute("jemx", "jemx_spectrum", raw, SerialContext(archive, root / "default-target"))
    names = {p.meta["src_name"] for p in ps.products}
    assert "Crab" in names and "1E 1740.7-2942" not in names
    ps = engine.execute("jemx", "jemx_lc", {**raw, "time_bin": 2000}, SerialContext(archive, root / "default-lc"))
    assert "Crab" in {p.meta["src_name"] for p in ps.products}


def test_selected_catalog_outside_the_field_names_the_parameter(setup):
    cat = _catalog_json([("Far away", 10.0, -60.0)])
    with pytest.raises(NoDataError) as err:
        run(setup, "jemx_spectrum", selected_catalog=cat)
    assert err.value.parameter == "selected_catalog" and "Far away" in err.value.message


def test_light_curve_bins_are_counted_over_the_windows_used(setup):
    """60 s bins, two windows 171 days apart: 120 bins, not 246 000 over T1–T2."""
    archive, wins, root = setup
    later = [w for w in archive.index.select(RA, DEC, 4.0, Time("2012-03-01"), Time("2012-04-01"), None)
             if w.revolution == 1157][:1]
    raw = {"src_name": "Crab", "RA": RA, "DEC": DEC, "time_bin": 60,
           "scw_list": ",".join(w.scw_id for w in [wins[0], *later])}
    ps = engine.execute("jemx", "jemx_lc", raw, SerialContext(archive, root / "sparse"))
    lc = Table.read(ps.find("jemx_lc")[0].fits, hdu=1)
    assert 2 * 25 < len(lc) < 2 * 70
    assert (lc["TIME"].max() - lc["TIME"].min()) > 150


def test_scw_list_alone_defines_the_field(setup):
    archive, wins, root = setup
    ps = engine.execute("jemx", "jemx_image", {"scw_list": ",".join(w.scw_id for w in wins)},
                        SerialContext(archive, root / "scw-only"))
    assert "Crab" in list(Table.read(ps.find("jemx_catalog")[0].fits, hdu=1)["src_names"])
    assert any("centred on their mean pointing" in m for m in ps.messages)
