"""Science-window ids, the ScienceWindow record and the INTEGRAL time conventions."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.time import Time

from mmoda_ext.archive.fitsutil import MJDREF, ijd_to_time, standard_header, time_to_ijd, to_ijd
from mmoda_ext.archive.scw import ScienceWindow, parse_scw_id, scw_key
from mmoda_ext.errors import ParameterError


def test_parse_id():
    assert parse_scw_id("066500220010.001") == (665, 22, 1, 0, 1)
    assert scw_key("066500220010.001") == 66500220010
    for bad in ["66500220010.001", "066500220010", "0665002200101.001", "abcd00220010.001", ""]:
        with pytest.raises(ParameterError) as err:
            parse_scw_id(bad)
        assert err.value.parameter == "scw_list"


def test_window_properties():
    w = ScienceWindow("066500220010.001", 665, 83.6, 22.0, 10.0, 3000.0, 3000.025, 2100.0, 0.8, False, "Crab")
    assert w.exposure == pytest.approx(1680.0)
    assert w.telapse == pytest.approx(2160.0)
    assert w.kind == "pointing" and w.is_pointing
    assert w.t_start.scale == "tt" and w.t_start.mjd == pytest.approx(3000.0 + MJDREF)
    assert w.seed == ScienceWindow(**w.to_dict()).seed  # stable
    other = ScienceWindow(**{**w.to_dict(), "scw_id": "066500230010.001"})
    assert other.seed != w.seed
    assert 0 <= w.seed < 2**63


def test_ijd_round_trip():
    t = Time("2016-02-01T00:00:00", scale="utc")
    ijd = time_to_ijd(t)
    # IJD is TT days since 2000-01-01T00:00 TT; UTC lags TT by 68.184 s in 2016
    assert ijd == pytest.approx(Time("2016-02-01").mjd - MJDREF + 68.184 / 86400, abs=1e-9)
    assert abs((ijd_to_time(ijd) - t).sec) < 1e-6
    assert to_ijd("2016-02-01T00:00:00") == pytest.approx(ijd)
    assert to_ijd(ijd) == ijd
    arr = time_to_ijd(Time(["2003-01-01", "2020-01-01"]))
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)


def test_standard_header():
    h = standard_header("isgri", tstart=3000.0, tstop=3000.025, revol=665, swid="066500220010.001",
                        extname="ISGR-EVTS-ALL", deadc=(0.8, "dead-time correction"))
    assert h["TELESCOP"] == "INTEGRAL" and h["INSTRUME"] == "ISGRI"
    assert h["TIMESYS"] == "TT" and h["MJDREF"] == 51544.0 and h["TIMEUNIT"] == "d"
    assert h["TSTART"] == 3000.0 and h["REVOL"] == 665 and h["SWID"] == "066500220010.001"
    assert h["TELAPSE"] == pytest.approx(2160.0)
    assert h["DEADC"] == 0.8


@pytest.mark.parametrize("ontime", [2159.0, 2100.0, 1500.0])
def test_gti_totals_ontime(ontime):
    w = ScienceWindow("066500220010.001", 665, 83.6, 22.0, 10.0, 3000.0, 3000.025, ontime, 0.8, False, "Crab")
    gti = w.gti
    assert gti[0, 0] >= w.tstart and gti[-1, 1] <= w.tstop
    assert np.all(gti[:, 1] > gti[:, 0]) and np.all(gti[1:, 0] >= gti[:-1, 1])
    assert (gti[:, 1] - gti[:, 0]).sum() * 86400 == pytest.approx(ontime, abs=1e-3)
    assert np.array_equal(gti, w.gti)
