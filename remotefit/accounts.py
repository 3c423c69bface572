"""``remotefit users`` and ``remotefit tokens``: accounts, on the configured database directly.

Run where the server's settings are (its ``REMOTEFIT_*`` variables): the commands need the
database and the key that tokens are hashed under. A new token is printed alone on the last
line, so ``TOKEN=$(remotefit users add ana | tail -1)`` keeps it.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.settings import Settings

COMMANDS = ("users", "tokens")
ACTOR = "cli"


def _quota_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-running", type=int, help="running jobs at once (more wait)")
    parser.add_argument("--max-queued", type=int, help="jobs waiting at once (more are refused)")
    parser.add_argument("--max-storage", type=int, help="bytes of datasets")
    parser.add_argument("--max-job-seconds", type=int, help="longest time limit of a job")
    parser.add_argument("--weight", type=float, help="share of the workers in fair turns")


def add_commands(commands: Any) -> None:
    """Add ``users`` and ``tokens`` to the ``remotefit`` argument parser."""
    users = commands.add_parser("users", help="add, list, disable or change users")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a user; prints their first token last")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may see and manage everything")
    _quota_options(add)
    actions.add_parser("list", help="every user, their quotas and weight")
    disable = actions.add_parser("disable", help="a user's tokens stop working at once")
    disable.add_argument("name")
    change = actions.add_parser("set", help="change a user's quotas or weight")
    change.add_argument("name")
    _quota_options(change)

    tokens = commands.add_parser("tokens", help="create or revoke tokens")
    actions = tokens.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new token for a user, printed last")
    create.add_argument("--user", required=True)
    create.add_argument("--scopes", help="comma-separated, e.g. jobs:read,jobs:write")
    create.add_argument("--expires-days", type=float)
    revoke = actions.add_parser("revoke", help="a token stops working at once")
    revoke.add_argument("token_id")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run one accounts command; a refused change prints why and returns 2."""
    from models.db import session_scope
    from models.errors import ServiceError

    try:
        with session_scope(settings.database_url) as session:
            lines = _run(session, args, settings)
    except ServiceError as error:
        print(f"remotefit: {error.message}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _run(session: Any, args: argparse.Namespace, settings: Settings) -> list[str]:
    from models.accounts import keys, tokens, users

    quotas = {q: getattr(args, q, None) for q in ("max_running", "max_queued", "max_storage")}
    key = keys.server_key(settings)
    if args.command == "users" and args.action == "add":
        user = users.add(session, args.name, ACTOR, args.admin, args.weight or 1.0, **quotas)
        token, secret = tokens.create(session, user, key, ACTOR)
        return [
            f"user {user.name} added{' (admin)' if user.admin else ''}; token {token.id}:",
            secret,
        ]
    if args.command == "users" and args.action == "list":
        return [
            json.dumps(
                {
                    "name": u.name,
                    "admin": u.admin,
                    "disabled": u.disabled,
                    "weight": u.weight,
                    **{q: getattr(u, q) for q in quotas},
                }
            )
            for u in users.listing(session)
        ] or ["no users"]
    if args.command == "users" and args.action == "disable":
        users.disable(session, args.name, ACTOR)
        return [f"user {args.name} disabled"]
    if args.command == "users":
        users.change(session, users.get(session, args.name), ACTOR, args.weight, **quotas)
        return [f"user {args.name} changed"]
    if args.action == "create":
        scopes = args.scopes.split(",") if args.scopes else None
        user = users.get(session, args.user)
        token, secret = tokens.create(session, user, key, ACTOR, scopes, args.expires_days)
        return [f"token {token.id} for {user.name}: {' '.join(token.scopes)}", secret]
    tokens.revoke(session, args.token_id, ACTOR)
    return [f"token {args.token_id} revoked"]
