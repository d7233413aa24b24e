"""Dask Gateway configuration of MMODA Hub: a managed hub service, sized by the tier table.

Started by the hub (hub_config/jupyterhub_config.py) with MMODA_HUB_STATE, MMODA_GATEWAY_PORT,
MMODA_TIERS, MMODA_AUTH_REFRESH_AGE and the hub's JUPYTERHUB_* variables. Callers are hub users
(JupyterHubAuthenticator, the token needs access:services!service=dask-gateway); each cluster's
worker cores, memory, number of workers and idle timeout come from the caller's hub groups
through the tier table (mmoda_ext.access.gateway): hard caps applied by the gateway itself.

Local processes for development (UnsafeLocalBackend on loopback: no isolation between users). Production
swaps only the backend (README "The hub": KubeBackend for everyone, SlurmBackend for hpc).
"""

# ruff: noqa: F821  (`c` is provided by dask-gateway-server when it loads this file)
from __future__ import annotations

import os
import sys
from pathlib import Path

from mmoda_ext.access.gateway import cluster_options

BIN = Path(sys.executable).parent
STATE = Path(os.environ["MMODA_HUB_STATE"]).resolve()
PORT = int(os.environ["MMODA_GATEWAY_PORT"])
ADDRESS = f"127.0.0.1:{PORT}"

# private API server on a free loopback port; the Go proxy (API + dashboards + scheduler TLS)
# on the port the hub routes /services/dask-gateway/ to; never all interfaces (its default)
c.DaskGateway.address = "127.0.0.1:0"
c.Proxy.address = ADDRESS
c.Proxy.tcp_address = ADDRESS
c.Proxy.prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/dask-gateway/").rstrip("/")

c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
# the hub re-reads groups every MMODA_AUTH_REFRESH_AGE s; the gateway caches no longer
c.JupyterHubAuthenticator.cache_max_age = int(os.environ.get("MMODA_AUTH_REFRESH_AGE") or 300)

# UnsafeLocalBackend with schedulers and dashboards on 127.0.0.1 (its default is 0.0.0.0)
c.DaskGateway.backend_class = "mmoda_ext.platform.gateway_backend.LoopbackLocalBackend"
c.UnsafeLocalBackend.clusters_directory = str(STATE / "gateway-clusters")
c.UnsafeLocalBackend.stop_clusters_on_shutdown = True
# distributed >= 2026.6 has no dask-scheduler / dask-worker scripts (platform-stack pitfall 1)
c.ClusterConfig.scheduler_cmd = [str(BIN / "dask"), "scheduler"]
# workers (nanny and worker process) would otherwise listen on every interface
c.ClusterConfig.worker_cmd = [str(BIN / "dask"), "worker", "--host", "127.0.0.1"]
c.ClusterConfig.scheduler_cores = 1
c.ClusterConfig.scheduler_memory = "1 G"

# what workers need besides the handler's MMODA_USER / MMODA_TIER
WORKER_ENV = {k: os.environ[k] for k in ("MMODA_TIERS", "PATH") if os.environ.get(k)}


def options(user):
    """Per-user cluster options: bounds and hard caps from the user's tier."""
    return cluster_options(user, environment=WORKER_ENV)


c.Backend.cluster_options = options
