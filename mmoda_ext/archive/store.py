"""The archive: where science-window data live, what the sky holds, and name resolution.

``Archive`` is the seam where a real archive plugs in later: the engine and the instruments see
only ``archive.index`` (science windows), ``archive.sky`` (the simulated sky), ``archive.root``
and ``path_for`` (the per-window cache) and ``resolve_name``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import lru_cache
from pathlib import Path

from astropy.coordinates import SkyCoord
from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import ParameterError
from .index import DEFAULT_SEED, ScwIndex
from .scw import ScienceWindow
from .sky import SkyModel

__all__ = ["Archive", "default_archive", "default_root"]

log = logging.getLogger(__name__)

_ONLINE_FAILED_AT = [0.0]  # when the name-resolver network last failed (skip retries for a while)
_RETRY_AFTER = 300.0


def default_root() -> Path:
    """$MMODA_ARCHIVE, else ~/.cache/mmoda/archive."""
    env = os.environ.get("MMODA_ARCHIVE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mmoda" / "archive"


class Archive(LoggingConfigurable):
    """A local simulated INTEGRAL archive: index + sky model + per-window file cache."""

    index_seed = Integer(DEFAULT_SEED, config=True,
                         help="Seed of the simulated observing plan (science-window index).")
    cache_index = Bool(True, config=True,
                       help="Keep the built index as <root>/index/*.npz for fast start-up.")
    resolve_online = Bool(True, config=True,
                          help="Ask Sesame (SkyCoord.from_name) for names not in the sky model, "
                               "when the network answers. Off with MMODA_OFFLINE=1.")
    resolve_timeout = Float(3.0, config=True, min=0.1,
                            help="Seconds to wait for the online name resolver.")
    extra_sources = Unicode("", config=True,
                            help="ECSV of extra sky sources (same columns as the built-in sky model); "
                                 "default $MMODA_SKY_EXTRA.")

    def __init__(self, root: str | Path | None = None, extra_sources: str | Path | None = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser() if root else default_root()
        if extra_sources is not None:
            self.extra_sources = str(extra_sources)
        elif not self.extra_sources:
            self.extra_sources = os.environ.get("MMODA_SKY_EXTRA", "")
        if os.environ.get("MMODA_OFFLINE"):
            self.resolve_online = False
        self._index: ScwIndex | None = None
        self._sky: SkyModel | None = None
        self._lock = threading.Lock()

    def __reduce__(self):
        # Dask ships tasks by pickle: a worker gets the same (shared, per-process) archive
        return (_rebuild, (str(self.root), self.extra_sources, self.index_seed, self.resolve_online,
                           self.cache_index))

    # -- parts (lazy: the CLI `info` and name resolution need not build the index) ------------
    @property
    def index(self) -> ScwIndex:
        if self._index is None:
            cache = self.root / "index" if self.cache_index else None
            self._index = ScwIndex.default(self.index_seed, cache_dir=cache)
        return self._index

    @property
    def sky(self) -> SkyModel:
        if self._sky is None:
            self._sky = SkyModel.from_files(extra=self.extra_sources or None)
        return self._sky

    # -- files --------------------------------------------------------------------------------
    def path_for(self, instrument: str, scw: ScienceWindow | str) -> Path:
        """Cache file of one window: ``root/<instrument>/<RRRR>/<scw_id>.fits``."""
        scw_id = scw.scw_id if isinstance(scw, ScienceWindow) else str(scw)
        return self.root / instrument.lower() / scw_id[:4] / f"{scw_id}.fits"

    #: the data files are made by this archive (True), or fetched from the archive service
    #: (:class:`.remote.RemoteArchive`, False)
    local_data = True

    def ensure_window(self, instrument: str, scw: ScienceWindow) -> Path:
        """The data file of one window (``isgri``, ``jemx1``, ``jemx2``), made first if missing.

        The one seam between analysis and data: the archive service calls it to serve files, and
        :class:`.remote.RemoteArchive` overrides it to download them instead.
        """
        path = self.path_for(instrument, scw)
        if instrument == "isgri":
            from . import isgri_data

            if not isgri_data.is_current(self, path):  # missing, or made from another sky model
                isgri_data.generate_window(self, scw)
        elif instrument in ("jemx1", "jemx2"):
            from . import jemx_data

            if not jemx_data.is_current(self, path):
                jemx_data.generate_window(self, scw, int(instrument[-1]))
        else:
            raise ParameterError("instrument", instrument, "isgri, jemx1 or jemx2",
                                 "Only these instruments have per-window data files")
        return path

    # -- names --------------------------------------------------------------------------------
    def resolve_name(self, name: str) -> SkyCoord:
        """Position of a named source: the sky model first (offline), then Sesame if reachable."""
        text = str(name or "").strip()
        if not text:
            raise ParameterError("src_name", name, "a source name such as Crab or 'Cyg X-1'", "It is empty")
        src = self.sky.find(text)
        if src is not None:
            return SkyCoord(src.ra, src.dec, unit="deg", frame="icrs")
        coord = self._resolve_online(text)
        if coord is not None:
            return coord
        known = ", ".join(s.name for s in self.sky.sources[:8])
        raise ParameterError(
            "src_name", name,
            f"a source of the sky model ({known}, ...) or explicit RA and DEC",
            "The name is not known offline and the online resolver is not reachable" if self.resolve_online
            else "The name is not known to the sky model")

    def _resolve_online(self, name: str) -> SkyCoord | None:
        if not self.resolve_online or time.monotonic() - _ONLINE_FAILED_AT[0] < _RETRY_AFTER \
                and _ONLINE_FAILED_AT[0] > 0:
            return None
        result: list = []

        def worker():
            from astropy.utils.data import conf

            try:
                with conf.set_temp("remote_timeout", self.resolve_timeout):
                    result.append(SkyCoord.from_name(name))
            except Exception as exc:  # name unknown or network down
                result.append(exc)

        th = threading.Thread(target=worker, daemon=True, name="mmoda-resolve-name")
        th.start()
        th.join(self.resolve_timeout + 0.5)
        if result and isinstance(result[0], SkyCoord):
            return result[0]
        err = result[0] if result else TimeoutError("no answer")
        if not result or "connect" in str(err).lower() or isinstance(err, (OSError, TimeoutError)):
            _ONLINE_FAILED_AT[0] = time.monotonic()
        log.info("online name resolution of %r failed: %s", name, err)
        return None

    def describe(self) -> dict:
        """Summary for `mmoda archive info` and the archive service."""
        idx = self.index
        t0, t1 = idx.time_range
        return {
            "root": str(self.root),
            "science_windows": len(idx),
            "pointings": idx.n_pointings,
            "revolutions": [int(idx.rev.min()), int(idx.rev.max())],
            "start": t0.utc.isot,
            "end": t1.utc.isot,
            "index_seed": idx.seed,
            "sky_sources": len(self.sky),
            "sky_files": [str(f) for f in self.sky.files],
            "sky_digest": self.sky.digest,
        }


def _rebuild(root: str, extra: str, seed: int, online: bool, cache: bool) -> Archive:
    if seed == DEFAULT_SEED and online and cache:
        return default_archive(root, extra or None)
    return Archive(root=root, extra_sources=extra, index_seed=seed, resolve_online=online,
                   cache_index=cache)


@lru_cache(maxsize=16)
def _cached(root: str, extra: str | None) -> Archive:
    return Archive(root=root, extra_sources=extra)


def default_archive(root: str | Path | None = None, extra_sources: str | Path | None = None) -> Archive:
    """The shared archive for (root, extra sources): root argument, else $MMODA_ARCHIVE, else
    ~/.cache/mmoda/archive; extra sources argument, else $MMODA_SKY_EXTRA."""
    root = Path(root).expanduser() if root else default_root()
    extra = str(extra_sources) if extra_sources else os.environ.get("MMODA_SKY_EXTRA") or ""
    return _cached(str(root.resolve()), extra)
