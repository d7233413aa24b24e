"""Every tutorial of notebooks/ runs against the hub platform (issue 7: "against the platform of
the hub issue"), as a hub user's kernel runs it.

The kernels get exactly the environment a kernel of the user's server has (read from a real
kernel of that server): the hub's variables (MMODA_HUB, JUPYTERHUB_API_TOKEN, MMODA_ARCHIVE_URL,
DASK_GATEWAY__*) and what the extension exports (DISPATCHER_URL, ODA_TOKEN), with the user's
home. So the panels and clients talk to the user's own extension, the jobs compute on the user's
Dask Gateway cluster and the data come through the archive service; the test checks all three
afterwards. The notebooks run one after the other with nbclient, each in a new kernel, as a user
opening them in turn would; their times are printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
import nbformat
import pytest
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from extension_helpers import run_in_kernel  # noqa: E402

pytestmark = pytest.mark.integration

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
USER = "tutorials"  # a provider user of this module only, registered tier
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def server_env(platform) -> dict[str, str]:
    """The environment of a kernel of the user's server (and the user's REST API and token)."""
    platform.set_claims(USER, {"preferred_username": USER, "name": "Tu Torials", "email": "tutorials@example.org",
                               "groups": ["mmoda-registered"]})
    platform.login(USER).close()
    token = platform.user_token(USER)
    url = platform.spawn(USER).rstrip("/")
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    env = json.loads(run_in_kernel(url, {"Authorization": f"token {token}"}, code))
    env["_MMODA_TEST_API"] = url + "/mmoda/api/v1"
    env["_MMODA_TEST_TOKEN"] = token
    yield env
    platform.stop_server(USER)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs_in_a_hub_users_kernel(path, server_env, tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("JUPYTER", "MMODA", "DASK_", "ODA_", "DISPATCHER"))]:
        monkeypatch.delitem(os.environ, key)
    for key, value in server_env.items():
        if not key.startswith("_MMODA_TEST"):
            monkeypatch.setitem(os.environ, key, value)
    assert os.environ["MMODA_HUB"] == "1" and os.environ["DISPATCHER_URL"].startswith("http://127.0.0.1:")
    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    TIMES[path.stem] = time.monotonic() - start
    print(f"{path.stem}: {TIMES[path.stem]:.1f} s")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.outputs, f"{path.name}: the last cell shows nothing"


def test_the_tutorials_ran_on_the_users_gateway_cluster_with_archive_service_data(platform, server_env):
    assert len(TIMES) == len(NOTEBOOKS), "every tutorial ran first"
    print("tutorials on the hub: " + ", ".join(f"{k[:2]} {v:.0f} s" for k, v in TIMES.items())
          + f"; total {sum(TIMES.values()):.0f} s")
    headers = {"Authorization": f"token {server_env['_MMODA_TEST_TOKEN']}"}
    jobs = httpx.get(server_env["_MMODA_TEST_API"] + "/jobs", headers=headers, timeout=60).json()
    assert len(jobs) >= 8 and all(j["user"] == USER for j in jobs)
    clusters = set()
    for job in jobs:
        full = httpx.get(f"{server_env['_MMODA_TEST_API']}/jobs/{job['job_id']}", headers=headers, timeout=60).json()
        assert full["status"] == "done", full
        if full.get("compute"):
            clusters.add(full["compute"]["cluster"])
            assert full["compute"]["scheduler_address"].startswith(f"gateway://127.0.0.1:{platform.ports['gateway']}/")
    assert clusters, "no job reported a gateway cluster"
    home = platform.state / "home" / USER
    assert list((home / ".mmoda" / "archive-cache").rglob("*.fits"))  # read through mmoda-archive
    assert not (home / ".cache" / "mmoda" / "archive").exists()  # no local archive
