"""``mmoda serve``: the REST API and the oda_api-compatible API over a job manager, on loopback.

Every traitlets option of the server and the job manager can be given after ``--``,
e.g. ``mmoda serve --port 8766 --root jobs -- --JobManager.concurrency=4``.

As a managed JupyterHub service (the public dispatcher ``mmoda`` at ``/services/mmoda/``) the
port and base URL default to the hub's ``JUPYTERHUB_SERVICE_URL`` and
``JUPYTERHUB_SERVICE_PREFIX``, and the data come through the archive service when
``MMODA_ARCHIVE_URL`` is set (see :mod:`mmoda_ext.server.hubenv`).
"""

from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="serve the REST API and the oda_api-compatible API (127.0.0.1 by default)",
        description="Serve MMODA Hub's REST API (/api/v1) and the dispatcher-compatible API "
        "(/run_analysis, for oda_api) over a durable job store. Traitlets options go after '--' "
        "(mmoda serve --port 8766 -- --JobManager.concurrency=4 --MMODAServe.sync_wait=1).",
    )
    p.add_argument("--port", type=int, default=None, help="port (default 8766; 0: a free port)")
    p.add_argument("--ip", default=None, help="interface (default 127.0.0.1)")
    p.add_argument("--base-url", default=None,
                   help="URL prefix of every route (default / ; under the hub $JUPYTERHUB_SERVICE_PREFIX)")
    p.add_argument("--root", default=None, help="job store and products folder (default mmoda-jobs)")
    p.add_argument("--token-secret", default=None,
                   help="HS256 token secret (default: $MMODA_TOKEN_SECRET); prefer the environment")
    p.add_argument("--tiers", default=None, help="tier table (default hub_config/tiers.yaml)")
    p.add_argument("--compute", choices=["dask", "serial"], default=None, help="where products run")
    p.add_argument("--config", default=None, help="a traitlets config file (Python)")
    p.add_argument("--generate-config", action="store_true", help="print every option and exit")
    p.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(args) -> int:
    from ..server.app import MMODAServe
    from ..server.hubenv import service_address

    hub_port, hub_prefix = service_address()  # a managed hub service: where the hub routes to
    port = args.port if args.port is not None else hub_port
    base_url = args.base_url if args.base_url is not None else hub_prefix
    argv: list[str] = []
    for flag, value in (("port", port), ("base-url", base_url), ("ip", args.ip), ("root", args.root),
                        ("token-secret", args.token_secret), ("tiers", args.tiers),
                        ("compute", args.compute)):
        if value is not None:
            argv.append(f"--{flag}={value}")
    argv += [o for o in (args.options or []) if o != "--"]
    app = MMODAServe()
    if args.generate_config:
        print(app.generate_config_file())
        return 0
    app.initialize(argv)
    if args.config:
        app.load_config_file(args.config)
    app.start()
    return 0
