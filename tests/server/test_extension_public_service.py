"""``mmoda serve`` as a managed JupyterHub service (the public dispatcher ``mmoda``): without
``--port``/``--base-url`` it listens where the hub routes to (``JUPYTERHUB_SERVICE_URL``,
``JUPYTERHUB_SERVICE_PREFIX``), and the platform's e-mail settings reach its notifier.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
from extension_helpers import free_port

from mmoda_ext.server.hubenv import mail_config, service_address


def test_serve_listens_where_the_hub_routes(tmp_path, archive_dir):
    port = free_port()
    env = dict(os.environ, JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",
               JUPYTERHUB_SERVICE_PREFIX="/services/mmoda/", MMODA_ARCHIVE=str(archive_dir),
               MMODA_TOKEN_SECRET="x" * 32, PYTHONUNBUFFERED="1")
    env.pop("MMODA_ARCHIVE_URL", None)
    log = tmp_path / "serve.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "mmoda_ext.cli", "serve", "--root", str(tmp_path / "jobs"),
                                 "--compute", "serial"], env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/services/mmoda"
        r = None
        deadline = time.monotonic() + 60
        while r is None and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(url + "/api/v1/whoami", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert r is not None, log.read_text()
        assert r.status_code == 200 and r.json()["tier"] == "anonymous" and r.json()["max_scw"] == 50
        assert f"listening on http://127.0.0.1:{port}/services/mmoda/" in log.read_text()
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/whoami", timeout=5).status_code == 404
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_platform_environment(monkeypatch):
    for key in ("JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_SERVICE_PREFIX", "MMODA_SMTP_HOST"):
        monkeypatch.delenv(key, raising=False)
    assert service_address() == (None, None)
    assert not mail_config()  # no SMTP host: no e-mails, as before
    monkeypatch.setenv("MMODA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MMODA_SMTP_PORT", "2525")
    monkeypatch.setenv("MMODA_MAIL_SENDER", "hub@example.org")
    cfg = mail_config("https://hub.example.org/user/jane/mmoda")
    assert cfg.JobManager.notifier_class == "mmoda_ext.jobs.notify.EmailNotifier"
    assert (cfg.EmailNotifier.smtp_server, cfg.EmailNotifier.smtp_port, cfg.EmailNotifier.sender) == (
        "127.0.0.1", 2525, "hub@example.org")
    assert cfg.EmailNotifier.products_url == "https://hub.example.org/user/jane/mmoda"
