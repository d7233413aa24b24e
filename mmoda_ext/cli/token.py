"""``mmoda token issue``: an operator issues a MMODA token (printed once, never logged)."""

from __future__ import annotations

import argparse
import os
import sys

from ..access.tokens import KNOWN_ROLES, decode_token, issue_token


def _duration(text: str) -> float:
    """``3600``, ``90m``, ``24h``, ``7d`` -> seconds."""
    text = text.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(text[-1:], None)
    return float(text[:-1]) * scale if scale else float(text)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("token", help="issue or inspect MMODA tokens (HS256, MMODA claims and roles)")
    action = p.add_subparsers(dest="token_action", metavar="ACTION")
    action.required = True
    issue = action.add_parser("issue", help="print a new token")
    issue.add_argument("--sub", required=True, help="the user's id (their e-mail, as in MMODA)")
    issue.add_argument("--email", default=None, help="e-mail (default: --sub)")
    issue.add_argument("--name", default=None, help="display name")
    issue.add_argument("--roles", default="general",
                       help="comma-separated roles, e.g. general,unige-hpc-full (known: " + ", ".join(KNOWN_ROLES) + ")")
    issue.add_argument("--lifetime", default="24h", type=_duration, help="e.g. 3600, 90m, 24h, 7d (default 24h)")
    issue.add_argument("--secret", default=None, help="HS256 secret (default: $MMODA_TOKEN_SECRET)")
    issue.add_argument("--no-email-on-submit", action="store_true", help="mssub=false")
    show = action.add_parser("show", help="verify a token and print its claims (not the token)")
    show.add_argument("token")
    show.add_argument("--secret", default=None, help="HS256 secret (default: $MMODA_TOKEN_SECRET)")
    return p


def _secret(args) -> str:
    secret = args.secret or os.environ.get("MMODA_TOKEN_SECRET", "")
    if not secret:
        print("mmoda token: no secret: pass --secret or set MMODA_TOKEN_SECRET", file=sys.stderr)
        raise SystemExit(2)
    return secret


def main(args) -> int:
    secret = _secret(args)
    if args.token_action == "issue":
        extra = {"mssub": False} if args.no_email_on_submit else {}
        print(issue_token(secret, args.sub, email=args.email, name=args.name, roles=args.roles,
                          lifetime=args.lifetime, **extra))
        return 0
    import json

    print(json.dumps(decode_token(args.token, secret), indent=2, sort_keys=True))
    return 0
