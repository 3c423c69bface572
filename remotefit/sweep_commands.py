"""``remotefit sweep submit|show|cancel|delete`` and ``remotefit sweeps``.

``sweep submit sweep.json --watch`` follows the sweep with a live table of its trials (redrawn
in place on a terminal, a line per ended trial otherwise); exit 0 when it succeeded, 1 when it
failed or was cancelled, as for jobs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from remotefit.cli_common import print_as_asked, refer_to_uploads
from remotefit.client import Client
from remotefit.sweeps import Sweep

EXIT_OK, EXIT_FAILED = 0, 1
ENDED = ("succeeded", "pruned", "failed", "cancelled")


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``sweep`` and ``sweeps`` to the ``remotefit`` argument parser."""
    sweep = commands.add_parser("sweep", parents=[common], help="submit, show, cancel a sweep")
    sweep.add_argument("action", choices=["submit", "show", "cancel", "delete"])
    sweep.add_argument("target", help="sweep.json to submit (as for POST /v1/sweeps), or an ID")
    sweep.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help='upload FILE first; base.data refers to it as "dataset": "@FILE"',
    )
    sweep.add_argument("--watch", action="store_true", help="follow it with a table of trials")
    sweeps = commands.add_parser("sweeps", parents=[common], help="list sweeps, newest first")
    sweeps.add_argument(
        "--status", choices=["queued", "running", "succeeded", "failed", "cancelled"]
    )
    sweeps.add_argument("--limit", type=int, default=20)


def run(client: Client, args: argparse.Namespace) -> int:
    if args.command == "sweeps":
        found = client.sweeps.list(status=args.status, limit=args.limit)
        rows = [f"{s.id}  {s.status:<9}  {s.data.get('name') or ''}" for s in found]
        print_as_asked(args, [s.data for s in found], "\n".join(rows) or "no sweeps")
        return EXIT_OK
    if args.action == "submit":
        spec = json.loads(Path(args.target).read_text())
        refer_to_uploads(client, spec.get("base") or {}, args.data)
        sweep = client.sweeps.submit(spec)
        if not args.watch:
            print_as_asked(args, sweep.data, sweep.id)
            return EXIT_OK
        return follow(sweep, args)
    sweep = client.sweeps.get(args.target)
    if args.action == "cancel":
        sweep.cancel()
    elif args.action == "delete":
        sweep.delete()
        print_as_asked(args, {"deleted": sweep.id}, f"deleted {sweep.id}")
        return EXIT_OK
    if args.watch:
        return follow(sweep, args)
    print_as_asked(args, sweep.data, table(sweep.data))
    return EXIT_OK


def follow(sweep: Sweep, args: argparse.Namespace) -> int:
    """Follow the sweep's events to its end, showing its trials as they change."""
    live = sys.stdout.isatty() and not args.json
    for event in sweep.events():
        if event.type == "epoch" and not live:
            continue
        sweep.refresh()
        if live:
            print("\x1b[H\x1b[2J" + table(sweep.data), flush=True)  # redrawn in place
        elif event.type == "trial" and event.data.get("status") in ENDED and not args.json:
            value = event.data.get("value")
            print(f"trial {event.data['number']}  {event.data['status']:<9}  value {value}")
    sweep.refresh()
    print_as_asked(args, sweep.data, table(sweep.data))
    return EXIT_OK if sweep.status == "succeeded" else EXIT_FAILED


def table(sweep: dict[str, Any]) -> str:
    """The sweep and its trials, a row each, and its best."""
    objective = sweep.get("objective") or {}
    lines = [
        f"{sweep['id']}  {sweep['status']}  {sweep.get('name') or ''}".rstrip(),
        f"objective: {objective.get('direction', '')} {objective.get('metric', '')}",
    ]
    names = list(sweep.get("parameters") or {})
    header = ["#", "status", "value", "epochs", *names, "job"]
    rows = [header]
    for trial in sweep.get("trials") or []:
        value = trial.get("value")
        rows.append(
            [
                str(trial["number"]),
                trial["status"],
                "" if value is None else f"{value:.4g}",
                str(trial["epochs"]),
                *(json.dumps(trial["params"].get(name)) for name in names),
                trial.get("job") or "",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    best = sweep.get("best")
    if best:
        lines.append(f"best: trial {best['number']}  value {best['value']:.4g}  {best['params']}")
    if sweep.get("error"):
        lines.append(f"error: {sweep['error'].get('message')}")
    return "\n".join(lines)
