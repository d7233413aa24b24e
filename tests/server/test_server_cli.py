"""`mmoda token issue` prints a verifiable token; `mmoda serve --generate-config` lists options."""

from __future__ import annotations

import subprocess
import sys

from mmoda_ext.access.tokens import decode_token, roles_of


def mmoda(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mmoda_ext.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_token_issue_prints_a_token_with_claims(monkeypatch):
    import os

    env = dict(os.environ, MMODA_TOKEN_SECRET="operator-secret")
    out = mmoda("token", "issue", "--sub", "ann@example.org", "--roles", "general,unige-hpc-full",
                "--lifetime", "2h", env=env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    claims = decode_token(token, "operator-secret")
    assert claims["sub"] == "ann@example.org" and roles_of(claims) == {"general", "unige-hpc-full"}
    assert 7100 < claims["exp"] - claims["iat"] <= 7200
    shown = mmoda("token", "show", token, env=env)
    assert '"sub": "ann@example.org"' in shown.stdout and token not in shown.stdout
    no_secret = mmoda("token", "issue", "--sub", "x", env={k: v for k, v in env.items() if k != "MMODA_TOKEN_SECRET"})
    assert no_secret.returncode == 2 and "MMODA_TOKEN_SECRET" in no_secret.stderr


def test_serve_generate_config_lists_traits():
    out = mmoda("serve", "--generate-config")
    assert out.returncode == 0, out.stderr
    assert "c.MMODAServe.ip" in out.stdout and "c.JobManager.concurrency" in out.stdout
