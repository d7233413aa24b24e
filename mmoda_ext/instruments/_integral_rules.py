"""Rules shared by every INTEGRAL product (ISGRI and JEM-X): OSA versions and private data.

OSA versions (``instruments.md`` §1.6): OSA10.2 and OSA11.2 cover the whole mission; OSA11.0's
calibration starts at revolution 1626 (2015-12-26T02:03:13), earlier data are refused with a
message naming the versions that cover them; OSA11.2-beta (whole mission, new calibration) is
for callers with the restricted-OSA right. Count-rate scales: OSA10.2 is the archive's scale,
every OSA11.x uses the OSA11 scale of :func:`..science.ibis.osa_scale`.

Private data: private science windows are used only with ``integral_data_rights='all-private'``
*and* the private-data right; such a request without the right is refused
(:func:`._integral_select.check_common`), and a public request says how many private windows it
left out and why.
"""

from __future__ import annotations

from typing import Any

from ..access.rights import Rights
from ..archive.fitsutil import ijd_to_time, to_ijd
from ..archive.schedule import ANCHOR_IJD, ANCHOR_REV, END_IJD, FIRST_REV, rev_start
from ..archive.scw import parse_scw_id
from ..errors import AccessError, NoDataError, ParameterError
from .params import to_time

__all__ = ["OSA11_FIRST_REV", "check_mission_window", "check_osa_version", "check_osa_windows", "private_left_out",
           "private_message"]

OSA11_FIRST_REV = ANCHOR_REV  # 1626
_START = ijd_to_time(ANCHOR_IJD).utc.isot[:19]
_OTHERS = ("Use osa_version='OSA11.2' (whole mission, the default) or 'OSA10.2'; 'OSA11.2-beta' "
           "(whole mission, new calibration) needs the restricted-OSA right")


def _osa11_refusal(what: str, value: Any, parameter: str) -> ParameterError:
    return ParameterError(
        parameter, value,
        f"with osa_version='OSA11.0', data from revolution {OSA11_FIRST_REV} "
        f"({_START} UTC) on",
        f"OSA11.0's ISGRI/JEM-X calibration exists only from revolution {OSA11_FIRST_REV}; "
        f"{what}. {_OTHERS}",
    )


def mission_window() -> tuple[str, str]:
    """First and last day of INTEGRAL science data (revolution 26 to the end of operations)."""
    return (ijd_to_time(float(rev_start(FIRST_REV))).utc.isot[:10],
            ijd_to_time(END_IJD).utc.isot[:10])


def check_mission_window(params: dict[str, Any], instrument: str = "INTEGRAL") -> None:
    """Refuse, before any work, a time range entirely outside the mission, naming the mission's window."""
    if params.get("scw_list") or params.get("T1") is None or params.get("T2") is None:
        return
    i1, i2 = to_ijd(to_time(params["T1"])), to_ijd(to_time(params["T2"]))
    first, last = mission_window()
    if i1 >= END_IJD or i2 <= float(rev_start(FIRST_REV)):
        late = i1 >= END_IJD
        side = f"INTEGRAL science data end on {last}" if late else f"INTEGRAL science data start on {first}"
        raise NoDataError(
            f"No {instrument} data between T1 = {params['T1']} and T2 = {params['T2']}: {side} "
            f"(the mission's data cover {first} to {last}). Choose T1 and T2 within that window.",
            parameter="T1" if late else "T2", value=params["T1"] if late else params["T2"])


def check_osa_version(params: dict[str, Any], rights: Rights) -> None:
    """Refuse, before any work, an OSA version the caller may not use or the data cannot take."""
    version = params.get("osa_version")
    if version == "OSA11.2-beta" and not rights.restricted_osa:
        raise AccessError(
            "osa_version='OSA11.2-beta' (new calibration, whole mission) is restricted to the "
            f"private tier: your tier '{rights.tier}' does not have the restricted-OSA right. Use "
            "'OSA11.2' (the released calibration). " + rights.how_to_get("restricted_osa"),
            parameter="osa_version", value=version,
        )
    if version != "OSA11.0":
        return
    if params.get("scw_list"):
        early = [s for s in params["scw_list"] if parse_scw_id(s)[0] < OSA11_FIRST_REV]
        if early:
            raise _osa11_refusal(f"{len(early)} science window(s) are earlier, e.g. {early[0]}",
                                 early[0], "scw_list")
        return
    t1 = params.get("T1")
    if t1 is not None and to_ijd(to_time(t1)) < ANCHOR_IJD:
        raise _osa11_refusal(f"T1 = {t1} is earlier", t1, "T1")


def check_osa_windows(params: dict[str, Any], windows: list[Any]) -> None:
    """The run-time form of :func:`check_osa_version` on the selected windows."""
    if params.get("osa_version") != "OSA11.0":
        return
    early = [w for w in windows if w.revolution < OSA11_FIRST_REV]
    if early:
        raise _osa11_refusal(f"{len(early)} selected science window(s) are earlier, e.g. "
                             f"{early[0].scw_id}", params.get("T1"), "T1")


def private_left_out(params: dict[str, Any], archive: Any, include_private: bool) -> int:
    """How many private windows the automatic selection of a request leaves out."""
    if include_private or params.get("scw_list"):
        return 0
    args = (params["RA"], params["DEC"], params["radius"], to_time(params["T1"]),
            to_time(params["T2"]))
    return int(archive.index.cone(*args, True).size - archive.index.cone(*args, False).size)


def private_message(n: int, ids: list[str] | None = None) -> str:
    """Why private windows were left out and how to use them."""
    listed = f": {', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}" if ids else ""
    return (f"{n} private science window(s) left out{listed}. Private data are used only with "
            "integral_data_rights='all-private' by accounts with the private-data right (role "
            "integral-private-qla).")
