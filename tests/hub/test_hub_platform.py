"""The platform as an operator sees it: `mmoda platform` (= `make run`) answers within 60 s,
listens only on 127.0.0.1, and leaves no process behind on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from dask_gateway import Gateway, JupyterHubAuth

pytestmark = pytest.mark.integration

MMODA = str(Path(sys.executable).parent / "mmoda")


def listening(procs: list[psutil.Process]) -> dict[tuple[str, int], str]:
    """(ip, port) -> process name of every listening TCP socket of ``procs``."""
    found = {}
    for p in procs:
        try:
            for conn in p.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    found[(conn.laddr.ip, conn.laddr.port)] = " ".join(p.cmdline()[:4])
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


async def test_every_socket_of_the_running_platform_is_on_loopback(platform):
    """With a user server and a gateway cluster (scheduler + worker) running."""
    platform.login("registered").close()
    platform.spawn("registered")
    token = platform.user_token("registered")
    async with Gateway(address=f"{platform.hub_url}/services/dask-gateway",
                       proxy_address=f"gateway://127.0.0.1:{platform.ports['gateway']}",
                       auth=JupyterHubAuth(api_token=token), asynchronous=True) as gw:
        cluster = await gw.new_cluster()
        try:
            await cluster.scale(1)
            async with cluster.get_client(set_as_default=False) as client:
                await client.wait_for_workers(1, timeout=120)
            sockets = listening(platform.descendants())
        finally:
            await cluster.shutdown()
    ports = {port for _, port in sockets}
    for key in ("idp", "hub", "hub_api", "proxy_api", "gateway"):
        assert platform.ports[key] in ports, f"{key} port not listening: {sockets}"
    names = " ".join(sockets.values())
    for process in ("singleuser", "dask scheduler", "dask worker"):
        assert process in names, f"no socket of {process} seen: {sockets}"
    exposed = {k: v for k, v in sockets.items() if k[0] != "127.0.0.1"}
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_make_run_answers_within_60s_and_stops_cleanly(tmp_path):
    """`mmoda platform` as `make run` starts it: the login page within 60 s, loopback only,
    Ctrl-C stops every process it started."""
    t0 = time.monotonic()
    proc = subprocess.Popen([MMODA, "platform", "--state", str(tmp_path / "state")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    out: list[str] = []
    try:
        url = None
        while url is None:
            line = proc.stdout.readline()
            if not line:
                pytest.fail("mmoda platform exited before serving:\n" + "".join(out))
            out.append(line)
            m = re.search(r"MMODA Hub is running at (http://127\.0\.0\.1:\d+)/", line)
            if m:
                url = m.group(1)
        r = httpx.get(f"{url}/hub/login", timeout=30)
        elapsed = time.monotonic() - t0
        assert r.status_code == 200 and "Sign in with" in r.text
        assert elapsed < 60, f"login page after {elapsed:.1f} s"
        while "Ctrl-C stops everything" not in out[-1]:
            out.append(proc.stdout.readline())
        text = "".join(out)
        for user in ("registered", "hpc", "private", "admin"):
            assert re.search(rf"^\s+{user}\s+tier ", text, re.M), text
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) >= 6, [p.cmdline()[:2] for p in tree]  # launcher, idp, hub, proxy, services
        sockets = listening(tree)
        assert sockets and all(ip == "127.0.0.1" for ip, _ in sockets), sockets
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest
        assert "no process left behind" in rest
        _, alive = psutil.wait_procs(tree, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
