"""Science-window selection shared by every INTEGRAL product (ISGRI and JEM-X).

:func:`check_common` refuses a request before any work (times, band, tier limits, private data,
OSA version); :func:`select_windows` picks the windows of a request and says what it left out
(private windows, a ``max_pointings`` subset, a position the simulated sky does not cover).
The per-window tasks (:mod:`._isgri_window`) and the products (:mod:`.isgri`,
:mod:`._isgri_spectral`, :mod:`.jemx`) build on it; it imports none of them.
"""

from __future__ import annotations

from typing import Any

from ..access.rights import Rights
from ..errors import AccessError, NoDataError, ParameterError
from ._catalog import MATCH_RADIUS_DEG
from ._integral_rules import (
    check_mission_window,
    check_osa_version,
    private_left_out,
    private_message,
)
from .params import to_time

__all__ = ["check_common", "Selection", "used_of", "windows_label", "select_windows", "sky_model_note"]


def check_common(params: dict[str, Any], rights: Rights) -> None:
    """Cross-field checks of every ISGRI and JEM-X product, before any work."""
    t1, t2 = to_time(params["T1"]), to_time(params["T2"])
    if t1 >= t2:
        raise ParameterError("T1", params["T1"], f"a time before T2 = {params['T2']}", "T1 is not before T2")
    if params["E1_keV"] >= params["E2_keV"]:
        raise ParameterError("E1_keV", params["E1_keV"], f"a value below E2_keV = {params['E2_keV']:g} keV",
                             "E1_keV must be smaller than E2_keV")
    n_req = len(params["scw_list"]) if params.get("scw_list") else params["max_pointings"]
    what = "scw_list" if params.get("scw_list") else "max_pointings"
    check_mission_window(params)
    rights.check_scw_count(n_req, what)  # the message comes from the caller's tier
    if params.get("integral_data_rights") == "all-private" and not rights.private_data:
        raise AccessError(
            "integral_data_rights='all-private' needs the private-data right, which your tier "
            f"'{rights.tier}' does not have. Use 'public'. {rights.how_to_get('private_data')}",
            parameter="integral_data_rights", value="all-private",
        )
    check_osa_version(params, rights)  # OSA11.0 from rev 1626, OSA11.2-beta restricted


class Selection(list):
    """Selected science windows that remember how many matched the request (before max_pointings)."""

    def __init__(self, windows: Any = (), matched: int | None = None) -> None:
        super().__init__(windows)
        self.matched = len(self) if matched is None else int(matched)


def used_of(windows: list[Any]) -> str:
    """``"50 of 144 science windows"``: every summary line says how many were used of how many matched."""
    return f"{len(windows)} of {getattr(windows, 'matched', len(windows))} science windows"


def windows_label(archive: Any, windows: list[Any], instrument: str = "isgri") -> str:
    """Progress label naming the stage: how many windows' data must be generated first."""
    if not getattr(archive, "local_data", False) or not hasattr(archive, "path_for"):
        return "science windows"
    missing = sum(not archive.path_for(instrument, w).exists() for w in windows)
    return f"{missing} to generate · science windows" if missing else "data cached · science windows"


def subset_message(n: int, matched: int, params: dict[str, Any], rights: Rights) -> str:
    """What ``max_pointings`` left out and how to use every matching window."""
    text = (f"Used {n} of {matched} matching science windows (max_pointings={params['max_pointings']}: "
            f"a reproducible random subset). To use all, set max_pointings={matched}")
    if matched > rights.max_scw:
        parts = -(-matched // rights.max_scw)
        text += (f"; your tier '{rights.tier}' allows at most {rights.max_scw} per request, so split "
                 f"T1-T2 into {parts} requests")
    return text + "."


def select_windows(params: dict[str, Any], archive: Any, rights: Rights) -> tuple[Selection, list[str]]:
    """The science windows of a request (and messages about what was left out or subsampled)."""
    include_private = bool(rights.private_data and params.get("integral_data_rights") == "all-private")
    messages: list[str] = []
    if params.get("scw_list"):
        windows = archive.index.get_many(params["scw_list"])
        private = [w.scw_id for w in windows if w.private]
        if private and not include_private:
            windows = [w for w in windows if not w.private]
            messages.append(private_message(len(private), private))
        if not windows:
            raise NoDataError("no science window found: every window of scw_list is private",
                              parameter="scw_list", value=params["scw_list"])
        return Selection(windows, len(params["scw_list"])), messages
    t1, t2 = to_time(params["T1"]), to_time(params["T2"])
    windows = archive.index.select(
        params["RA"], params["DEC"], params["radius"], t1, t2, params["max_pointings"],
        include_private=include_private,
    )
    if not windows:
        raise NoDataError(
            f"no science window found within radius={params['radius']:g} deg of RA={params['RA']:.4f}, "
            f"DEC={params['DEC']:.4f} between T1={params['T1']} and T2={params['T2']}"
            + ("" if include_private else " (public data only)")
            + ". Widen the time range or the radius. (The science-window index is simulated: its observing "
            "plan follows real targets and pinned campaigns, not every real INTEGRAL pointing.)"
            + (" " + note if (note := sky_model_note(params, archive)) else ""),
            parameter="T1", value=params["T1"],
        )
    matched = int(archive.index.cone(params["RA"], params["DEC"], params["radius"], t1, t2,
                                     include_private).size)
    if matched > len(windows):
        messages.append(subset_message(len(windows), matched, params, rights))
    n_private = private_left_out(params, archive, include_private)
    if n_private:
        messages.append(private_message(n_private))
    if (note := sky_model_note(params, archive)) is not None:
        messages.append(note)
    return Selection(windows, matched), messages


def sky_model_note(params: dict[str, Any], archive: Any) -> str | None:
    """Say so when the requested position holds no source of the simulated sky.

    The data are simulated from the sky model only: a real source missing from it (e.g. a
    blazar outside the built-in list) cannot appear, and an empty result must not read as an
    upper limit on the real sky.
    """
    sky = getattr(archive, "sky", None)
    if sky is None or sky.near(float(params["RA"]), float(params["DEC"]), MATCH_RADIUS_DEG):
        return None
    name = params.get("src_name") or "the requested position"
    return (f"The simulated sky ({len(sky)} sources, mmoda_ext/data/sky_model.ecsv) has no source within "
            f"{MATCH_RADIUS_DEG:g}° of {name} (RA={float(params['RA']):.3f}, DEC={float(params['DEC']):.3f}): "
            "the simulated data hold no emission there, whatever the real sky does. Add it with an extra "
            "sky-model file (MMODA_SKY_EXTRA) to simulate it.")
