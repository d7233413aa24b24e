"""What the native client and the command line say: a token signed with another secret, the progress words."""

import pytest
from serve_helpers import SECRET

from mmoda_ext.access.tokens import INVALID_MESSAGE, issue_token
from mmoda_ext.client import Client, ClientError


def test_client_says_the_secret_does_not_match(server):
    other = issue_token("a-different-secret", "jane@example.org", roles="general")
    with pytest.raises(ClientError) as exc:
        Client(server.url, token=other).jobs()
    msg = exc.value.message
    assert exc.value.status == 403
    assert "does not match" in msg and "MMODA_TOKEN_SECRET" in msg and "both terminals" in msg
    assert "cookies" not in msg  # not the browser's advice


def test_dispatcher_door_keeps_mmodas_sentence(server):
    import httpx

    other = issue_token("a-different-secret", "jane@example.org", roles="general")
    r = httpx.get(server.url + "/api/instr-list", params={"token": other}, timeout=30)
    assert r.status_code == 403 and INVALID_MESSAGE in r.text  # oda_api expects MMODA's text


def test_token_show_names_the_mismatch_and_accepts_the_right_secret(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    mmoda = str(Path(sys.executable).with_name("mmoda"))
    token = issue_token(SECRET, "jane@example.org", roles="general")
    env = {k: v for k, v in os.environ.items() if k != "MMODA_TOKEN_SECRET"}
    bad = subprocess.run([mmoda, "token", "show", token], capture_output=True, text=True,
                         env=env | {"MMODA_TOKEN_SECRET": "another"}, stdin=subprocess.DEVNULL)
    assert bad.returncode == 2
    assert "does not match this MMODA_TOKEN_SECRET" in bad.stderr and "both terminals" in bad.stderr
    assert "cookies" not in bad.stderr and "Traceback" not in bad.stderr
    good = subprocess.run([mmoda, "token", "show", token], capture_output=True, text=True,
                          env=env | {"MMODA_TOKEN_SECRET": SECRET}, stdin=subprocess.DEVNULL)
    assert good.returncode == 0 and '"sub": "jane@example.org"' in good.stdout


def test_client_progress_bar_says_each_word_once(server, capsys):
    from serve_helpers import make_token

    with Client(server.url, token=make_token()) as c:
        job = c.submit("empty", "numerical", query_type="Dummy", p=11)
        job = c.wait(job["job_id"], timeout=30, progress=True)
    err = capsys.readouterr().err
    assert job["status"] == "done" and "done" in err
    for word in ("submitted", "done", "progress", "running"):
        assert f"{word} {word}" not in err
