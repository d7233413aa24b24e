"""``GET /`` of ``mmoda serve``: a small HTML page saying what answers here and where to start.

A person who opens the server's address in a browser (or the hub's ``/services/mmoda/``) sees
the version, the API documents, the instruments and the three lines of ``oda_api`` that use
this very server; every link is relative to the base URL the server runs under.
"""

from __future__ import annotations

from html import escape

from .. import __version__
from ..instruments import registry
from .base import MMODAHandler
from .rest import API

__all__ = ["LandingHandler", "landing_links"]


def landing_links(prefix: str) -> dict[str, str]:
    """The documents the landing page links to, by label (paths under ``prefix``)."""
    return {
        "REST API (OpenAPI 3, YAML)": f"{prefix}{API}/openapi.yaml",
        "REST API (OpenAPI 3, JSON)": f"{prefix}{API}/openapi.json",
        "Instruments, products and descriptions (JSON)": f"{prefix}{API}/instruments",
        "Instrument names for oda_api (instr-list)": f"{prefix}/api/instr-list",
        "Who am I: tier and limits of the caller (JSON)": f"{prefix}{API}/whoami",
    }


class LandingHandler(MMODAHandler):
    """The landing page (no token needed, nothing private shown)."""

    def get(self) -> None:
        prefix = self.settings.get("mmoda_prefix", "")
        url = f"{self.request.protocol}://{self.request.host}{prefix}"
        links = "\n".join(f'<li><a href="{escape(href)}">{escape(label)}</a> <code>{escape(href)}</code></li>'
                          for label, href in landing_links(prefix).items())
        instruments = "\n".join(
            f"<li><b>{escape(name)}</b>: {escape(inst.description)} "
            f"<i>({escape(', '.join(sorted(inst.products)))})</i></li>"
            for name, inst in registry().items())
        example = (
            "from oda_api.api import DispatcherAPI\n"
            f'disp = DispatcherAPI(url="{url}")\n'
            'data = disp.get_product(instrument="isgri", product="isgri_image", src_name="Crab", '
            'RA=83.633, DEC=22.015, T1="2016-02-01T00:00:00", T2="2016-03-01T00:00:00", max_pointings=10)'
        )
        self.write_text(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MMODA Hub {__version__}</title></head>
<body style="font-family: sans-serif; max-width: 60em; margin: 2em auto">
<h1>MMODA Hub {__version__}</h1>
<p>Multi-messenger online data analysis: INTEGRAL ISGRI, JEM-X and SPI-ACS, ANTARES and POLAR
products (images, spectra, light curves, upper limits) computed on request. This server answers
the REST API under <code>{escape(prefix)}{API}/</code> and the dispatcher-compatible API used by
<code>oda_api</code> (<code>{escape(prefix)}/run_analysis</code>).</p>
<h2>API documents</h2>
<ul>
{links}
</ul>
<h2>Instruments</h2>
<ul>
{instruments}
</ul>
<h2>From Python with oda_api</h2>
<pre style="white-space: pre-wrap; background: #f4f4f4; padding: 0.6em">{escape(example)}</pre>
<p>DISPATCHER_URL for this server: <code>{escape(url)}</code>. A token (<code>token=...</code>)
raises the limits of your tier; without one the anonymous tier applies.</p>
</body></html>
""", "text/html; charset=utf-8")
