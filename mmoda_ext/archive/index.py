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
from functools import lru_cache
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
_COLUMNS = ("key", "rev", "ra", "dec", "pa", "tstart", "tstop", "ontime", "deadc", "private", "target",
            "slew_s")
_MEMO: dict[int, ScwIndex] = {}
_SAVED: set[Path] = set()
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _fingerprint() -> str:
    code = Path(schedule.__file__).read_bytes() + Path(__file__).read_bytes()
    return hashlib.sha256(code).hexdigest()[:10]


def _as_ijd(value, parameter: str) -> float:
    try:
        return to_ijd(value)
    except (ValueError, TypeError):
        raise ParameterError(parameter, value, "a time (astropy Time, ISO string UTC, or IJD number)",
                             "It cannot be read as a time") from None


class ScwIndex:
    """All science windows of the mission: the pointings (F=0) and the slews (F=1) before them.

    The table holds one row per pointing, sorted by id (= by time); the slew ``RRRRPPPP0011``
    that leads to pointing ``RRRRPPPP0010`` is derived from it (``slew_s`` seconds before the
    pointing, same attitude as its destination). Use :meth:`default` for the shared instance.
    """

    def __init__(self, columns: dict[str, np.ndarray], targets: list[str], seed: int) -> None:
        self.seed = int(seed)
        self.targets = list(targets)
        for c in _COLUMNS:
            setattr(self, c, np.asarray(columns[c]))
        self._xyz = schedule.unit(self.ra, self.dec)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def build(cls, seed: int = DEFAULT_SEED) -> ScwIndex:
        """Generate the index from the observing plan (no cache)."""
        plan = schedule.build_plan(int(seed))
        cols = {
            "key": plan["rev"].astype(np.int64) * 10**8 + plan["pnum"] * 10**4 + 10,  # SSS=001, F=0
            "rev": plan["rev"].astype(np.int16),
            "ra": plan["ra"],
            "dec": plan["dec"],
            "pa": plan["pa"].astype(np.float32),
            "tstart": plan["tstart"],
            "tstop": plan["tstop"],
            "ontime": plan["ontime"].astype(np.float32),
            "deadc": plan["deadc"].astype(np.float32),
            "private": plan["private"].astype(bool),
            "target": plan["target"].astype(np.int16),
            "slew_s": plan["slew_s"].astype(np.float32),
        }
        return cls(cols, list(plan["names"]), seed)

    @staticmethod
    def cache_path(cache_dir: str | Path, seed: int = DEFAULT_SEED) -> Path:
        """Cache file name: changes with the generator code, so a stale cache is never read."""
        return Path(cache_dir) / f"scw_index-v{schedule.GENERATOR_VERSION}-{_fingerprint()}-s{int(seed)}.npz"

    @classmethod
    def default(cls, seed: int = DEFAULT_SEED, cache_dir: str | Path | None = None) -> ScwIndex:
        """The memoised index for ``seed``; read from / written to ``cache_dir`` if given."""
        seed = int(seed)
        path = cls.cache_path(cache_dir, seed) if cache_dir else None
        with _LOCK:
            if seed in _MEMO:
                index = _MEMO[seed]
                if path is not None and path not in _SAVED and not path.is_file():
                    index._save_quietly(path)
                return index
            index = None
            if path is not None and path.is_file():
                try:
                    index = cls.load(path)
                except Exception as exc:  # corrupt cache: rebuild
                    log.warning("ignoring unreadable index cache %s: %s", path, exc)
            if index is None:
                index = cls.build(seed)
                if path is not None:
                    index._save_quietly(path)
            _MEMO[seed] = index
            return index

    def _save_quietly(self, path: Path) -> None:
        """Write the disk cache, replacing stale versions; a read-only archive only logs."""
        _SAVED.add(path)
        try:
            for stale in path.parent.glob(f"scw_index-*-s{self.seed}.npz"):
                stale.unlink(missing_ok=True)
            self.save(path)
        except OSError as exc:
            log.warning("cannot write index cache %s: %s", path, exc)

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
        """Number of science windows (pointings and slews)."""
        return 2 * int(self.key.size)

    @property
    def n_pointings(self) -> int:
        return int(self.key.size)

    @property
    def time_range(self) -> tuple[Time, Time]:
        return ijd_to_time(self.tstart[0] - self.slew_s[0] / 86400.0), ijd_to_time(self.tstop[-1])

    def window(self, row: int, slew: bool = False) -> ScienceWindow:
        """The pointing of table row ``row`` (or the slew before it)."""
        row = int(row)
        tstart, tstop = float(self.tstart[row]), float(self.tstop[row])
        ontime = round(float(self.ontime[row]), 3)
        if slew:
            tstart, tstop, ontime = tstart - float(self.slew_s[row]) / 86400.0, tstart, float(self.slew_s[row])
        return ScienceWindow(
            scw_id=format_scw_id(self.key[row] + (1 if slew else 0)),
            revolution=int(self.rev[row]),
            ra=float(self.ra[row]),
            dec=float(self.dec[row]),
            pa=round(float(self.pa[row]), 4),
            tstart=tstart,
            tstop=tstop,
            ontime=ontime,
            deadc=round(float(self.deadc[row]), 5),
            private=bool(self.private[row]),
            target="slew" if slew else self.targets[int(self.target[row])],
        )

    def get(self, scw_id: str) -> ScienceWindow:
        """The window with this id; ParameterError('scw_list') if malformed or not in the archive."""
        key = scw_key(scw_id)
        if not str(scw_id).strip().endswith(".001"):
            raise ParameterError("scw_list", scw_id, "consolidated science windows (version .001)",
                                 "Only consolidated data are in the archive")
        slew = key % 10000 == 11
        pkey = key - 1 if slew else key
        row = int(np.searchsorted(self.key, pkey))
        if row >= self.key.size or self.key[row] != pkey:
            raise ParameterError(
                "scw_list", scw_id,
                f"ids of science windows of revolutions {int(self.rev[0])}-{int(self.rev[-1])} "
                "that exist in the archive, e.g. 066500220010.001", "No such science window")
        return self.window(row, slew=slew)

    def get_many(self, ids: Iterable[str]) -> list[ScienceWindow]:
        return [self.get(i) for i in ids]

    # -- selection ---------------------------------------------------------------------------
    def cone(self, ra: float, dec: float, radius_deg: float, t1, t2,
             include_private: bool = False) -> np.ndarray:
        """Table rows of the pointings (id ``...0010.001``) whose axis is within ``radius_deg`` of
        (ra, dec) and whose time overlaps [t1, t2], in time order."""
        ra, dec, radius = float(ra), float(dec), float(radius_deg)
        if not -90.0 <= dec <= 90.0:
            raise ParameterError("DEC", dec, "-90 to 90 degrees")
        if not 0.0 < radius <= 180.0:
            raise ParameterError("radius", radius_deg, "0 < radius <= 180 degrees")
        i1, i2 = _as_ijd(t1, "T1"), _as_ijd(t2, "T2")
        if not i2 > i1:
            raise ParameterError("T2", t2, f"a time after T1 ({t1})")
        lo = int(np.searchsorted(self.tstop, i1, side="right"))
        hi = int(np.searchsorted(self.tstart, i2, side="left"))
        if hi <= lo:
            return np.empty(0, dtype=np.int64)
        v = schedule.unit(ra % 360.0, dec)
        ok = self._xyz[lo:hi] @ v >= np.cos(np.radians(radius))
        if not include_private:
            ok &= ~self.private[lo:hi]
        return lo + np.nonzero(ok)[0]

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
        rows = np.arange(self.key.size) if rows is None else np.asarray(rows)
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
