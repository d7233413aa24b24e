"""A real JupyterLab with the mmoda_ext extension (embedded mode) on 127.0.0.1, for the notebook
and browser tests: private HOME (jobs in ~/.mmoda), a shared test archive, a known token, and
the lab settings that keep a "Select Kernel" dialog and news checks out of the way."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from extension_helpers import LocalProcess, free_port, jupyter_command  # noqa: E402

#: user settings of the test lab; no news/update settings here: the environment's own
#: ``share/jupyter/lab/settings/overrides.d/mmoda.json`` must keep the news pop-up away
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"autoStartDefaultKernel": True},
}
NEWS_POPUP = "text=/notified about official Jupyter news/"


def shared_archive(tmp_path_factory) -> Path:
    """One archive folder per test session (per-window data generated once for every test dir)."""
    path = tmp_path_factory.getbasetemp() / "mmoda-widgets-archive"
    path.mkdir(exist_ok=True)
    return path


class LabServer(LocalProcess):
    """``jupyter lab`` as a subprocess; ``url`` and ``token`` once it answers; stopped by PID."""

    def __init__(self, workdir: Path, archive: Path, root: Path | None = None,
                 python: str = sys.executable) -> None:
        self.python = python
        self.workdir = Path(workdir)
        self.home = self.workdir / "home"
        self.root = Path(root) if root else self.workdir / "root"
        self.archive = archive
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.workdir / "lab.log"

    def env(self) -> dict[str, str]:
        settings = self.workdir / "lab-settings"
        for name, value in SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        return dict(os.environ, HOME=str(self.home), JUPYTER_TOKEN=self.token, MMODA_ARCHIVE=str(self.archive),
                    JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(self.workdir / "ws"),
                    PYTHONUNBUFFERED="1")

    def start(self, timeout: float = 120.0) -> LabServer:
        self.home.mkdir(parents=True, exist_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        cmd = jupyter_command("lab", self.port, self.root, python=self.python)
        self.spawn(cmd, env=self.env(), cwd=self.root, log=self.log, ready_url=self.url + "/mmoda/api/v1/whoami",
                   headers=self.headers, timeout=timeout)
        return self

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def kernel_env(self) -> dict[str, str]:
        """What a kernel of this server sees (the extension's variables and the lab token)."""
        return {"DISPATCHER_URL": self.url + "/mmoda", "JUPYTER_TOKEN": self.token}


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def guarded_page(browser):
    """A new page whose requests never leave 127.0.0.1: each other one is aborted and listed in
    ``page.offsite``; console lines in ``page.console``. Close with ``page.context.close()``."""
    from urllib.parse import urlparse

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    offsite: list[str] = []

    def guard(route):
        url = route.request.url
        if urlparse(url).hostname == "127.0.0.1" or url.startswith(("blob:", "data:")):
            return route.continue_()
        offsite.append(url)
        return route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.offsite, page.console = offsite, []
    page.on("console", lambda m: page.console.append(f"{m.type}: {m.text}"))
    return page


def sky_contrast(png: bytes) -> dict[str, float]:
    """Red-channel statistics of a sky-view screenshot (inferno: dark noise is low in red, a
    bright source high; the cyan source marks have none): the whole view's median and the 99th
    percentile of a 120 px box at the centre, where the view is pointed (the target)."""
    import io

    import numpy as np
    from PIL import Image

    red = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), float)[..., 0]
    h, w = red.shape
    centre = red[h // 2 - 60:h // 2 + 60, w // 2 - 60:w // 2 + 60]
    return {"median": float(np.median(red)), "centre_p99": float(np.percentile(centre, 99))}
