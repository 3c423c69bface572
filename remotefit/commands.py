"""The client side of the ``remotefit`` command: submit, watch, list, download, inspect.

Exit codes scripts can use: 0 done (a watched job succeeded), 1 a watched job failed or was
cancelled, 2 the server refused the request (its message is printed), 3 no server reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from remotefit import sweep_commands
from remotefit.cli_common import print_as_asked as _print
from remotefit.cli_common import refer_to_uploads
from remotefit.client import Client
from remotefit.errors import RemoteFitError
from remotefit.progress import Progress
from remotefit.resources import Job

EXIT_OK, EXIT_JOB_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3
COMMANDS = (
    *("submit", "jobs", "show", "watch", "cancel", "weights", "datasets", "inspect", "me"),
    *("workers", "sweep", "sweeps"),
)


def add_commands(commands: Any) -> None:
    """Add the client sub-commands to the ``remotefit`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="server URL (REMOTEFIT_URL; default 127.0.0.1:8000)")
    common.add_argument("--json", action="store_true", help="machine-readable output")

    submit = commands.add_parser("submit", parents=[common], help="submit a job spec (JSON)")
    submit.add_argument("spec", type=Path, help="job.json: the job spec, as for POST /v1/jobs")
    submit.add_argument(
        "--data",
        type=Path,
        action="append",
        default=[],
        help='upload FILE first; the spec refers to it as "dataset": "@FILE" (or leave '
        '"dataset" out when there is one file)',
    )
    submit.add_argument("--watch", action="store_true", help="follow it until it ends")

    jobs = commands.add_parser("jobs", parents=[common], help="list jobs, newest first")
    jobs.add_argument(
        "--status", choices=["queued", "running", "succeeded", "failed", "cancelled", "pruned"]
    )
    jobs.add_argument("--limit", type=int, default=20)

    for name, text in (
        ("show", "one job: status, progress, history, evaluation"),
        ("watch", "live progress of a job until it ends"),
        ("cancel", "cancel a queued or running job"),
    ):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("job_id")

    weights = commands.add_parser("weights", parents=[common], help="download trained weights")
    weights.add_argument("job_id")
    weights.add_argument("-o", "--output", type=Path, required=True)
    weights.add_argument("--format", choices=["keras3", "keras2", "json"])

    datasets = commands.add_parser("datasets", parents=[common], help="upload, list, delete")
    datasets.add_argument("action", choices=["upload", "list", "delete"])
    datasets.add_argument("target", nargs="?", help="FILE to upload, or ID to delete")

    inspect = commands.add_parser("inspect", parents=[common], help="what a model JSON is")
    inspect.add_argument("model", type=Path, help="model.json (model.to_json())")

    commands.add_parser("me", parents=[common], help="who the token is: scopes, quotas, use")
    commands.add_parser("workers", parents=[common], help="live workers: devices, state, jobs")
    sweep_commands.add_commands(commands, common)


def run(args: argparse.Namespace) -> int:
    """Run one client command; never a traceback for the server's refusals."""
    try:
        with Client(args.url) as client:
            return _HANDLERS[args.command](client, args)
    except RemoteFitError as error:
        print(f"remotefit: {error.message}", file=sys.stderr)
        return EXIT_REFUSED if error.status_code and error.status_code < 500 else EXIT_UNREACHABLE
    except (OSError, ValueError) as error:
        print(f"remotefit: {error}", file=sys.stderr)
        return EXIT_REFUSED


def _submit(client: Client, args: argparse.Namespace) -> int:
    spec = json.loads(args.spec.read_text())
    refer_to_uploads(client, spec, args.data)
    job = client.jobs.submit(spec)
    if not args.watch:
        _print(args, job.data, job.id)
        return EXIT_OK
    return _follow(job, args)


def _follow(job: Job, args: argparse.Namespace) -> int:
    progress = Progress(0 if args.json else 1, int(job.data["progress"].get("epochs", 0)))
    for event in job.events():
        progress(event)
    job.refresh()
    _print(args, job.data, _summary(job.data))
    return EXIT_OK if job.status == "succeeded" else EXIT_JOB_FAILED


def _summary(job: dict[str, Any]) -> str:
    lines = [f"{job['id']}  {job['status']}  {job.get('name') or ''}".rstrip()]
    progress = job.get("progress") or {}
    if progress.get("epochs"):
        lines.append(f"epoch {progress.get('epoch', 0)}/{progress['epochs']}")
    history = job.get("history") or {}
    if history:
        header = ["epoch", *history]
        lines.append("  ".join(f"{h:>12}" for h in header))
        for index in range(len(next(iter(history.values())))):
            row = [str(index + 1), *(f"{history[k][index]:.4f}" for k in history)]
            lines.append("  ".join(f"{cell:>12}" for cell in row))
    if job.get("evaluation"):
        pairs = " - ".join(f"{k}: {v:.4f}" for k, v in job["evaluation"].items())
        lines.append(f"evaluation: {pairs}")
    if job.get("error"):
        lines.append(f"error: {job['error'].get('message')}")
    return "\n".join(lines)


def _jobs(client: Client, args: argparse.Namespace) -> int:
    jobs = client.jobs.list(status=args.status, limit=args.limit)
    rows = [
        f"{j.id}  {j.status:<9}  {j.data['progress'].get('epoch', 0):>4}/"
        f"{j.data['progress'].get('epochs', 0):<4}  {j.data.get('name') or ''}"
        for j in jobs
    ]
    _print(args, [j.data for j in jobs], "\n".join(rows) or "no jobs")
    return EXIT_OK


def _show(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.get(args.job_id)
    _print(args, job.data, _summary(job.data))
    return EXIT_OK


def _watch(client: Client, args: argparse.Namespace) -> int:
    return _follow(client.jobs.get(args.job_id), args)


def _cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.jobs.get(args.job_id)
    job.data = client.http.json("POST", f"/v1/jobs/{job.id}/cancel")
    _print(args, job.data, f"{job.id}  {job.status}")
    return EXIT_OK


def _weights(client: Client, args: argparse.Namespace) -> int:
    path = client.jobs.get(args.job_id).download_weights(args.output, args.format)
    _print(args, {"path": str(path), "bytes": path.stat().st_size}, str(path))
    return EXIT_OK


def _datasets(client: Client, args: argparse.Namespace) -> int:
    if args.action == "upload":
        if not args.target:
            raise ValueError("`remotefit datasets upload FILE` needs the FILE")
        dataset = client.datasets.upload(args.target)
        arrays = ", ".join(
            f"{a['name']} {tuple(a['shape'])} {a['dtype']}" for a in dataset["arrays"]
        )
        _print(args, dataset, f"{dataset['id']}  {arrays}")
    elif args.action == "list":
        items = client.datasets.list()
        _print(args, items, "\n".join(f"{d['id']}  {d['filename']}" for d in items) or "none")
    else:
        if not args.target:
            raise ValueError("`remotefit datasets delete ID` needs the ID")
        client.datasets.delete(args.target)
        _print(args, {"deleted": args.target}, f"deleted {args.target}")
    return EXIT_OK


def _inspect(client: Client, args: argparse.Namespace) -> int:
    result = client.inspect(args.model.read_text())
    _print(args, result, f"{result['summary']}\ndialect: {result.get('dialect')}")
    return EXIT_OK


def _me(client: Client, args: argparse.Namespace) -> int:
    me = client.me()
    lines = [
        f"{me['name']}{'  (admin)' if me['admin'] else ''}",
        f"scopes: {' '.join(me['scopes'])}",
    ]
    lines += [f"{name}: {q['used']} of {q['limit']}" for name, q in me["quotas"].items()]
    _print(args, me, "\n".join(lines))
    return EXIT_OK


def _workers(client: Client, args: argparse.Namespace) -> int:
    found = client.workers()
    rows = [
        f"{w['name']:<28} {w['state']:<5} {w['job'] or '-':<32} {w['jobs_done']:>5} done  "
        f"{w['summary']}"
        for w in found
    ]
    _print(args, found, "\n".join(rows) or "no live worker")
    return EXIT_OK


_HANDLERS = {
    "me": _me,
    "workers": _workers,
    "submit": _submit,
    "jobs": _jobs,
    "show": _show,
    "watch": _watch,
    "cancel": _cancel,
    "weights": _weights,
    "datasets": _datasets,
    "inspect": _inspect,
    "sweep": lambda client, args: sweep_commands.run(client, args),
    "sweeps": lambda client, args: sweep_commands.run(client, args),
}
