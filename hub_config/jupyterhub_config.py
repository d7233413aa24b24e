"""JupyterHub configuration of MMODA Hub, read only from the environment.

`mmoda platform` (`make run`) and the hub tests set these variables; an operator sets them to
point the same file at a real OpenID Connect provider (README, "The hub").

Required: MMODA_HUB_STATE (the run's folder: database, secrets, homes, logs), MMODA_HUB_PORT
(public proxy), MMODA_HUB_API_PORT (hub API), MMODA_PROXY_API_PORT, MMODA_GATEWAY_PORT,
OAUTH2_AUTHORIZE_URL, OAUTH2_TOKEN_URL, OAUTH2_USERDATA_URL, OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET.
Optional: MMODA_ARCHIVE_PORT, MMODA_PUBLIC_PORT, MMODA_DASHBOARDS_PORT (their services), MMODA_TIERS,
MMODA_ARCHIVE, MMODA_TOKEN_SECRET, MMODA_SMTP_HOST, MMODA_SMTP_PORT, MMODA_MAIL_SENDER,
MMODA_AUTH_REFRESH_AGE (s, default 300), MMODA_SERVER_IDLE_TIMEOUT (s, default 3600),
MMODA_HUB_PUBLIC_URL (default http://127.0.0.1:$MMODA_HUB_PORT), MMODA_OAUTH_SCOPE (default
"openid profile email"), MMODA_USERNAME_CLAIM (default preferred_username), MMODA_GROUPS_CLAIM
(default groups), MMODA_LOGIN_SERVICE (the login button's text), MMODA_PLATFORM_TOKEN (a token
of the `mmoda-platform` service, used by the launcher and the tests), JUPYTERHUB_CRYPT_KEY
(default: created once in the state folder and kept, so auth_state survives restarts).
"""

# ruff: noqa: F821  (`get_config` is provided by JupyterHub when it loads this file)
from __future__ import annotations

import importlib.util
import os
import secrets
import sys
from pathlib import Path

from mmoda_ext.access.tiers import TierTable, default_tiers_path

c = get_config()

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent  # the environment the hub runs in also runs everything else
STATE = Path(os.environ["MMODA_HUB_STATE"]).resolve()
LOCAL = "127.0.0.1"


def env_port(name: str) -> int | None:
    """A port from the environment (None when unset), with a clear error when malformed."""
    value = os.environ.get(name)
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{name}={value!r} is not a port number (1-65535)")
    return int(value)


def kept_secret(name: str, make) -> str:
    """A secret created once in the state folder (mode 0600) and read back on every start."""
    path = STATE / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text().strip()


def has_module(name: str) -> bool:
    """Services built by other parts of the project start only once their module exists."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


HUB_PORT = env_port("MMODA_HUB_PORT")
HUB_API_PORT = env_port("MMODA_HUB_API_PORT")
PROXY_API_PORT = env_port("MMODA_PROXY_API_PORT")
GATEWAY_PORT = env_port("MMODA_GATEWAY_PORT")
ARCHIVE_PORT = env_port("MMODA_ARCHIVE_PORT")
PUBLIC_PORT = env_port("MMODA_PUBLIC_PORT")
DASHBOARDS_PORT = env_port("MMODA_DASHBOARDS_PORT")
PUBLIC_URL = os.environ.get("MMODA_HUB_PUBLIC_URL") or f"http://{LOCAL}:{HUB_PORT}"
TIERS = str(default_tiers_path())  # $MMODA_TIERS, else the checkout's or the packaged table
TABLE = TierTable.load(TIERS)
REFRESH_AGE = int(os.environ.get("MMODA_AUTH_REFRESH_AGE") or 300)
PATH = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
for d in ("home", "logs"):
    (STATE / d).mkdir(parents=True, exist_ok=True)

# --- the hub and its proxy, on loopback -----------------------------------------------------
c.JupyterHub.ip = LOCAL
c.JupyterHub.port = HUB_PORT
c.JupyterHub.hub_ip = LOCAL
c.JupyterHub.hub_port = HUB_API_PORT
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "secrets" / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
# configurable-http-proxy (PyPI) that also answers websocket subprotocols (Dask dashboards)
c.ConfigurableHTTPProxy.command = [sys.executable, "-m", "mmoda_ext.platform.chp"]
c.ConfigurableHTTPProxy.api_url = f"http://{LOCAL}:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.should_start = True

# --- login: any OpenID Connect provider; its `groups` claim becomes the hub groups ----------
REGISTERED = "mmoda-registered"


GROUPS_CLAIM = os.environ.get("MMODA_GROUPS_CLAIM") or "groups"  # CILogon: isMemberOf


def provider_groups(auth_state: dict) -> set[str]:
    """The provider's groups, plus mmoda-registered: every login is at least registered."""
    claimed = (auth_state.get("oauth_user") or {}).get(GROUPS_CLAIM) or []
    if isinstance(claimed, str):
        claimed = [claimed]
    return {str(g) for g in claimed} | {REGISTERED}


