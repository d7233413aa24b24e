"""The sky model: spectra integrated exactly, variability, extension files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from scipy.integrate import quad

from mmoda_ext.archive.fitsutil import to_ijd
from mmoda_ext.archive.sky import BUILTIN_SKY, CRAB_PHOTON_FLUX_20_40, SkyModel, SkySource

T2016 = to_ijd("2016-02-15")


@pytest.fixture(scope="module")
def sky() -> SkyModel:
    return SkyModel.from_files()


def test_catalogue_content(sky):
    names = {s.name for s in sky}
    for required in ["Crab", "Cyg X-1", "Cyg X-3", "GRS 1915+105", "4U 1700-377", "Vela X-1", "GX 301-2",
                     "OAO 1657-415", "GX 1+4", "1E 1740.7-2942", "GX 354-0", "GX 349+2", "GX 339-4",
                     "Sco X-1", "Her X-1", "Cen A", "NGC 4151", "3C 273", "XTE J1550-564",
                     "GX 5-1", "GX 17+2", "GX 340+0", "V404 Cyg"]:
        assert required in names
    ids = [s.id for s in sky]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids)
    v404 = sky.get("V404 Cyg")
    assert (v404.ra, v404.dec) == (306.016, 33.867)
    assert all(s.mcrab > 0 for s in sky)


@pytest.mark.parametrize("name", ["Crab", "Cyg X-1", "Sco X-1", "Cyg X-3", "V404 Cyg", "Her X-1"])
def test_photon_flux_integrates_exactly(sky, name):
    src = sky.get(name)
    edges = np.array([3.0, 10.0, 15.0, 20.0, 20.5, 40.0, 100.0, 170.0, 180.0, 500.0, 1000.0])
    got = src.photon_flux(edges, T2016)
    fac = src.factor(T2016)
    for i in range(edges.size - 1):
        kinks = [k for k in src._kinks if edges[i] < k < edges[i + 1]]
        ref = quad(lambda e: src.dnde(e) * fac, edges[i], edges[i + 1], points=kinks or None,
                   epsabs=0, epsrel=1e-12, limit=200)[0]
        assert got[i] == pytest.approx(ref, rel=1e-8)
    # bins add up: one wide bin equals the sum of its parts
    assert src.photon_flux(edges[[0, -1]], T2016)[0] == pytest.approx(got.sum(), rel=1e-10)


def test_photon_flux_vectorised_in_time(sky):
    src = sky.get("Cyg X-1")
    t = np.linspace(T2016, T2016 + 10, 7)
    edges = np.array([20.0, 40.0, 80.0])
    many = src.photon_flux(edges, t)
    assert many.shape == (7, 2)
    for i, ti in enumerate(t):
        assert np.allclose(many[i], src.photon_flux(edges, float(ti)), rtol=1e-12)
    assert np.std(many[:, 0]) > 0  # flickers


def test_crab_normalisation(sky):
    crab = sky.get("crab")
    # Roques & Jourdain (2018) at 100 keV
    assert crab.dnde(100.0) == pytest.approx(7.417e-4 * np.exp(-100 / 500), rel=1e-12)
    ef = crab.energy_flux(20, 40, T2016)
    assert ef == pytest.approx(7.1e-9, rel=0.10)  # OSA10 normalisation (instruments.md §1.5)
    assert 7.1e-9 < ef < 8.3e-9  # between the OSA10.2 and OSA11 normalisations
    ref = quad(lambda e: e * crab.dnde(e), 20, 40, epsrel=1e-12)[0] * 1.602176634e-9
    assert ef == pytest.approx(ref, rel=1e-9)
    assert crab.mcrab_20_40(T2016) == pytest.approx(1000.0)
    assert crab.photon_flux(np.array([20.0, 40.0]), T2016)[0] == pytest.approx(CRAB_PHOTON_FLUX_20_40)
    # steady
    assert crab.mcrab_20_40(to_ijd("2003-03-01")) == pytest.approx(crab.mcrab_20_40(to_ijd("2024-03-01")))


def test_mcrab_normalisation_of_other_sources(sky):
    for name in ("Cyg X-3", "3C 273"):
        s = sky.get(name)
        ratio = s.photon_flux(np.array([20.0, 40.0]), T2016)[0] / CRAB_PHOTON_FLUX_20_40
        assert 1000 * ratio == pytest.approx(s.mcrab_20_40(T2016), rel=1e-9)
    # Sco X-1: ~0.6 Crab at 20-40 keV but ~10 Crab at 2-10 keV (JEM-X)
    sco, crab = sky.get("Sco X-1"), sky.get("Crab")
    soft = sco.photon_flux(np.array([2.0, 10.0]), T2016)[0] / crab.photon_flux(np.array([2.0, 10.0]), T2016)[0]
    assert 8 < soft / sco.factor(T2016) < 16


def test_v404_cyg_outburst_june_2015(sky):
    v = sky.get("V404 Cygni")
    before = v.mcrab_20_40(np.array([to_ijd(d) for d in ("2015-05-01", "2015-06-10", "2015-06-14")]))
    assert np.all(before < 1.0)
    june = np.linspace(to_ijd("2015-06-15"), to_ijd("2015-07-01"), 2000)
    lev = v.mcrab_20_40(june)
    assert lev.max() > 10_000  # tens of Crab
    peak = june[np.argmax(lev)]
    assert to_ijd("2015-06-20") < peak < to_ijd("2015-06-28")
    assert v.mcrab_20_40(to_ijd("2015-08-01")) < 1.0
    assert v.var.kind == "outburst"


def test_other_variability(sky):
    gx339 = sky.get("GX 339-4")
    assert gx339.mcrab_20_40(to_ijd("2010-03-25")) > 300
    assert gx339.mcrab_20_40(to_ijd("2012-06-01")) < 5
    herx1 = sky.get("Her X-1")
    t = np.linspace(to_ijd("2016-01-01"), to_ijd("2016-01-01") + 70, 5000)
    lev = herx1.mcrab_20_40(t)
    assert lev.max() > 50 and np.median(lev) < 10  # 35 d cycle: main-on, short-on, off
    vela = sky.get("Vela X-1")
    t = np.linspace(T2016, T2016 + 9, 3000)
    eclipsed = vela.mcrab_20_40(t) < 0.1 * vela.mcrab
    assert 0.1 < eclipsed.mean() < 0.3  # 8.96 d orbit, ~1.7 d eclipse
    cyg = sky.get("Cyg X-1")
    assert cyg.var.kind == "states"
    assert sky.get("Crab").var.kind == "steady"


def test_near(sky):
    near = sky.near(266.0, -29.0, 6.0)
    target = SkySource(0, "target", 266.0, -29.0).unit_vector
    sep = [float(np.degrees(np.arccos(np.clip(src.unit_vector @ target, -1, 1)))) for src in near]
    assert sep == sorted(sep) and max(sep) <= 6.0  # nearest first, all inside
    assert [s.name for s in near[:3]] == ["GRS 1741.9-2853", "IGR J17456-2901", "1E 1743.1-2843"]
    assert {"1E 1740.7-2942", "1A 1742-294", "GX 1+4", "GX 354-0", "GX 5-1", "GX 3+1", "H 1743-322"} <= {
        s.name for s in near}
    assert sky.near(0.0, -89.0, 1.0) == []


def test_extension_file(tmp_path):
    builtin = Table.read(BUILTIN_SKY, format="ascii.ecsv")
    extra = builtin[:0].copy()
    extra.add_row({"id": 1001, "name": "Injected J1709-3700", "aliases": "Injected 1709", "ra": 257.282,
                   "dec": -37.0, "kind": "LMXB-BH-transient", "mcrab": 120.0, "spectrum": "cutoffpl",
                   "K": np.nan, "epivot": 100.0, "gamma1": 1.7, "gamma2": np.nan, "ebreak": np.nan,
                   "ecut": 150.0, "variability": ""})
    crab = builtin[builtin["name"] == "Crab"][0]
    extra.add_row({**{c: crab[c] for c in builtin.colnames}, "mcrab": 1000.0, "K": 8e-4})
    path = tmp_path / "extra.ecsv"
    extra.write(path, format="ascii.ecsv")
    model = SkyModel.from_files(extra=path)
    base = SkyModel.from_files()
    assert len(model) == len(base) + 1
    new = model.get("injected 1709")
    assert new.id == 1001 and new.mcrab_20_40(T2016) == pytest.approx(120.0)
    assert model.get("Crab").K == 8e-4  # same name replaces
    assert model.digest != base.digest
    assert path in model.files
    # minimal extension: only the required columns
    Table(rows=[(2001, "Test Source", 10.0, 20.0, 5.0)], names=["id", "name", "ra", "dec", "mcrab"]).write(
        tmp_path / "mini.ecsv", format="ascii.ecsv")
    mini = SkyModel.from_files(extra=tmp_path / "mini.ecsv").get("testsource")
    assert isinstance(mini, SkySource) and mini.spectrum == "pl"
    assert mini.mcrab_20_40(T2016) == pytest.approx(5.0)


def test_bad_sources():
    with pytest.raises(ValueError, match="spectrum"):
        SkySource(1, "x", 0, 0, spectrum="blackbody")
    with pytest.raises(ValueError, match="ecut"):
        SkySource(1, "x", 0, 0, spectrum="cutoffpl")
    with pytest.raises(ValueError, match="variability"):
        SkySource(1, "x", 0, 0, variability='{"wobble": 1}')
    with pytest.raises(ValueError, match="duplicate"):
        SkyModel([SkySource(1, "a", 0, 0), SkySource(1, "b", 0, 0)])


# -- the wider sky (issue 9 item 17) ------------------------------------------------------------

def test_wider_sky_counts_and_provenance(sky):
    assert len(sky) >= 200
    assert all(s.ref for s in sky)  # every row says where it comes from
    recalled = [s for s in sky if "[R]" in s.ref]
    assert len(recalled) >= 190 and "[S]" in sky.get("Crab").ref
    meta = " ".join(Table.read(BUILTIN_SKY, format="ascii.ecsv").meta["comments"])
    assert "[R]" in meta and "Bird et al. 2016" in meta
    kinds = {s.kind.split("-")[0] for s in sky}
    assert {"LMXB", "HMXB", "Seyfert", "blazar", "magnetar", "PWN", "cluster", "CV"} <= kinds


def test_names_unique_and_sources_resolvable(sky):
    seen: dict[str, str] = {}
    for s in sky:
        for n in (s.name, *s.aliases):
            key = n.replace(" ", "").lower()
            assert seen.setdefault(key, s.name) == s.name, f"{n} names both {seen[key]} and {s.name}"
    xyz = np.array([s.unit_vector for s in sky])
    cos = xyz @ xyz.T
    np.fill_diagonal(cos, -1.0)
    closest = np.degrees(np.arccos(np.clip(cos.max(), -1, 1))) * 60
    assert closest > 9.0  # no pair closer than ~0.75 ISGRI PSF: the catalogue names stay unambiguous


@pytest.mark.parametrize("name, ra, dec", [
    ("3C 279", 194.0465, -5.7893), ("NGC 2110", 88.0474, -7.4562), ("A 0535+26", 84.7274, 26.3158),
    ("MAXI J1820+070", 275.0914, 7.1854), ("Swift J1727.8-1613", 261.9304, -16.2049),
    ("GRO J1655-40", 253.5006, -39.8458), ("Aql X-1", 287.8169, 0.5850), ("Cyg X-2", 326.1715, 38.3214),
    ("Cen X-3", 170.3129, -60.6239), ("Mrk 421", 166.1138, 38.2088),
])
def test_known_targets(sky, name, ra, dec):
    s = sky.get(name)
    assert abs(s.dec - dec) * 60 < 0.2 and abs(s.ra - ra) * np.cos(np.radians(dec)) * 60 < 0.2


def test_spectral_shapes_by_class(sky):
    for s in sky:
        if s.kind.startswith("Seyfert"):
            assert 1.5 <= s.gamma1 <= 2.0, s
        elif s.kind.startswith("blazar"):
            assert s.spectrum == "pl" and 1.3 <= s.gamma1 <= 2.6, s
        elif s.kind.startswith("HMXB-pulsar"):
            assert s.spectrum == "cutoffpl" and s.gamma1 <= 1.5 and 10 <= s.ecut <= 60, s
        elif s.kind.startswith("LMXB-BH"):  # hard, or a steep power law (GRS 1915+105)
            assert (s.spectrum == "cutoffpl" and s.ecut >= 80) or (s.spectrum == "pl" and s.gamma1 >= 2.5), s


@pytest.mark.parametrize("name, during, level, quiet", [
    ("MAXI J1820+070", "2018-03-25", 3000.0, "2017-06-01"),
    ("Swift J1727.8-1613", "2023-09-01", 3000.0, "2022-06-01"),
    ("1A 0535+262", "2020-11-19", 5000.0, "2019-06-01"),
    ("3C 279", "2015-06-16", 15.0, "2014-06-01"),
    ("GRO J1655-40", "2005-03-12", 500.0, "2004-06-01"),
    ("Aql X-1", "2011-11-05", 150.0, "2012-06-01"),
    ("Swift J0243.6+6124", "2017-10-29", 3000.0, "2016-06-01"),
    ("XTE J1752-223", "2009-11-20", 300.0, "2008-06-01"),
])
def test_known_outbursts(sky, name, during, level, quiet):
    s = sky.get(name)
    assert s.var.kind == "outburst"
    assert s.mcrab_20_40(to_ijd(during)) > level
    assert s.mcrab_20_40(to_ijd(quiet)) < 5.0


def test_states_switch_off(sky):
    exo = sky.get("EXO 0748-676")  # turned off in September 2008
    assert exo.mcrab_20_40(to_ijd("2005-01-01")) > 10 and exo.mcrab_20_40(to_ijd("2010-01-01")) < 1
    swj = sky.get("Swift J1753.5-0127")  # 2005-2016 outburst
    assert swj.mcrab_20_40(to_ijd("2004-01-01")) < 1 < 50 < swj.mcrab_20_40(to_ijd("2010-01-01"))
