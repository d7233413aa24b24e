"""The offline sky view's assets, served by the Jupyter server on authenticated routes.

ipyaladin imports aladin-lite from a CDN (esm.sh) and its default survey from CDS; neither is
reachable offline. These routes serve, relative to where the extension mounts them
(``<base_url>mmoda/``):

``skyview/aladin.js``        aladin-lite 3.9.2-beta's self-contained ES module, from npm
                             (installed by ``make venv`` / ``binder/postBuild`` into
                             ``<sys.prefix>/share/mmoda/aladin-lite/aladin.js``; env
                             ``MMODA_ALADIN_JS`` overrides), nothing downloaded at run time
``skyview/widget.js``        ipyaladin's own front-end with its one CDN import pointed at
                             ``./aladin.js``
``skyview/hips/blank/...``   a black base HiPS (order 0, 12 PNG tiles, the all-sky preview
                             and an all-sky MOC) so Aladin never asks CDS for a survey

``mmoda_widgets.panels.skyview.SkyView`` loads ``widget.js`` from here. Every route requires
the Jupyter login (the hub user, or the lab token), unlike ``/static/``.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import zlib
from functools import lru_cache
from pathlib import Path

from tornado import web

__all__ = ["ALADIN_VERSION", "aladin_js_path", "blank_tile", "default_handlers", "widget_js"]

ALADIN_VERSION = "3.9.2-beta"
CDN_IMPORT = f"https://esm.sh/aladin-lite@{ALADIN_VERSION}"
TILE = 64

HIPS_PROPERTIES = f"""creator_did = ivo://mmoda.local/blank
obs_title = Blank sky (offline base layer)
dataproduct_type = image
hips_version = 1.4
hips_frame = equatorial
hips_order = 0
hips_order_min = 0
hips_tile_width = {TILE}
hips_tile_format = png
hips_initial_fov = 180
"""


def aladin_js_path() -> Path:
    """Where the npm aladin-lite module is installed (``MMODA_ALADIN_JS`` overrides)."""
    env = os.environ.get("MMODA_ALADIN_JS")
    return Path(env) if env else Path(sys.prefix) / "share" / "mmoda" / "aladin-lite" / "aladin.js"


@lru_cache(maxsize=1)
def widget_js() -> bytes:
    """ipyaladin's front-end module importing aladin-lite from beside it instead of esm.sh."""
    import ipyaladin

    text = (Path(ipyaladin.__file__).parent / "static" / "widget.js").read_text()
    if CDN_IMPORT not in text:
        raise RuntimeError(f"ipyaladin's widget.js does not import {CDN_IMPORT}: another ipyaladin version?")
    return text.replace(CDN_IMPORT, "./aladin.js").encode()


@lru_cache(maxsize=4)
def blank_tile(width: int = TILE, height: int = TILE) -> bytes:
    """A black, opaque PNG (written here: no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


CACHE_SECONDS = 7 * 86400


@lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int, size: int) -> bytes:
    """A file's bytes, read again only when it changes (aladin.js is 2.6 MB)."""
    return Path(path).read_bytes()


@lru_cache(maxsize=32)
def _digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=12).hexdigest()


@lru_cache(maxsize=1)
def full_sky_moc() -> bytes:
    """The blank HiPS's coverage as a MOC (IVOA MOC 1.1 FITS): the 12 order-0 cells, all sky."""
    import io

    from astropy.io import fits

    uniq = fits.Column(name="UNIQ", format="1J", array=[4 + i for i in range(12)])
    table = fits.BinTableHDU.from_columns([uniq])
    table.header.update({"PIXTYPE": "HEALPIX", "ORDERING": "NUNIQ", "COORDSYS": "C", "MOCORDER": 0,
                         "MOCVERS": "1.1", "MOCDIM": "SPACE", "MOCTOOL": "mmoda_ext"})
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(buf)
    return buf.getvalue()


def _base():
    try:  # inside a Jupyter server: its login (hub user or token) protects the routes
        from jupyter_server.base.handlers import JupyterHandler

        return JupyterHandler
    except ImportError:  # pragma: no cover - jupyter_server is a dependency of the hub extra
        return web.RequestHandler


class _Asset(_base()):
    """The path may carry the page's ``_xsrf`` token (``skyview/t/<token>/...``): a module
    import or an Aladin fetch is a ``cors``-mode GET, for which JupyterHub's cookie login needs
    the token (else it redirects to the login, in a loop); relative URLs inside the module and
    the HiPS keep it."""

    async def prepare(self, *args, **kwargs):
        token = self.path_kwargs.pop("xsrf", None)
        if token and token != "-":
            self.request.headers["X-Xsrftoken"] = token
        return await super().prepare(*args, **kwargs)

    def send(self, body: bytes, ctype: str) -> None:
        """Cached by the browser for a week (the user's own cache: ``private``), then revalidated
        by ETag (a 304 without the body): aladin-lite is fetched once, not per sky view."""
        tag = f'"{_digest(body)}"'
        self.set_header("Content-Type", ctype)
        self.set_header("Cache-Control", f"private, max-age={CACHE_SECONDS}")
        self.set_header("Etag", tag)
        if self.check_etag_header():
            self.set_status(304)
            return self.finish()
        self.finish(body)


class AladinHandler(_Asset):
    @web.authenticated
    def get(self) -> None:
        path = aladin_js_path()
        if not path.is_file():
            raise web.HTTPError(404, f"aladin-lite is not installed at {path}: run `make venv` "
                                     "(npm pack aladin-lite) or set MMODA_ALADIN_JS")
        stat = path.stat()
        self.send(_read(str(path), stat.st_mtime_ns, stat.st_size), "text/javascript; charset=utf-8")


class WidgetHandler(_Asset):
    @web.authenticated
    def get(self) -> None:
        self.send(widget_js(), "text/javascript; charset=utf-8")


class HipsHandler(_Asset):
    @web.authenticated
    def get(self, path: str) -> None:
        if path == "properties":
            return self.send(HIPS_PROPERTIES.encode(), "text/plain; charset=utf-8")
        name = path.split("/")
        if (len(name) == 3 and name[0] == "Norder0" and name[1] == "Dir0"
                and name[2] in {f"Npix{i}.png" for i in range(12)}):
            return self.send(blank_tile(), "image/png")
        if path == "Moc.fits":  # the whole sky: Aladin asks for it and otherwise handles a 404
            return self.send(full_sky_moc(), "application/fits")
        if path == "Norder3/Allsky.png":  # the low-resolution all-sky preview: 27 x 29 tiles
            return self.send(blank_tile(27 * 16, 29 * 16), "image/png")
        raise web.HTTPError(404, f"no tile {path} in the blank HiPS (order 0, Npix0..11)")


_T = r"/skyview/(?:t/(?P<xsrf>[^/]+)/)?"
default_handlers: list[tuple[str, type]] = [
    (_T + r"aladin\.js", AladinHandler),
    (_T + r"widget\.js", WidgetHandler),
    (_T + r"hips/blank/(?P<path>.+)", HipsHandler),
]
