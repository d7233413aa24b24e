"""JEM-X shares ISGRI's OSA-version and private-data rules (one implementation, both instruments)."""

from __future__ import annotations

import pytest

from mmoda_ext import engine
from mmoda_ext.access.rights import Rights
from mmoda_ext.errors import AccessError, ParameterError

CRAB = dict(src_name="Crab", RA=83.633, DEC=22.015)
#: rev 2716: public windows on 2024-02-27, private ones (last 12 months) from 2024-02-28
PRIV = dict(CRAB, T1="2024-02-27T21:00", T2="2024-02-28T03:00")
PRIVATE = Rights(user="qla", tier="private", max_scw=500, private_data=True, restricted_osa=True)


@pytest.fixture(scope="module")
def archive(sky_archive):
    return sky_archive("jemx-rules")


def prepare(archive, rights=None, **raw):
    return engine.prepare("jemx", "jemx_image", raw, rights or Rights.local(), archive)


def test_osa11_0_before_revolution_1626_refused(archive):
    with pytest.raises(ParameterError) as err:
        prepare(archive, **dict(CRAB, T1="2003-03-01", T2="2003-04-01", osa_version="OSA11.0"))
    assert "1626" in err.value.message and "OSA11.2-beta" in err.value.message


def test_osa11_2_beta_needs_restricted_rights(archive):
    raw = dict(CRAB, T1="2016-02-01", T2="2016-03-01", osa_version="OSA11.2-beta")
    with pytest.raises(AccessError) as err:
        prepare(archive, **raw)
    assert err.value.status == 403 and "restricted" in err.value.message
    prepare(archive, rights=PRIVATE, **raw)


def test_private_data_refused_without_the_right_used_with_it(archive):
    with pytest.raises(AccessError) as err:
        prepare(archive, **dict(PRIV, integral_data_rights="all-private"))
    assert err.value.status == 403 and "private" in err.value.message
    prepare(archive, rights=PRIVATE, **dict(PRIV, integral_data_rights="all-private"))
