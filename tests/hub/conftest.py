"""One real platform per test session: the development provider, JupyterHub, its proxy and its
managed services, started on free loopback ports by the same launcher as ``make run``.

``platform`` is a :class:`mmoda_ext.platform.Platform` (see ``mmoda_ext/platform/client.py``):

- ``platform.login(username) -> httpx.Client`` logged in through the provider's own form
  (cookies kept; ``base_url`` = the hub)
- ``platform.user_token(username, scopes=None) -> str`` a hub API token of that user
- ``platform.spawn(username) -> str`` start the user's server, wait until ready (its URL)
- ``platform.stop_server(username)``, ``platform.user_model(username)``, ``platform.api(...)``
- ``platform.set_claims(sub, claims)`` change a user's claims at the provider
- ``platform.hub_url``, ``platform.idp_url``, ``platform.ports``, ``platform.state``
- ``platform.tiers`` the run's own copy of the tier table (small clusters: at most 2 workers
  of 1 GiB); a test that edits it must restore it
- ``platform.smtp_messages``: e-mails received by the run's SMTP server (aiosmtpd on loopback;
  the hub passes MMODA_SMTP_HOST / MMODA_SMTP_PORT / MMODA_MAIL_SENDER to user servers)

Users (hub_config/dev-users.yaml): ``registered``, ``hpc``, ``private``, ``admin``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmoda_ext.platform import Platform
from mmoda_ext.platform.launcher import HUB_CONFIG, free_port

#: the hub tests' compute limits: small clusters on a 2-core machine (platform-stack.md §6.3);
#: 1 GiB workers: a JEM-X window's decoding does not fit in 0.5 GiB (the nanny kills the worker)
TEST_LIMITS = {
    # 3 new anonymous requests per hour and client address (test_hub_public_service.py)
    "anonymous": {"max_workers": 1, "worker_memory": "1 GiB", "cluster_idle_timeout": "5 min",
                  "requests_per_hour": 3},
    "registered": {"max_workers": 1, "worker_memory": "1 GiB", "cluster_idle_timeout": "5 min"},
    "hpc": {"max_workers": 2, "worker_memory": "1 GiB", "cluster_idle_timeout": "5 min"},
    "hpc-extreme": {"max_workers": 2, "worker_memory": "1 GiB", "cluster_idle_timeout": "5 min"},
}

#: seconds between re-reads of a user's groups at the provider in the tests
AUTH_REFRESH_AGE = 5


def write_test_tiers(path: Path) -> Path:
    """A copy of the operators' table with :data:`TEST_LIMITS` (everything else unchanged)."""
    table = yaml.safe_load((HUB_CONFIG / "tiers.yaml").read_text())
    for name, limits in TEST_LIMITS.items():
        table["tiers"][name].update(limits)
    path.write_text(yaml.safe_dump(table, sort_keys=False))
    return path


class _Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's name)
        from email import message_from_bytes

        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp_server():
    from aiosmtpd.controller import Controller

    box = _Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, box
    controller.stop()


@pytest.fixture(scope="session")
def platform(tmp_path_factory, smtp_server):
    controller, box = smtp_server
    root = tmp_path_factory.mktemp("platform")
    tiers = write_test_tiers(root / "tiers.yaml")
    p = Platform(
        state=root / "state",
        tiers=tiers,
        auth_refresh_age=AUTH_REFRESH_AGE,
        env={
            "MMODA_SMTP_HOST": controller.hostname,
            "MMODA_SMTP_PORT": str(controller.port),
            "MMODA_MAIL_SENDER": "mmoda-hub@example.org",
            "MMODA_ARCHIVE": str(root / "archive"),
        },
    )
    p.smtp_messages = box.messages
    p.tiers = tiers
    p.start()
    try:
        yield p
    finally:
        p.stop()
