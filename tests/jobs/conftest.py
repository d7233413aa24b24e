"""Fixtures of the job-engine tests: a toy instrument, managers on a temporary root, a real SMTP server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobs_toy import MailBox, ToyInstrument, free_port  # noqa: E402

from mmoda_ext.access.rights import Rights  # noqa: E402
from mmoda_ext.jobs.manager import JobManager  # noqa: E402


@pytest.fixture
def toy(tmp_path) -> ToyInstrument:
    return ToyInstrument(tmp_path / "log")


@pytest.fixture
def alice() -> Rights:
    return Rights(user="alice@example.org", tier="registered", email="alice@example.org", requests_per_hour=1000)


@pytest.fixture
def bob() -> Rights:
    return Rights(user="bob@example.org", tier="registered", email="bob@example.org", requests_per_hour=1000)


@pytest.fixture
def make_manager(tmp_path, toy):
    """Build managers on one root (serial compute by default); all are closed at the end."""
    made: list[JobManager] = []

    def make(start: bool = True, **kw) -> JobManager:
        kw.setdefault("root", str(tmp_path / "root"))
        kw.setdefault("compute", "serial")
        kw.setdefault("retry_delay", 0.0)
        kw.setdefault("progress_interval", 0.0)
        kw.setdefault("instruments", {"toy": toy})
        m = JobManager(**kw)
        made.append(m)
        if start:
            m.start_sync()
        return m

    yield make
    for m in made:
        m.close()


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 (aiosmtpd); yields (mailbox, port)."""
    from aiosmtpd.controller import Controller

    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