c.JupyterHub.authenticator_class = "generic-oauth"
# authorize/token/userdata URLs, client id and secret come from OAUTH2_* / OAUTH_* (oauthenticator)
c.GenericOAuthenticator.oauth_callback_url = f"{PUBLIC_URL}/hub/oauth_callback"
c.GenericOAuthenticator.scope = (os.environ.get("MMODA_OAUTH_SCOPE") or "openid profile email").split()
c.GenericOAuthenticator.username_claim = os.environ.get("MMODA_USERNAME_CLAIM") or "preferred_username"
c.GenericOAuthenticator.login_service = os.environ.get("MMODA_LOGIN_SERVICE", "MMODA identity provider")
c.GenericOAuthenticator.enable_pkce = True
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = provider_groups
c.GenericOAuthenticator.allowed_groups = {REGISTERED}  # i.e. every login of the provider
c.GenericOAuthenticator.admin_groups = set(TABLE.admin_groups)
c.GenericOAuthenticator.enable_auth_state = True
# re-read the provider's claims (groups) this often, so a group removed there lowers the tier
c.GenericOAuthenticator.auth_refresh_age = REFRESH_AGE
c.GenericOAuthenticator.refresh_pre_spawn = True
crypt_key = os.environ.get("JUPYTERHUB_CRYPT_KEY") or kept_secret(
    "jupyterhub_crypt_key", lambda: secrets.token_hex(32))
os.environ["JUPYTERHUB_CRYPT_KEY"] = crypt_key  # read by JupyterHub's CryptKeeper

