"""A hub user whose name has characters oda_api 1.3.5 refuses in a dispatcher URL ('.', '_':
``oda_api.misc_helpers.regex_url`` allows only letters, digits, '/' and '-' in the path) runs an
unchanged ``oda_api`` script in their server: the extension's ``DISPATCHER_URL`` is then its
server-local alias ``/mmoda-local`` (no user name), which the hub's proxy never routes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from oda_api.misc_helpers import validate_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from extension_helpers import ODA_API_SCRIPT, run_in_kernel  # noqa: E402

pytestmark = pytest.mark.integration

USER = "jane.doe_x"  # both characters oda_api refuses


@pytest.fixture(scope="module")
def jane(platform):
    """A provider user made for this test only (the development provider's PUT /users/<sub>)."""
    platform.set_claims(USER, {"preferred_username": USER, "name": "Jane Doe", "email": "jane@example.org",
                               "groups": ["mmoda-registered"]})
    platform.login(USER).close()
    token = platform.user_token(USER)
    url = platform.spawn(USER).rstrip("/")
    assert f"/user/{USER}/" in url + "/" and not validate_url(url + "/mmoda")  # oda_api would refuse it
    yield {"token": token, "url": url, "headers": {"Authorization": f"token {token}"}}
    platform.stop_server(USER)


def test_unchanged_oda_api_script_for_a_dotted_underscored_username(platform, jane):
    env = run_in_kernel(jane["url"], jane["headers"], "import os; print(os.environ['DISPATCHER_URL'])").strip()
    assert env.startswith("http://127.0.0.1:") and env.endswith("/mmoda-local") and USER not in env
    out = run_in_kernel(jane["url"], jane["headers"], ODA_API_SCRIPT.format(max_pointings=2))
    assert "STATUS done" in out, out
    job_id = next(ln for ln in out.splitlines() if ln.startswith("JOB")).split()[1]
    # the same job through the server's public route, as the owner
    job = httpx.get(f"{jane['url']}/mmoda/api/v1/jobs/{job_id}", headers=jane["headers"], timeout=60).json()
    assert job["user"] == USER and job["status"] == "done"


def test_the_alias_is_server_local_only(platform, jane):
    # through the hub's public port, /mmoda-local/ is the hub's (404), never a user's server
    r = httpx.get(f"{platform.hub_url}/mmoda-local/api/v1/whoami", headers=jane["headers"], timeout=60,
                  follow_redirects=True)
    assert r.status_code == 404
    # on the server's own port it needs the same credentials as /user/<name>/mmoda/
    port = run_in_kernel(jane["url"], jane["headers"],
                         "import os; print(os.environ['DISPATCHER_URL'])").strip().rsplit(":", 1)[1].split("/")[0]
    local = f"http://127.0.0.1:{port}/mmoda-local/api/v1/whoami"
    assert httpx.get(local, timeout=60).status_code == 403
    me = httpx.get(local, headers=jane["headers"], timeout=60)
    assert me.status_code == 200 and me.json()["user"] == USER, me.text
