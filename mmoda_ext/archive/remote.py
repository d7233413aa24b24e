"""RemoteArchive: the archive as the engine and instruments see it, read through ``mmoda-archive``.

Inside the hub, user servers and their Dask workers hold no archive: they ask the archive
service (:mod:`mmoda_ext.services.archive`) with the user's hub token. ``RemoteArchive`` has the
interface of :class:`.store.Archive` that the engine and instruments use, so they run unchanged:

* ``index``: a :class:`RemoteIndex` whose ``select``, ``get``, ``get_many`` and ``cone`` are
  service calls (the service applies the caller's tier: science windows per request, requests
  per hour, private data);
* ``sky``: the service's sky model (downloaded once per digest), so the analysis catalogue is the
  one the data were simulated from; ``resolve_name`` uses it offline (then Sesame, as locally);
* ``ensure_window(instrument, scw)``: the window's FITS file, downloaded once into the local
  per-window cache ``cache_dir/<instrument>/<RRRR>/<scw_id>.fits`` (same layout as the local
  archive, so ``path_for`` is unchanged).

It pickles to Dask workers as (url, token, cache_dir); each process keeps one instance per
triple. The token never appears in ``repr`` or logs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from astropy.time import Time

from ..errors import PublicError
from .fitsutil import to_ijd
from .scw import ScienceWindow
from .sky import SkyModel
from .store import Archive

__all__ = ["RemoteArchive", "RemoteIndex", "remote_archive"]


def _error(resp: httpx.Response) -> PublicError:
    """The service's JSON error as a PublicError (same status, same message)."""
    try:
        data = resp.json()
    except ValueError:
        data = {}
    message = data.get("error") or f"archive service answered HTTP {resp.status_code}"
    return PublicError(message, parameter=data.get("parameter"), value=data.get("value"),
                       status=resp.status_code if resp.status_code in (400, 403, 404, 429, 503) else 502)


def _time(value: Any) -> Any:
    """Times travel as IJD numbers (exact in JSON): the service selects exactly what Archive would."""
    if value is None:
        return None
    if isinstance(value, (Time, int, float, np.integer, np.floating)):
        return to_ijd(value)
    return str(value)


class RemoteIndex:
    """The part of :class:`.index.ScwIndex` the instruments use, answered by the service."""

    def __init__(self, archive: RemoteArchive) -> None:
        self._archive = archive

    def select(self, ra: float, dec: float, radius_deg: float, t1: Any, t2: Any,
               max_pointings: int | None = None, include_private: bool = False,
               seed: int | str | None = None) -> list[ScienceWindow]:
        body = {"ra": float(ra), "dec": float(dec), "radius": float(radius_deg), "t1": _time(t1),
                "t2": _time(t2), "max_pointings": None if max_pointings is None else int(max_pointings),
                "include_private": bool(include_private), "seed": seed}
        return [ScienceWindow(**w) for w in self._archive._post("select", body)["windows"]]

    def get_many(self, ids: Any) -> list[ScienceWindow]:
        got = self._archive._post("windows", {"scw_list": [str(i) for i in ids]})["windows"]
        return [ScienceWindow(**w) for w in got]

    def get(self, scw_id: str) -> ScienceWindow:
        return self.get_many([scw_id])[0]

    def cone(self, ra: float, dec: float, radius_deg: float, t1: Any, t2: Any,
             include_private: bool = False) -> np.ndarray:
        body = {"ra": float(ra), "dec": float(dec), "radius": float(radius_deg), "t1": _time(t1),
                "t2": _time(t2), "include_private": bool(include_private)}
        return np.asarray(self._archive._post("cone", body)["rows"], dtype=np.int64)