# --- user servers: local processes for development (KubeSpawner in production, README) ------
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
# jupyterhub-singleuser without jsonschema's slow optional IRI checker (halves its start-up)
c.Spawner.cmd = [sys.executable, "-m", "mmoda_ext.platform.fastimport", "singleuser"]
if os.geteuid() == 0:  # jupyter-server refuses root otherwise (no isolation here anyway)
    c.Spawner.args = ["--ServerApp.allow_root=True"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
user_env = {
    "PATH": PATH,
    "MMODA_HUB": "1",
    "MMODA_TIERS": TIERS,
    "DASK_GATEWAY__ADDRESS": f"{PUBLIC_URL}/services/dask-gateway",
    "DASK_GATEWAY__PUBLIC_ADDRESS": f"{PUBLIC_URL}/services/dask-gateway",
    "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://{LOCAL}:{GATEWAY_PORT}",
    "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
    # JupyterLab's Dask pane: "+ NEW" gives the user's own gateway cluster (the one MMODA jobs
    # use, sized by the tier), its dashboard link the owner-only guard (mmoda_ext.server.daskpane)
    "DASK_LABEXTENSION__FACTORY__MODULE": "mmoda_ext.jobs.gateway",
    "DASK_LABEXTENSION__FACTORY__CLASS": "lab_cluster",
}
if ARCHIVE_PORT:
    user_env["MMODA_ARCHIVE_URL"] = f"http://{LOCAL}:{ARCHIVE_PORT}/services/mmoda-archive/"
for key in ("MMODA_SMTP_HOST", "MMODA_SMTP_PORT", "MMODA_MAIL_SENDER"):
    if os.environ.get(key):
        user_env[key] = os.environ[key]
c.Spawner.environment = user_env


def auth_state_hook(spawner, auth_state: dict | None) -> None:
    """The provider's e-mail claim reaches the user server (MMODA e-mails go there)."""
    user = (auth_state or {}).get("oauth_user") or {}
    if user.get("email"):
        spawner.environment = {**spawner.environment, "MMODA_USER_EMAIL": str(user["email"])}


c.Spawner.auth_state_hook = auth_state_hook
# the tutorials (notebooks/) as a read-only shared copy in every home, refreshed at each spawn
c.Spawner.pre_spawn_hook = __import__("mmoda_widgets.tutorials", fromlist=["pre_spawn_hook"]).pre_spawn_hook

# --- services -------------------------------------------------------------------------------
# The server token (and so every user, through extra_user_scopes) may use the gateway and the
# archive: a token lacking the scope is refused by them (platform-stack.md pitfall 2).
access = ["access:services!service=dask-gateway"]
services: list[dict] = []
roles: list[dict] = []
service_env = {"PATH": PATH, "MMODA_HUB_STATE": str(STATE), "MMODA_TIERS": TIERS,
               "MMODA_AUTH_REFRESH_AGE": str(REFRESH_AGE)}

services.append({
    "name": "dask-gateway",
    "url": f"http://{LOCAL}:{GATEWAY_PORT}",
    "command": [str(BIN / "dask-gateway-server"), "--config", str(HERE / "dask_gateway_config.py")],
    "cwd": str(STATE),
    "environment": {**service_env, "MMODA_GATEWAY_PORT": str(GATEWAY_PORT)},
    "display": False,
})

if ARCHIVE_PORT and has_module("mmoda_ext.services.archive"):
    access.append("access:services!service=mmoda-archive")
    services.append({
        "name": "mmoda-archive",
        "url": f"http://{LOCAL}:{ARCHIVE_PORT}",
        "command": [sys.executable, "-m", "mmoda_ext.services.archive"],
        "cwd": str(STATE),
        "environment": {**service_env,
                        "MMODA_ARCHIVE": os.environ.get("MMODA_ARCHIVE") or str(STATE / "archive")},
        "display": False,
    })

if PUBLIC_PORT:
    public_env = {**service_env}
    for key in ("MMODA_TOKEN_SECRET", "MMODA_SMTP_HOST", "MMODA_SMTP_PORT", "MMODA_MAIL_SENDER"):
        if os.environ.get(key):
            public_env[key] = os.environ[key]
    if ARCHIVE_PORT:
        public_env["MMODA_ARCHIVE_URL"] = user_env["MMODA_ARCHIVE_URL"]
        # its service token reads the archive; the archive gives the service the rights of
        # ArchiveCore.service_tiers and the public service holds each caller to their own tier
        roles.append({"name": "mmoda-public-archive", "services": ["mmoda"],
                      "scopes": ["access:services!service=mmoda-archive"]})
    services.append({
        "name": "mmoda",
        "url": f"http://{LOCAL}:{PUBLIC_PORT}",
        # the hub's proxy (on this machine) adds X-Forwarded-For: anonymous callers are
        # rate-limited per real client address, not all as the proxy's 127.0.0.1
        "command": [str(BIN / "mmoda"), "serve", "--ip", LOCAL, "--port", str(PUBLIC_PORT),
                    "--base-url", "/services/mmoda/", "--root", str(STATE / "public-jobs"),
                    "--", f"--MMODAServe.trusted_proxies={LOCAL}"],
        "cwd": str(STATE),
        "environment": public_env,
    })

# The gateway's Go proxy serves every cluster's Dask dashboard under
# /services/dask-gateway/clusters/<name>/ without any authentication (pitfall 5). The hub's
# proxy therefore sends that prefix, more specific than the gateway's own route, to the
# dashboards guard (mmoda-dashboards, HubOAuth, owner only; it receives the full path
# /services/dask-gateway/clusters/<name>/... as well as its own /services/mmoda-dashboards/...).
# Until the guard exists, the prefix goes to the hub, which serves no dashboard (404).
if DASHBOARDS_PORT and has_module("mmoda_ext.services.dashboards"):
    access.append("access:services!service=mmoda-dashboards")  # any user may ask; owners see
    services.append({
        "name": "mmoda-dashboards",
        "url": f"http://{LOCAL}:{DASHBOARDS_PORT}",
        "command": [sys.executable, "-m", "mmoda_ext.services.dashboards"],
        "cwd": str(STATE),
        "environment": {**service_env, "MMODA_GATEWAY_PORT": str(GATEWAY_PORT)},
        "oauth_no_confirm": True,
        # the guard asks the gateway, with the browser's token, whether the user owns the cluster
        "oauth_client_allowed_scopes": ["access:services!service=dask-gateway"],
    })
    c.Proxy.extra_routes = {"/services/dask-gateway/clusters/": f"http://{LOCAL}:{DASHBOARDS_PORT}"}
else:
    c.Proxy.extra_routes = {"/services/dask-gateway/clusters/": f"http://{LOCAL}:{HUB_API_PORT}"}

# stop user servers idle for longer than MMODA_SERVER_IDLE_TIMEOUT (jupyterhub-idle-culler)
services.append({
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={int(os.environ.get('MMODA_SERVER_IDLE_TIMEOUT') or 3600)}"],
})
roles.append({"name": "idle-culler", "services": ["idle-culler"],
              "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]})

# the launcher's (and the tests') own service: spawns servers, mints tokens, reads groups
if os.environ.get("MMODA_PLATFORM_TOKEN"):
    services.append({"name": "mmoda-platform", "api_token": os.environ["MMODA_PLATFORM_TOKEN"]})
    roles.append({"name": "mmoda-platform", "services": ["mmoda-platform"],
                  "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users",
                             "list:groups", "read:groups", "access:servers", "access:services",
                             "admin:auth_state"]})

c.JupyterHub.services = services
c.JupyterHub.load_roles = roles
c.JupyterHub.extra_user_scopes = set(access)
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", *access]
