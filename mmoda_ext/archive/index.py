"""The whole-mission science-window index, and MMODA's science-window selection.

The index is built deterministically from a seed by :mod:`.schedule` (about a second), kept in
memory per seed, and optionally cached on disk as ``<root>/index/scw_index-v<V>-s<seed>.npz``.
Queries are vectorised over pre-computed unit vectors: a cone + time search over the whole mission
takes about a millisecond.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..errors import ParameterError
from . import schedule
from .fitsutil import ijd_to_time, to_ijd
from .scw import ScienceWindow, format_scw_id, scw_key

__all__ = ["ScwIndex", "DEFAULT_SEED"]

log = logging.getLogger(__name__)

DEFAULT_SEED = 20021017  # launch date
_COLUMNS = ("key", "rev", "ra", "dec", "pa", "tstart", "tstop", "ontime", "deadc", "private", "target")
_MEMO: dict[int, ScwIndex] = {}
_LOCK = threading.Lock()


def _as_ijd(value, parameter: str) -> float:
    try:
        return to_ijd(value)
    except (ValueError, TypeError):
        raise ParameterError(parameter, value, "a time (astropy Time, ISO string UTC, or IJD number)",
                             "It cannot be read as a time") from None


class ScwIndex:
    """All science windows of the mission: pointings (F=0) and the slews (F=1) before them.

    Rows are sorted by id (= by time for pointings). Use :meth:`default` to get the shared,
    memoised instance rather than building a new one.
    """

    def __init__(self, columns: dict[str, np.ndarray], targets: list[str], seed: int) -> None:
        self.seed = int(seed)
        self.targets = list(targets)
        for c in _COLUMNS:
            setattr(self, c, np.asarray(columns[c]))
        self.is_pointing = (self.key % 10000) == 10
        p = np.nonzero(self.is_pointing)[0]
        self._p_rows = p
        self._p_tstart = self.tstart[p]
        self._p_tstop = self.tstop[p]
        self._p_xyz = schedule.unit(self.ra[p], self.dec[p])
        self._p_private = self.private[p].astype(bool)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def build(cls, seed: int = DEFAULT_SEED) -> ScwIndex:
        """Generate the index from the observing plan (no cache)."""
        plan = schedule.build_plan(int(seed))
        n = plan["rev"].size
        base = plan["rev"].astype(np.int64) * 10**8 + plan["pnum"] * 10**4
        slew_stop = plan["tstart"]
        slew_start = slew_stop - plan["slew_s"] / 86400.0
        cols = {
            "key": np.concatenate([base + 10, base + 11]),  # SSS=001, F=0 / F=1
            "rev": np.concatenate([plan["rev"]] * 2),
            "ra": np.concatenate([plan["ra"]] * 2),
            "dec": np.concatenate([plan["dec"]] * 2),
            "pa": np.concatenate([plan["pa"]] * 2),
            "tstart": np.concatenate([plan["tstart"], slew_start]),
            "tstop": np.concatenate([plan["tstop"], slew_stop]),
            "ontime": np.concatenate([plan["ontime"], plan["slew_s"]]),
            "deadc": np.concatenate([plan["deadc"]] * 2),
            "private": np.concatenate([plan["private"]] * 2),
            "target": np.concatenate([plan["target"], np.full(n, len(plan["names"]), np.int16)]),
        }
        order = np.argsort(cols["key"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        return cls(cols, list(plan["names"]) + ["slew"], seed)

    @staticmethod
    def cache_path(cache_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
        return Path(cache_dir) / f"scw_index-v{schedule.GENERATOR_VERSION}-s{int(seed)}.npz"

    @classmethod
    def default(cls, seed: int = DEFAULT_SEED, cache_dir: str | Path | None = None) -> ScwIndex:
        """The memoised index for ``seed``; read from / written to ``cache_dir`` if given."""
        seed = int(seed)
        with _LOCK:
            if seed in _MEMO:
                return _MEMO[seed]
            index = None
            path = cls.cache_path(cache_dir, seed) if cache_dir else None
            if path is not None and path.is_file():
                try:
                    index = cls.load(path)
                except Exception as exc:  # corrupt cache: rebuild
                    log.warning("ignoring unreadable index cache %s: %s", path, exc)
            if index is None:
                index = cls.build(seed)
                if path is not None:
                    try:
                        index.save(path)
                    except OSError as exc:
                        log.warning("cannot write index cache %s: %s", path, exc)
            _MEMO[seed] = index
            return index

    def save(self, path: str | Path) -> Path:
        """Write the index as npz (atomic rename, safe with concurrent writers)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, seed=self.seed, targets=np.array(self.targets),
                     **{c: getattr(self, c) for c in _COLUMNS})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ScwIndex:
        with np.load(path, allow_pickle=False) as z:
            cols = {c: z[c] for c in _COLUMNS}
            return cls(cols, [str(t) for t in z["targets"]], int(z["seed"]))

    # -- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.key.size)

    @property
    def n_pointings(self) -> int:
        return int(self._p_rows.size)

    @property
    def time_range(self) -> tuple[Time, Time]:
        return ijd_to_time(self.tstart.min()), ijd_to_time(self.tstop.max())

    def window(self, row: int) -> ScienceWindow:
        """The science window of table row ``row``."""
        return ScienceWindow(
            scw_id=format_scw_id(self.key[row]),
            revolution=int(self.rev[row]),
            ra=float(self.ra[row]),
            dec=float(self.dec[row]),
            pa=float(self.pa[row]),
            tstart=float(self.tstart[row]),
            tstop=float(self.tstop[row]),
            ontime=float(self.ontime[row]),
            deadc=float(self.deadc[row]),
            private=bool(self.private[row]),
            target=self.targets[int(self.target[row])],
        )

    def get(self, scw_id: str) -> ScienceWindow:
        """The window with this id; ParameterError('scw_list') if malformed or not in the archive."""
        key = scw_key(scw_id)
        if not str(scw_id).strip().endswith(".001"):
            raise ParameterError("scw_list", scw_id, "consolidated science windows (version .001)",
                                 "Only consolidated data are in the archive")
        row = int(np.searchsorted(self.key, key))
        if row >= self.key.size or self.key[row] != key:
            raise ParameterError(
                "scw_list", scw_id,
                f"ids of science windows of revolutions {int(self.rev.min())}-{int(self.rev.max())} "
                "that exist in the archive, e.g. 066500220010.001", "No such science window")
        return self.window(row)

    def get_many(self, ids: Iterable[str]) -> list[ScienceWindow]:
        return [self.get(i) for i in ids]

    # -- selection ---------------------------------------------------------------------------
    def cone(self, ra: float, dec: float, radius_deg: float, t1, t2,
             include_private: bool = False) -> np.ndarray:
        """Table rows of pointings (id ``...0010.001``) whose axis is within ``radius_deg`` of
        (ra, dec) and whose time overlaps [t1, t2], in time order."""
        ra, dec, radius = float(ra), float(dec), float(radius_deg)
        if not -90.0 <= dec <= 90.0:
            raise ParameterError("DEC", dec, "-90 to 90 degrees")
        if not 0.0 < radius <= 180.0:
            raise ParameterError("radius", radius_deg, "0 < radius <= 180 degrees")
        i1, i2 = _as_ijd(t1, "T1"), _as_ijd(t2, "T2")
        if not i2 > i1:
            raise ParameterError("T2", t2, f"a time after T1 ({t1})")
        lo = int(np.searchsorted(self._p_tstop, i1, side="right"))
        hi = int(np.searchsorted(self._p_tstart, i2, side="left"))
        if hi <= lo:
            return np.empty(0, dtype=np.int64)
        v = schedule.unit(ra % 360.0, dec)
        ok = self._p_xyz[lo:hi] @ v >= np.cos(np.radians(radius))
        if not include_private:
            ok &= ~self._p_private[lo:hi]
        return self._p_rows[lo:hi][ok]

    def select(self, ra: float, dec: float, radius_deg: float, t1: Time, t2: Time,
               max_pointings: int | None = None, include_private: bool = False,
               seed: int | str | None = None) -> list[ScienceWindow]:
        """MMODA's automatic selection: the pointings near (ra, dec) in [t1, t2].

        A pointing is selected when its axis lies within ``radius_deg`` of the position and its
        time interval overlaps [t1, t2]; only pointings with subdivision 001 (ids ending in
        ``0010.001``) qualify, as in MMODA. With more than ``max_pointings``, a random subset is
        drawn (MMODA rule), reproducibly: the same request (and ``seed``) gives the same subset.
        The result is sorted by time.
        """
        rows = self.cone(ra, dec, radius_deg, t1, t2, include_private)
        if max_pointings is not None:
            max_pointings = int(max_pointings)
            if max_pointings < 1:
                raise ParameterError("max_pointings", max_pointings, "an integer >= 1")
            if rows.size > max_pointings:
                text = (f"{float(ra):.6f}|{float(dec):.6f}|{float(radius_deg):.6f}|"
                        f"{_as_ijd(t1, 'T1'):.9f}|{_as_ijd(t2, 'T2'):.9f}|{max_pointings}|"
                        f"{bool(include_private)}|{seed}")
                digest = hashlib.sha256(text.encode()).digest()
                rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
                rows = np.sort(rng.choice(rows, size=max_pointings, replace=False))
        return [self.window(int(r)) for r in rows]

    def to_table(self, rows: np.ndarray | None = None) -> Table:
        """An astropy Table (ScW_ID, REVOL, RA_SCX, DEC_SCX, POSANG, TSTART, TSTOP, ONTIME, DEADC...)."""
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        t = Table()
        t["SWID"] = [format_scw_id(k) for k in self.key[rows]]
        t["REVOL"] = self.rev[rows]
        t["RA_SCX"] = self.ra[rows]
        t["DEC_SCX"] = self.dec[rows]
        t["POSANG"] = self.pa[rows]
        t["TSTART"] = self.tstart[rows]
        t["TSTOP"] = self.tstop[rows]
        t["ONTIME"] = self.ontime[rows]
        t["DEADC"] = self.deadc[rows]
        t["PRIVATE"] = self.private[rows]
        t["TARGET"] = [self.targets[i] for i in self.target[rows]]
        for c, u in (("RA_SCX", "deg"), ("DEC_SCX", "deg"), ("POSANG", "deg"), ("TSTART", "d"),
                     ("TSTOP", "d"), ("ONTIME", "s")):
            t[c].unit = u
        return t
