"""Python client of the MMODA Hub REST API (``/api/v1``), synchronous or asynchronous.

>>> c = Client("http://127.0.0.1:8766", token=my_token)
>>> job = c.submit("isgri", "isgri_image", T1="2016-02-01", T2="2016-02-10", E1_keV=20, E2_keV=40)
>>> job = c.wait(job["job_id"])                 # a tqdm progress bar while it runs
>>> prods = c.products(job["job_id"])           # astropy objects
>>> prods[0].hdul, prods[0].wcs(), prods[1].table()

With ``asynchronous=True`` every public method returns a coroutine (``await c.submit(...)``);
otherwise the same coroutines run on a private event-loop thread, so the client also works
inside a Jupyter kernel whose loop is already running (as dask-gateway's ``Gateway`` does).
"""

from __future__ import annotations

import asyncio
import functools
import io
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Client", "ClientError", "FetchedProduct", "progress_text"]


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every request: building one (loading the CA bundle) costs ~0.1 s."""
    return httpx.create_ssl_context()


class ClientError(Exception):
    """The server refused a request; ``message`` is its user-facing text."""

    def __init__(self, status: int, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameter = parameter


@dataclass
class FetchedProduct:
    """One product of a job, as astropy objects."""

    name: str
    kind: str
    meta: dict = field(default_factory=dict)
    hdul: Any = None  # astropy.io.fits.HDUList (in memory)
    png: bytes | None = None
    raw: bytes | None = None  # a data file that is not FITS (hdul is then None)

    def table(self, ext: int | str | None = None):
        """The product's table (first table HDU by default) as an astropy ``Table``."""
        from astropy.io import fits
        from astropy.table import Table

        if ext is not None:
            return Table.read(self.hdul[ext])
        for hdu in self.hdul:
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                return Table.read(hdu)
        raise ValueError(f"product {self.name} has no table")

    def image(self, ext: int | str | None = None):
        """The first image HDU (or ``ext``)."""
        if ext is not None:
            return self.hdul[ext]
        for hdu in self.hdul:
            if hdu.is_image and hdu.data is not None and getattr(hdu.data, "ndim", 0) >= 2:
                return hdu
        raise ValueError(f"product {self.name} has no image")

    def wcs(self, ext: int | str | None = None):
        from astropy.wcs import WCS

        return WCS(self.image(ext).header)

    def describe(self) -> list[str]:
        """One line per HDU: name, image shape or table rows and columns, units."""
        from astropy.io import fits

        lines = []
        for i, hdu in enumerate(self.hdul or []):
            name = hdu.name or ("PRIMARY" if i == 0 else f"HDU{i}")
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                cols = [f"{c.name} [{c.unit}]" if c.unit else c.name for c in hdu.columns]
                shown = ", ".join(cols[:6]) + (f", ... ({len(cols)} columns)" if len(cols) > 6 else "")
                lines.append(f"{i} {name}: table, {hdu.data.shape[0] if hdu.data is not None else 0} rows: {shown}")
            elif hdu.data is not None:
                kind = hdu.header.get("IMATYPE") or hdu.header.get("HDUCLAS2") or "image"
                unit = hdu.header.get("BUNIT")
                shape = "x".join(str(n) for n in hdu.data.shape)
                lines.append(f"{i} {name}: {kind} {shape}" + (f" [{unit}]" if unit else ""))
        return lines

    def __repr__(self) -> str:
        parts = [f"{len(self.hdul)} HDUs" if self.hdul is not None else "no FITS"]
        if self.png:
            parts.append(f"PNG preview {len(self.png) / 1e3:.0f} kB")
        body = "".join(f"\n  {line}" for line in self.describe())
        return f"<FetchedProduct {self.name!r} ({self.kind}): {', '.join(parts)}>{body}"

    def _repr_html_(self) -> str:
        """Jupyter: the summary and, when there is one, the PNG preview."""
        import base64
        import html

        rows = "".join(f"<li><code>{html.escape(line)}</code></li>" for line in self.describe())
        img = (f'<br><img src="data:image/png;base64,{base64.b64encode(self.png).decode()}" '
               f'style="max-width:480px" alt="{html.escape(self.name)}">' if self.png else "")
        return (f"<b>{html.escape(self.name)}</b> <i>{html.escape(self.kind)}</i>"
                f"<ul style='margin:0'>{rows}</ul>{img}")


