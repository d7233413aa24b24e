"""What the hub platform's environment configures, shared by the extension and ``mmoda serve``.

The hub sets these variables in user servers and managed services (hub-contract):
``MMODA_ARCHIVE_URL`` (the archive service), ``JUPYTERHUB_API_TOKEN`` (the caller's hub token,
which the archive service checks), ``MMODA_SMTP_HOST``/``MMODA_SMTP_PORT``/``MMODA_MAIL_SENDER``
(e-mails), ``JUPYTERHUB_SERVICE_URL``/``JUPYTERHUB_SERVICE_PREFIX`` (a managed service's
address). Without them (a laptop, Binder) nothing here applies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from traitlets.config import Config

__all__ = ["archive_from_env", "mail_config", "service_address"]


def archive_from_env(cache_dir: str | Path) -> Any:
    """``RemoteArchive`` on ``$MMODA_ARCHIVE_URL`` with the hub token, or None (local archive)."""
    url = os.environ.get("MMODA_ARCHIVE_URL")
    if not url:
        return None
    from ..archive.remote import RemoteArchive

    return RemoteArchive(url, os.environ.get("JUPYTERHUB_API_TOKEN", ""), str(cache_dir))


def mail_config(products_url: str | None = None) -> Config:
    """The ``EmailNotifier`` configuration ``mmoda serve`` takes on its command line, from
    ``MMODA_SMTP_*`` (an empty Config without ``MMODA_SMTP_HOST``)."""
    cfg = Config()
    host = os.environ.get("MMODA_SMTP_HOST")
    if not host:
        return cfg
    cfg.JobManager.notifier_class = "mmoda_ext.jobs.notify.EmailNotifier"
    cfg.EmailNotifier.smtp_server = host
    cfg.EmailNotifier.smtp_port = int(os.environ.get("MMODA_SMTP_PORT") or 25)
    if os.environ.get("MMODA_MAIL_SENDER"):
        cfg.EmailNotifier.sender = os.environ["MMODA_MAIL_SENDER"]
    if products_url:
        cfg.EmailNotifier.products_url = products_url
        cfg.EmailNotifier.dispatcher_url = products_url
        cfg.EmailNotifier.job_url = "{products_url}/api/v1/jobs/{job_id}"
    return cfg


def service_address() -> tuple[int | None, str | None]:
    """(port, base URL) of a managed hub service, from ``JUPYTERHUB_SERVICE_URL``/``_PREFIX``."""
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    port = urlparse(url).port if url else None
    return port, os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or None
