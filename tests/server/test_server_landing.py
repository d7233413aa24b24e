"""``mmoda serve`` greets a browser at its root and logs every request without its query string.

Real ``mmoda serve`` subprocesses (see serve_helpers): one at ``/``, one under the hub's base URL
``/services/mmoda/``; the access log is read from the process's own stderr.
"""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

import httpx
import pytest
from serve_helpers import ServeProcess

from mmoda_ext import __version__


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.pre: list[str] = []
        self._in_pre = False

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs)["href"])
        self._in_pre = self._in_pre or tag == "pre"

    def handle_endtag(self, tag):
        self._in_pre = self._in_pre and tag != "pre"

    def handle_data(self, data):
        if self._in_pre:
            self.pre.append(data)


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory, archive_dir):
    srv = ServeProcess(tmp_path_factory.mktemp("serve-prefixed"), archive_dir,
                       "--MMODAServe.base_url=/services/mmoda/").start()
    yield srv
    srv.stop()


def _check_landing(base: str, root: str) -> None:
    r = httpx.get(root, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert f"MMODA Hub {__version__}" in r.text
    page = _Links()
    page.feed(r.text)
    origin = re.match(r"https?://[^/]+", base).group(0)
    prefix = base[len(origin):]
    assert any(h.endswith("/api/v1/openapi.yaml") for h in page.links)
    assert any(h.endswith("/api/v1/instruments") for h in page.links)
    for href in page.links:
        assert href.startswith(prefix + "/"), href
        answer = httpx.get(origin + href, timeout=10)
        assert answer.status_code == 200, (href, answer.text[:300])
    assert "isgri" in httpx.get(origin + prefix + "/api/v1/instruments", timeout=10).text
    example = "".join(page.pre).splitlines()
    assert len(example) == 3
    assert example[0] == "from oda_api.api import DispatcherAPI"
    assert example[1] == f'disp = DispatcherAPI(url="{base}")'
    assert example[2].startswith('data = disp.get_product(instrument="isgri"')


def test_landing_page_at_root(server):
    _check_landing(server.url, server.url + "/")


def test_landing_page_under_base_url(prefixed):
    assert prefixed.url.endswith("/services/mmoda")
    _check_landing(prefixed.url, prefixed.url + "/")
    _check_landing(prefixed.url, prefixed.url)  # without the trailing slash as well
    # the base URL is the only root: the bare server root is not the landing page
    origin = re.match(r"https?://[^/]+", prefixed.url).group(0)
    assert httpx.get(origin + "/", timeout=10).status_code == 404


def test_requests_logged_without_query_string(server):
    err = server.workdir / "serve.err"
    r = httpx.get(server.url + "/api/v1/whoami?token=SECRETTOKEN123&session_id=SESSIONXYZ789", timeout=10)
    assert r.status_code == 403  # not a valid token: refused, and logged as such
    r = httpx.get(server.url + "/api/v1/instruments?session_id=SESSIONXYZ789", timeout=10)
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "/api/v1/instruments 200" not in err.read_text():
        time.sleep(0.1)
    log = err.read_text()
    # at the default log level: method, path, status, milliseconds
    assert re.search(r"GET /api/v1/instruments 200 \d+\.\dms", log), log[-2000:]
    assert re.search(r"GET /api/v1/whoami 403 \d+\.\dms", log), log[-2000:]
    assert "SECRETTOKEN123" not in log
    assert "SESSIONXYZ789" not in log
    assert "token=" not in log and "?" not in "".join(
        line for line in log.splitlines() if "/api/v1/" in line)