class RemoteArchive(Archive):
    """An :class:`.store.Archive` whose index and data come from the archive service."""

    local_data = False

    def __init__(self, url: str, token: str, cache_dir: str | Path | None = None,
                 timeout: float = 120.0, **kwargs: Any) -> None:
        cache = Path(cache_dir).expanduser() if cache_dir else _default_cache()
        super().__init__(root=cache, extra_sources="", **kwargs)
        self.url = url.rstrip("/") + "/"
        self._token = token
        self.timeout = float(timeout)
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._file_locks: dict[Path, threading.Lock] = {}
        self._remote_index = RemoteIndex(self)

    def __repr__(self) -> str:
        return f"RemoteArchive({self.url!r}, cache_dir={str(self.root)!r})"

    def __reduce__(self):
        # to a Dask worker: url + token (+ cache folder); one instance per process
        return (remote_archive, (self.url, self._token, str(self.root)))

    def worker_ref(self) -> RemoteArchive:
        """What per-window task plans carry: this archive itself (its ``get()`` is itself)."""
        return self

    def get(self) -> RemoteArchive:
        return self

    # -- HTTP --------------------------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                self._http = httpx.Client(
                    base_url=self.url, timeout=self.timeout, trust_env=False,
                    headers={"Authorization": f"token {self._token}"})
            return self._http

    #: attempts of a call that cannot connect (the service restarting), 1 s apart
    retries = 3

    def _request(self, method: str, route: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries):
            try:
                return self.http.request(method, f"api/{route}", **kwargs)
            except (httpx.ConnectError, httpx.RemoteProtocolError):
                if attempt == self.retries - 1:
                    raise PublicError(f"The archive service at {self.url} does not answer; try "
                                      "again in a minute.", status=503) from None
                time.sleep(1.0)
        raise AssertionError("unreachable")

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self._request("POST", route, json=body)
        if resp.status_code != 200:
            raise _error(resp)
        return resp.json()

    def info(self) -> dict[str, Any]:
        """The service's summary and the caller's rights there (tier, limits)."""
        resp = self._request("GET", "info")
        if resp.status_code != 200:
            raise _error(resp)
        return resp.json()

    # -- the parts of Archive ----------------------------------------------------------------
    @property
    def index(self) -> RemoteIndex:  # type: ignore[override]
        return self._remote_index

    @property
    def sky(self) -> SkyModel:
        if self._sky is None:
            with self._lock:
                if self._sky is None:
                    self._sky = self._load_sky()
        return self._sky

    def _load_sky(self) -> SkyModel:
        resp = self._request("GET", "sky")
        if resp.status_code != 200:
            raise _error(resp)
        digest = resp.headers.get("X-Sky-Digest", "unknown")
        path = self.root / "sky" / f"sky-{digest}.ecsv"
        _write_atomic(path, resp.content)
        builtin = SkyModel.read_sources(path)
        sky = SkyModel(builtin, [path])
        if sky.digest != digest:
            raise PublicError(f"the archive service's sky model did not arrive intact "
                              f"(digest {sky.digest}, expected {digest})", status=502)
        return sky

    def ensure_window(self, instrument: str, scw: ScienceWindow) -> Path:
        """The window's file in the local cache, downloaded from the service the first time."""
        path = self.path_for(instrument, scw)
        if path.is_file():
            return path
        with self._lock:
            lock = self._file_locks.setdefault(path, threading.Lock())
        with lock:
            if path.is_file():
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".dl-", suffix=".fits", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh, self.http.stream(
                        "GET", f"api/data/{instrument}/{scw.scw_id}.fits") as resp:
                    if resp.status_code != 200:
                        resp.read()
                        raise _error(resp)
                    for chunk in resp.iter_bytes(1 << 20):
                        fh.write(chunk)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return path

    def describe(self) -> dict[str, Any]:
        d = self.info()
        d["root"] = str(self.root)
        d["url"] = self.url
        return d


def _default_cache() -> Path:
    return Path.home() / ".cache" / "mmoda" / "remote-archive"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@lru_cache(maxsize=8)
def remote_archive(url: str, token: str, cache_dir: str) -> RemoteArchive:
    """The per-process RemoteArchive for (url, token, cache folder): what workers unpickle."""
    return RemoteArchive(url, token, cache_dir)
