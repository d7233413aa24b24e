"""OSA versions (validity, restricted tier, rate scale) and private science windows, ISGRI products."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from mmoda_ext import engine
from mmoda_ext.access.rights import Rights
from mmoda_ext.errors import AccessError, NoDataError, ParameterError
from mmoda_ext.science import ibis

CRAB = dict(src_name="Crab", RA=83.633, DEC=22.015)
LC = dict(CRAB, T1="2016-02-05T08:30", T2="2016-02-05T10:30", time_bin=20000, E1_keV=20, E2_keV=40)
#: rev 2716: public windows on 2024-02-27, private ones (last 12 months) from 2024-02-28
PRIV = dict(CRAB, T1="2024-02-27T21:00", T2="2024-02-28T03:00", time_bin=20000)
PRIVATE = Rights(user="qla", tier="private", max_scw=500, private_data=True, restricted_osa=True)


@pytest.fixture(scope="module")
def archive(sky_archive):
    return sky_archive("osa-archive")


def _prepare(archive, product="isgri_lc", rights=None, **raw):
    return engine.prepare("isgri", product, raw, rights or Rights.local(), archive)


@pytest.mark.parametrize("product", ["isgri_lc", "isgri_spectrum", "spectral_fit", "isgri_image"])
def test_osa11_0_before_revolution_1626_refused(archive, product):
    with pytest.raises(ParameterError) as err:
        _prepare(archive, product, **dict(LC if product == "isgri_lc" else CRAB,
                                          T1="2015-06-01", T2="2015-07-01", osa_version="OSA11.0"))
    msg = err.value.message
    assert "1626" in msg and "OSA11.2-beta" in msg and "OSA11.2" in msg and err.value.parameter == "T1"


def test_osa11_0_scw_list_before_1626_refused_after_accepted(archive):
    with pytest.raises(ParameterError) as err:
        _prepare(archive, **dict(LC, scw_list="066500220010.001", osa_version="OSA11.0"))
    assert err.value.parameter == "scw_list" and "066500220010.001" in err.value.message
    _prepare(archive, **dict(LC, osa_version="OSA11.0"))  # 2016 (rev 1641): fine


def test_osa11_2_beta_needs_restricted_rights(archive):
    with pytest.raises(AccessError) as err:
        _prepare(archive, **dict(LC, osa_version="OSA11.2-beta"))
    assert err.value.status == 403 and "restricted" in err.value.message
    _prepare(archive, rights=PRIVATE, **dict(LC, osa_version="OSA11.2-beta"))


def test_rate_scale_per_osa_version(run):
    rates = {}
    for version in ("OSA10.2", "OSA11.0", "OSA11.2", "OSA11.2-beta"):
        res = run("isgri_lc", rights=PRIVATE, osa_version=version, **LC)
        (crab,) = [p for p in res.products if p.meta["src_name"] == "Crab"]
        rates[version] = fits.getdata(crab.fits, "ISGR-SRC.-LCR")["RATE"]
        assert fits.getheader(crab.fits, "ISGR-SRC.-LCR")["OSA_VERS"] == version
    assert 120 < np.mean(rates["OSA10.2"]) < 150  # Crab 136.3 cts/s 20–40 keV (OSA10.2)
    for v in ("OSA11.0", "OSA11.2", "OSA11.2-beta"):
        np.testing.assert_allclose(rates[v] / rates["OSA10.2"], 209.8 / 136.3, rtol=1e-5)
    assert ibis.osa_scale("OSA11.2", 20, 40) == pytest.approx(209.8 / 136.3, rel=0.01)


def test_private_windows_left_out_of_a_public_request(run, archive):
    res = run("isgri_lc", **PRIV)
    ids = res.meta["scw_list"]
    n_priv = sum(w.private for w in archive.index.select(
        83.633, 22.015, 15.0, *_t(PRIV), None, include_private=True))
    assert n_priv >= 1 and ids
    assert not any(w.private for w in archive.index.get_many(ids))
    msg = [m for m in res.messages if "private" in m]
    assert msg and msg[0].startswith(f"{n_priv} private science window(s) left out")
    assert "all-private" in msg[0]


def test_private_request_without_the_right_refused(archive):
    with pytest.raises(AccessError) as err:
        _prepare(archive, **dict(PRIV, integral_data_rights="all-private"))
    assert "private-data right" in err.value.message and err.value.status == 403


def test_private_windows_used_with_the_right(run, archive):
    res = run("isgri_lc", rights=PRIVATE, integral_data_rights="all-private", **PRIV)
    ws = archive.index.get_many(res.meta["scw_list"])
    assert any(w.private for w in ws) and any(not w.private for w in ws)
    assert not any("private" in m for m in res.messages)


def test_private_scw_list_in_public_request(run, archive):
    ws = archive.index.select(83.633, 22.015, 15.0, *_t(PRIV), None, include_private=True)
    pub = [w.scw_id for w in ws if not w.private][:1]
    priv = [w.scw_id for w in ws if w.private][:1]
    res = run("isgri_lc", **dict(LC, scw_list=",".join(pub + priv)))
    assert res.meta["scw_list"] == pub
    assert any(m.startswith("1 private science window(s) left out: " + priv[0]) for m in res.messages)
    with pytest.raises(NoDataError):
        run("isgri_lc", **dict(LC, scw_list=priv[0]))


def _t(raw):
    from astropy.time import Time

    return Time(raw["T1"]), Time(raw["T2"])


@pytest.mark.parametrize("product,extra,kind", [
    ("lc", ["--time-bin", "20000"], "isgri_lc_Crab.fits"),
    ("spectrum", [], "isgri_spectrum_Crab_rmf.fits"),
    ("spectral_fit", ["--xspec-model", "powerlaw"], "spectral_fit_Crab_powerlaw.fits"),
])
def test_mmoda_run_cli(archive, tmp_path, product, extra, kind):
    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "mmoda_ext.cli", "run", "isgri", product, "--archive",
           str(archive.root), "--out", str(tmp_path), "--workers", "1", "--no-progress",
           "--src-name", "Crab", "--T1", LC["T1"], "--T2", LC["T2"], "--max-pointings", "2",
           "--osa-version", "OSA10.2", *extra]
    env = dict(os.environ, MMODA_OFFLINE="1", MMODA_SKY_EXTRA="")
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / kind).is_file() and f"wrote {tmp_path / kind}" in out.stdout
    with fits.open(tmp_path / kind) as h:
        assert len(h) >= 2
