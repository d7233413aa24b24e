"""The public service ``mmoda`` behind the hub's proxy: anonymous limits per real client.

The hub's proxy appends the caller's address to ``X-Forwarded-For`` and the service believes it
from 127.0.0.1 only (``--MMODAServe.trusted_proxies``), so two anonymous clients behind the
proxy have their own request budgets (the hub tests' table: 3 new anonymous requests per hour)
instead of sharing the proxy's. The clients here are two real source addresses on loopback
(127.0.0.2 and 127.0.0.3); what a client writes in the header itself does not make it another.
"""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration


def submit(platform, source: str, index_min: float, forwarded: str | None = None) -> httpx.Response:
    """A new anonymous request from ``source`` (ANTARES upper limit; each index_min is a new job)."""
    body = {"instrument": "antares", "product": "antares_spectrum", "params": {"index_min": index_min}}
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60) as client:
        return client.post(f"{platform.hub_url}/services/mmoda/api/v1/jobs", json=body, headers=headers)


def test_two_anonymous_clients_behind_the_proxy_have_separate_request_limits(platform):
    first, second = "127.0.0.2", "127.0.0.3"
    for i in range(3):
        r = submit(platform, first, 1.5 + 0.1 * i)
        assert r.status_code in (200, 201), r.text
    r = submit(platform, first, 1.9)
    assert r.status_code == 429, r.text
    assert "'anonymous' allows 3 per hour" in r.json()["error"]
    # claiming another address in the header does not give the first client a new budget
    r = submit(platform, first, 2.0, forwarded="198.51.100.7")
    assert r.status_code == 429, r.text
    # the other client has its whole budget; a repeat is free for the first one
    r = submit(platform, second, 1.9)
    assert r.status_code in (200, 201), r.text
    assert submit(platform, first, 1.5).status_code in (200, 201)