def progress_text(job: dict) -> str:
    """The words of the progress bar: the stage, each word once (never "submitted submitted")."""
    status = str(job.get("status") or "")
    message = str(job.get("message") or "").strip()
    label = "running" if status == "progress" else status
    if not message or message.lower().startswith(status.lower()) or message.lower() == label:
        return message or label
    return f"{label}: {message}"


class Client:
    """MMODA Hub REST client.

    Parameters
    ----------
    url : str
        Server base URL (``mmoda serve``, the public service, or the user's jupyter server
        extension URL).
    token : str, optional
        A MMODA token; without one the caller is anonymous.
    asynchronous : bool
        Return coroutines instead of results.
    """

    def __init__(self, url: str, token: str | None = None, asynchronous: bool = False,
                 timeout: float = 60.0, poll_interval: float = 0.5) -> None:
        self.url = url.rstrip("/")
        self.api = self.url + "/api/v1"
        self.token = token
        self.asynchronous = asynchronous
        self.timeout = timeout
        self.poll_interval = poll_interval
        #: this client's session: an anonymous caller controls (cancels, lists) only its own jobs
        self.session_id = secrets.token_hex(8)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._http: httpx.AsyncClient | None = None  # one per event loop: kept-alive connections
        self._http_loop: asyncio.AbstractEventLoop | None = None

    # -- plumbing --------------------------------------------------------------------

    def sync(self, fn, *args: Any, **kwargs: Any) -> Any:
        """Run coroutine function ``fn``: return the coroutine if asynchronous, else its result."""
        if self.asynchronous:
            return fn(*args, **kwargs)
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="mmoda-client", daemon=True)
            self._thread.start()
        return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self._loop).result()

    def close(self) -> None:
        if self._loop is not None and self._http is not None and self._http_loop is self._loop:
            asyncio.run_coroutine_threadsafe(self._http.aclose(), self._loop).result(5)
            self._http = self._http_loop = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()
            self._loop = self._thread = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _http_client(self) -> httpx.AsyncClient:
        """The connection pool of the running event loop (the panels' requests reuse its
        connections instead of building a client and connecting each time)."""
        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            # plain http (a local server): no TLS context to build, ~0.1 s on a first request
            verify = _tls_context() if self.api.startswith("https:") else False
            self._http, self._http_loop = httpx.AsyncClient(timeout=self.timeout, verify=verify), loop
        return self._http

    async def _request(self, method: str, path: str, *, json: Any = None, raw: bool = False) -> Any:
        r = await self._http_client().request(method, self.api + path, json=json, headers=self._headers())
        if r.status_code >= 400:
            try:
                body = r.json()
                raise ClientError(r.status_code, body.get("error", r.text), body.get("parameter"))
            except ValueError:
                raise ClientError(r.status_code, r.text) from None
        return r.content if raw else r.json()

    # -- public API ------------------------------------------------------------------

    def whoami(self) -> dict:
        """The caller's tier and limits."""
        return self.sync(self._request, "GET", "/whoami")

    def instruments(self) -> list[dict]:
        return self.sync(self._request, "GET", "/instruments")

    def instrument(self, name: str) -> dict:
        """An instrument with every product's parameter schema."""
        return self.sync(self._request, "GET", f"/instruments/{name}")

    def submit(self, instrument: str, product: str, *, query_type: str = "Real", **params: Any) -> dict:
        """Submit a request; an identical earlier request returns the same job at once."""
        body = {"instrument": instrument, "product": product, "params": params, "query_type": query_type,
                "session_id": self.session_id}
        return self.sync(self._request, "POST", "/jobs", json=body)

    def check(self, instrument: str, product: str, **params: Any) -> dict:
        """Validate a request without submitting it: normalised parameters (a source name
        resolved to RA/DEC) and the science windows it selects against the tier limit.
        Raises :class:`ClientError` naming the parameter at fault, as ``submit`` would."""
        body = {"instrument": instrument, "product": product, "params": params}
        return self.sync(self._request, "POST", "/check", json=body)

    def cluster(self) -> dict:
        """The Dask cluster jobs run on (workers, threads, memory, dashboard) and tier limits."""
        return self.sync(self._request, "GET", "/cluster")

    def status(self, job_id: str) -> dict:
        return self.sync(self._request, "GET", f"/jobs/{job_id}")

    def jobs(self) -> list[dict]:
        """My jobs, newest first."""
        return self.sync(self._request, "GET", f"/jobs?session_id={self.session_id}")

    def cancel(self, job_id: str) -> dict:
        return self.sync(self._request, "DELETE", f"/jobs/{job_id}?session_id={self.session_id}")

    def feedback(self, job_id: str) -> list[dict]:
        return self.sync(self._request, "GET", f"/jobs/{job_id}/feedback")

    def banners(self) -> list[dict]:
        return self.sync(self._request, "GET", "/banner")

    def wait(self, job_id: str, timeout: float | None = None, progress: bool = True) -> dict:
        """Poll until the job is finished, with a tqdm progress bar; returns the job."""
        return self.sync(self._wait, job_id, timeout, progress)

    async def _wait(self, job_id: str, timeout: float | None, progress: bool) -> dict:
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=100, unit="%", desc=job_id[:8], bar_format="{l_bar}{bar}| {postfix}")
        end = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                job = await self._request("GET", f"/jobs/{job_id}")
                if bar is not None:
                    bar.n = round(100 * float(job.get("progress") or 0))
                    bar.set_postfix_str(progress_text(job))
                    bar.refresh()
                if job["finished"]:
                    return job
                if end is not None and time.monotonic() > end:
                    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
                await asyncio.sleep(self.poll_interval)
        finally:
            if bar is not None:
                bar.close()

    def products(self, job_id: str) -> list[FetchedProduct]:
        """The products of a finished job as astropy objects (``HDUList``; ``.table()``, ``.wcs()``)."""
        return self.sync(self._products, job_id)

    async def _products(self, job_id: str) -> list[FetchedProduct]:
        from astropy.io import fits

        listing = await self._request("GET", f"/jobs/{job_id}/products")
        out = []
        for entry in listing["products"]:
            prod = FetchedProduct(entry["name"], entry["kind"], entry.get("meta") or {})
            if entry.get("fits"):
                data = await self._request("GET", f"/jobs/{job_id}/products/{entry['fits']}", raw=True)
                if data[:6] == b"SIMPLE":
                    prod.hdul = fits.HDUList([h.copy() for h in fits.open(io.BytesIO(data))])
                else:  # a non-FITS data file (e.g. POLAR's ROOT file): its bytes
                    prod.raw = data
            if entry.get("png"):
                prod.png = await self._request("GET", f"/jobs/{job_id}/products/{entry['png']}", raw=True)
            out.append(prod)
        return out

    def run(self, instrument: str, product: str, *, timeout: float | None = None,
            progress: bool = True, **params: Any) -> list[FetchedProduct]:
        """Submit, wait and fetch; raises :class:`ClientError` if the job failed."""
        return self.sync(self._run, instrument, product, timeout, progress, params)

    async def _run(self, instrument, product, timeout, progress, params) -> list[FetchedProduct]:
        job = await self._request("POST", "/jobs", json={"instrument": instrument, "product": product,
                                                         "params": params})
        job = await self._wait(job["job_id"], timeout, progress)
        if job["status"] != "done":
            raise ClientError(409, job.get("error") or f"job {job['job_id']} {job['status']}")
        return await self._products(job["job_id"])
