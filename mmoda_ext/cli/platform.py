"""``mmoda platform``: the whole hub platform on this machine, on loopback (``make run``).

Starts the development OpenID Connect provider with the users of ``hub_config/dev-users.yaml``
and JupyterHub with its proxy and services (Dask Gateway, archive, public dispatcher, dashboards
guard, idle culler) on free ports of 127.0.0.1; prints the URL, the users and what each may do;
stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "platform",
        help="run the hub platform on loopback (provider, JupyterHub, gateway, services)",
        description="Run MMODA Hub on this machine: a development OpenID Connect provider, "
        "JupyterHub, Dask Gateway, the archive and public services, all on 127.0.0.1 on free "
        "ports. Ctrl-C stops everything.",
    )
    p.add_argument("--state", default=None,
                   help="folder of the run (database, secrets, homes, logs; default: a new "
                        "temporary folder); reuse it to keep users and their homes")
    p.add_argument("--tiers", default=None, help="tier table (default $MMODA_TIERS or hub_config/tiers.yaml)")
    p.add_argument("--users", default=None, help="the provider's users (default hub_config/dev-users.yaml)")
    p.add_argument("--auth-refresh-age", type=int, default=None,
                   help="seconds between re-reads of a user's groups at the provider (default 300)")
    return p


def describe_users(users_file: Path, tiers_file: Path | None) -> list[str]:
    """One line per user of the provider: groups, tier and what the tier allows."""
    import yaml

    from ..access.tiers import TierTable

    table = TierTable.load(tiers_file)
    lines = []
    for claims in yaml.safe_load(users_file.read_text()) or []:
        name = claims.get("preferred_username") or claims["sub"]
        groups = set(claims.get("groups") or []) | {"mmoda-registered"}
        r = table.rights(name, groups=groups)
        data = "public + private data, OSA11.2-beta" if r.private_data else "public data"
        cluster = (f"Dask cluster up to {r.max_workers} workers x {r.worker_cores} cores x "
                   f"{r.worker_memory / 2**30:g} GiB, idle stop {r.cluster_idle_timeout / 60:g} min"
                   if r.max_workers else "no Dask cluster")
        admin = ", hub admin" if r.admin else ""
        lines.append(f"  {name:<12} tier {r.tier:<18} {r.max_scw} science windows/request, "
                     f"{r.requests_per_hour} requests/h, {data}, {cluster}{admin}")
    return lines


def main(args) -> int:
    from ..access.tiers import default_tiers_path
    from ..platform import Platform, PlatformError

    p = Platform(state=Path(args.state) if args.state else None,
                 tiers=Path(args.tiers) if args.tiers else None,
                 users=Path(args.users) if args.users else None,
                 auth_refresh_age=args.auth_refresh_age)
    stopping = False

    def on_term(signum, frame):  # systemd / kill: same clean stop as Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C even when started from a shell that ignores SIGINT in background jobs
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("mmoda platform: starting the identity provider and JupyterHub ...", flush=True)
    t0 = time.monotonic()
    try:
        p.start()
        tiers = Path(args.tiers) if args.tiers else default_tiers_path()
        print(f"\nMMODA Hub is running at {p.hub_url}/  (ready in {time.monotonic() - t0:.1f} s)\n"
              f"  sign in with the development provider at {p.idp_url}: there are no passwords,\n"
              f"  pick one of its users on its page (\"Authorize as <user>\").\n\nUsers:")
        print("\n".join(describe_users(p.users_file, tiers)))
        print(f"\nState folder: {p.state} (logs in {p.state / 'logs'})\nCtrl-C stops everything.",
              flush=True)
        while True:
            hub = p.procs.get("jupyterhub")
            if hub is None or hub.poll() is not None:
                print(f"mmoda platform: the hub exited; its log:\n{p.tail('jupyterhub')}", flush=True)
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        stopping = True
        return 0
    except PlatformError as exc:
        print(f"mmoda platform: {exc}", flush=True)
        return 1
    finally:
        if stopping:
            print("\nmmoda platform: stopping ...", flush=True)
        p.stop()
        if stopping:
            print("mmoda platform: stopped; no process left behind.", flush=True)
