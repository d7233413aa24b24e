"""Science windows: the unit of INTEGRAL data (one attitude, one set of files).

An id is ``RRRRPPPPSSSF.VVV``: revolution, pointing number in the revolution, subdivision
(001 first), type F (0 pointing, 1 slew, 2 engineering), version (001 consolidated). MMODA
analyses only pointings with subdivision 001, i.e. ids ending in ``0010.001``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
from astropy.time import Time

from ..errors import ParameterError
from .fitsutil import ijd_to_time

__all__ = ["ScienceWindow", "SCW_ID_RE", "parse_scw_id", "scw_key", "format_scw_id"]

SCW_ID_RE = re.compile(r"^(\d{4})(\d{4})(\d{3})(\d)\.(\d{3})$")
SCW_ALLOWED = "science-window ids RRRRPPPPSSSF.VVV, e.g. 066500220010.001"
KINDS = {0: "pointing", 1: "slew", 2: "engineering"}


def parse_scw_id(scw_id: str, parameter: str = "scw_list") -> tuple[int, int, int, int, int]:
    """``"066500220010.001"`` -> ``(665, 22, 1, 0, 1)``; ParameterError if malformed."""
    m = SCW_ID_RE.match(str(scw_id).strip())
    if not m:
        raise ParameterError(parameter, scw_id, SCW_ALLOWED, "Malformed science-window id")
    rev, pnum, sss, f, ver = (int(g) for g in m.groups())
    return rev, pnum, sss, f, ver


def scw_key(scw_id: str, parameter: str = "scw_list") -> int:
    """The 12 digits as one integer: sorts like the archive (revolution, pointing, sub, type)."""
    parse_scw_id(scw_id, parameter)
    return int(str(scw_id).strip()[:12])


def format_scw_id(key: int, version: int = 1) -> str:
    return f"{int(key):012d}.{version:03d}"


@dataclass(frozen=True)
class ScienceWindow:
    """One science window of the index, with its attitude, times and live time."""

    scw_id: str
    revolution: int
    ra: float  #: pointing axis (X) RA, deg J2000
    dec: float  #: pointing axis Dec, deg
    pa: float  #: position angle of the detector Z axis, deg east of north
    tstart: float  #: IJD (TT)
    tstop: float  #: IJD (TT)
    ontime: float  #: s of good time inside [tstart, tstop]
    deadc: float  #: dead-time correction (live fraction)
    private: bool  #: proprietary data (needs the private-data right)
    target: str  #: field / programme name

    @property
    def exposure(self) -> float:
        """Dead-time corrected exposure, s (ONTIME x DEADC)."""
        return self.ontime * self.deadc

    @property
    def telapse(self) -> float:
        """Elapsed time, s."""
        return (self.tstop - self.tstart) * 86400.0

    @property
    def t_start(self) -> Time:
        return ijd_to_time(self.tstart)

    @property
    def t_stop(self) -> Time:
        return ijd_to_time(self.tstop)

    @property
    def key(self) -> int:
        return int(self.scw_id[:12])

    @property
    def pointing_number(self) -> int:
        return int(self.scw_id[4:8])

    @property
    def subdivision(self) -> int:
        return int(self.scw_id[8:11])

    @property
    def kind(self) -> str:
        """``pointing``, ``slew`` or ``engineering`` (the F digit)."""
        return KINDS.get(int(self.scw_id[11]), "unknown")

    @property
    def is_pointing(self) -> bool:
        """A pointing with subdivision 001: what MMODA selects (id ending ``0010.001``)."""
        return self.scw_id[8:12] == "0010"

    @property
    def seed(self) -> int:
        """A stable 63-bit integer from the id: seeds the per-window data simulation."""
        digest = hashlib.blake2b(self.scw_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") & (2**63 - 1)

    @property
    def gti(self) -> np.ndarray:
        """Good-time intervals, IJD, shape (n, 2), totalling ``ontime`` (deterministic per id).

        Short losses trim the edges (attitude settling); a longer loss is one telemetry gap.
        """
        lost = max(self.telapse - self.ontime, 0.0) / 86400.0
        rng = np.random.default_rng(self.seed)
        if lost * 86400.0 < 60.0:
            head = lost * rng.uniform(0.3, 0.9)
            return np.array([[self.tstart + head, self.tstop - (lost - head)]])
        edge = min(lost, 20.0 / 86400.0)
        head = edge * rng.uniform(0.3, 0.9)
        gap = lost - edge
        span = (self.tstop - (edge - head)) - (self.tstart + head) - gap
        g0 = self.tstart + head + span * rng.uniform(0.1, 0.9)
        return np.array([[self.tstart + head, g0], [g0 + gap, self.tstop - (edge - head)]])

    def to_dict(self) -> dict:
        return {
            "scw_id": self.scw_id,
            "revolution": self.revolution,
            "ra": self.ra,
            "dec": self.dec,
            "pa": self.pa,
            "tstart": self.tstart,
            "tstop": self.tstop,
            "ontime": self.ontime,
            "deadc": self.deadc,
            "private": self.private,
            "target": self.target,
        }
