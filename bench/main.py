"""``bench/run``: every figure of the benchmark in one JSON object, each with its target.

Each figure is a ratio or a difference against a baseline measured in the same run on the same
machine (a direct ``model.fit`` in this process, a local file copy, a bare FastAPI endpoint),
so the figures hold on a noisy shared machine. On a GPU machine the same figures apply per GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.examples import INLINE_JOB
from bench import dashboard, dispatch, status, steps, sweep, training, transfer
from bench.common import seed_arrays, upload_arrays, wait_final
from tests.services import REDIS_URL, Service, distributed, drop_postgres_database, embedded


@dataclass(frozen=True)
class Sizes:
    repeats: int
    step_rows: int
    step_epochs: int
    step_rounds: int
    dispatches: int
    submissions: int
    inspections: int
    upload_mib: int
    big_data_mib: int
    status_seconds: float
    auto_rounds: int
    conv_rows: int
    conv_rounds: int
    cancels: int
    dashboard_jobs: int
    list_requests: int
    chart_points: int
    chart_appends: int
    row_epochs: int
    sweep_trials: int = 30
    sweep_rows: int = 4_000


FULL = Sizes(
    9, 64_000, 6, 15, 50, 100, 100, 1024, 2048, 5.0, 5, 6_400, 3, 20, 10_000, 50, 100_000, 100, 20
)
SMOKE = Sizes(1, 2_000, 2, 1, 3, 3, 3, 8, 8, 0.5, 1, 512, 1, 2, 200, 3, 1_000, 5, 3, 3, 256)

TARGETS = {
    "overhead_s.redis": ("<=", 0.3),
    "overhead_s.embedded": ("<=", 1.5),
    "step_ratio": ("<=", 1.05),
    "step_ratio_auto": ("<=", 0.5),
    "step_ratio_conv": ("<=", 1.0),
    "cancel_latency_s_p95": ("<=", 1.0),
    "cold_script_ratio": (">=", 1.5),
    "dispatch_ms_p50": ("<=", 50),
    "dispatch_ms_p99": ("<=", 200),
    "submit_per_s": (">=", 50),
    "inspect_ms_p50": ("<=", 20),
    "upload_ratio": (">=", 0.5),
    "upload_rss_mib": ("<=", 64),
    "big_data_ratio": (">=", 0.8),
    "status_rps": (">=", 0.5),
    "auth_status_ratio": (">=", 0.9),
    "job_page_kib": ("<=", 100),
    "chart_append_ms_p95": ("<=", 16),
    "epoch_to_row_ms_p95": ("<=", 1000),
    "dashboard_list_ms_p50": ("<=", 50),
    "sweep_epoch_ratio": ("<=", 0.45),
    "sweep_best_gap": ("<=", 0.02),
    "sweep_overhead_s": ("<=", 0.5),
}


def _figure(figures: dict[str, Any], key: str) -> float:
    value: Any = figures
    for part in key.split("."):
        value = value[part]
    return float(value)


def verdicts(figures: dict[str, Any], only: frozenset[str] = frozenset()) -> dict[str, str]:
    out = {}
    for key, (sense, target) in TARGETS.items():
        try:
            value = _figure(figures, key)
        except KeyError:
            if not only:  # with --only, what was not asked for is left out
                out[key] = "NOT MEASURED (see errors)"
            continue
        met = value <= target if sense == "<=" else value >= target
        out[key] = f"{'met' if met else 'MISSED'}: {value:.3g} (target {sense} {target})"
    return out


STATUS_CLIENTS = 8

# The big-data figure uploads a >2 GiB in-RAM copy of its HDF5 file; the status figures poll
# far above a user's request rate.
SERVICE_SETTINGS = {
    "REMOTEFIT_MAX_UPLOAD_BYTES": str(16 * 1024**3),
    "REMOTEFIT_RATE_PER_SECOND": "1000000",
    "REMOTEFIT_RATE_BURST": "1000000",
}


MEASUREMENTS = (
    "overhead_s",
    "cold_script_ratio",
    "step_ratio",
    "step_ratio_auto",
    "step_ratio_conv",
    "cancel_latency_s_p95",
    "dispatch_ms",
    "submit_per_s",
    "upload_ratio",
    "big_data_ratio",
    "status_rps",
    "job_page_kib",
    "chart_append_ms_p95",
    "epoch_to_row_ms_p95",
    "dashboard_list_ms_p50",
    "sweep",
)
"""What ``--only`` can pick: each runs as one step and may set several figures."""


def _chosen(name: str, only: frozenset[str]) -> bool:
    """Whether ``--only`` asks for the figure ``name`` (``overhead_s`` covers both stacks)."""
    return not only or any(name == pick or name.startswith(f"{pick}.") for pick in only)


# A Redis database of its own (1-15): Celery's control commands (pausing the workers for
# submit_per_s) reach every worker of a database, and a test run's or another bench run's
# workers, told to consume this run's queue, took its jobs and dropped them (minutes lost).
BENCH_REDIS = f"{REDIS_URL.rsplit('/', 1)[0]}/{1 + os.getpid() % 15}"


def _attempt(
    figures: dict[str, Any], name: str, measure: Callable[[], None], only: frozenset[str]
) -> None:
    """Run one figure's measurement; a failure is reported in the output, not fatal."""
    if not _chosen(name, only):
        return
    try:
        measure()
    except Exception as error:
        figures.setdefault("errors", {})[name] = f"{type(error).__name__}: {error}"


def measure(sizes: Sizes, folder: Path, only: frozenset[str] = frozenset()) -> dict[str, Any]:
    figures: dict[str, Any] = {"overhead_s": {}, "details": {}}
    (folder / "embedded").mkdir()
    (folder / "redis").mkdir()
    local = embedded(folder / "embedded", **SERVICE_SETTINGS)
    redis, database = distributed(folder / "redis", "redis", BENCH_REDIS, **SERVICE_SETTINGS)
    services: list[Service] = [local, redis]
    try:
        for service in services:
            service.start()
        for name, service in (("embedded", local), ("redis", redis)):

            def seed(name: str = name, service: Service = service) -> None:
                with service.client() as client:
                    result = training.overhead(client, folder, sizes.repeats)
                figures["overhead_s"][name] = result["overhead_s"]
                figures["details"][f"seed_{name}"] = result

            _attempt(figures, f"overhead_s.{name}", seed, only)

        def cold() -> None:
            served_s = figures["details"]["seed_redis"]["served_s"]
            figures["details"]["cold_script_s"] = training.cold_script_seconds(folder)
            figures["cold_script_ratio"] = figures["details"]["cold_script_s"] / served_s

        _attempt(figures, "cold_script_ratio", cold, only)
        # Idle, the embedded worker still polls its SQLite broker 20 times a second: the
        # figures below are the Redis stack's alone, and need the machine to themselves.
        local.stop()
        client = redis.client()

        def same_settings() -> None:
            seed = steps.seed_workload(sizes.step_rows)
            result = steps.step_ratio(
                redis, folder, seed, sizes.step_epochs, sizes.step_rounds, steps_per_execution=1
            )
            figures["step_ratio"] = result["ratio"]
            figures["details"]["steps"] = result

        def auto() -> None:
            seed = steps.seed_workload(sizes.step_rows)
            result = steps.step_ratio(redis, folder, seed, sizes.step_epochs, sizes.auto_rounds)
            figures["step_ratio_auto"] = result["ratio"]
            figures["details"]["steps_auto"] = result

        def conv() -> None:
            convnet = steps.conv_workload(sizes.conv_rows)
            result = steps.step_ratio(redis, folder, convnet, sizes.step_epochs, sizes.conv_rounds)
            figures["step_ratio_conv"] = result["ratio"]
            figures["details"]["steps_conv"] = result

        def cancelling() -> None:
            with redis.client() as own:  # step_ratio restarts the service
                result = steps.cancel_latency(own, folder, sizes.step_rows, sizes.cancels)
            figures["cancel_latency_s_p95"] = result["p95"]
            figures["details"]["cancel"] = result

        def dispatching() -> None:
            delays = dispatch.dispatch_ms(client, sizes.dispatches)
            figures["dispatch_ms_p50"], figures["dispatch_ms_p99"] = delays["p50"], delays["p99"]

        def submitting() -> None:
            dataset = upload_arrays(client, folder, "submit", **seed_arrays())
            with dispatch.consumers_paused(BENCH_REDIS, redis.env["REMOTEFIT_QUEUE"]):
                figures["submit_per_s"] = dispatch.submit_per_s(client, dataset, sizes.submissions)
            figures["inspect_ms_p50"] = dispatch.inspect_ms(client, sizes.inspections)

        def uploading() -> None:
            uploaded = transfer.upload(client, folder, redis.processes[0].pid, sizes.upload_mib)
            figures["upload_ratio"] = uploaded["ratio"]
            figures["upload_rss_mib"] = uploaded["rss_growth_mib"]
            figures["details"]["upload"] = uploaded

        def big_data() -> None:
            big = transfer.big_data(client, folder, sizes.big_data_mib)
            figures["big_data_ratio"] = big["ratio"]
            figures["details"]["big_data"] = big

        def status_rate() -> None:
            listed = client.get("/v1/jobs", params={"limit": STATUS_CLIENTS}).json()["items"]
            job_urls = [f"{redis.url}/v1/jobs/{job['id']}" for job in listed]
            rates = status.status_rps(
                job_urls, STATUS_CLIENTS, sizes.status_seconds, log=folder / "bare.log"
            )
            figures["status_rps"] = rates["ratio"]
            figures["details"]["status"] = rates
            # The same polls with a user's token (the first admin owns these jobs): what
            # authentication, scopes, ownership and the request rate cost.
            token = status.add_user(redis, "bench")
            with_token = status.requests_per_second(
                job_urls, STATUS_CLIENTS, sizes.status_seconds, token
            )
            figures["auth_status_ratio"] = with_token / rates["service_rps"]
            figures["details"]["status"]["token_rps"] = with_token

        def sweeping() -> None:
            found = sweep.sweep_figures(client, folder, sizes.sweep_trials, sizes.sweep_rows)
            for key in ("sweep_epoch_ratio", "sweep_best_gap", "sweep_overhead_s"):
                figures[key] = found[key]
            figures["details"]["sweep"] = found["details"]

        for name, step in (
            ("step_ratio", same_settings),
            ("step_ratio_auto", auto),
            ("step_ratio_conv", conv),
            ("cancel_latency_s_p95", cancelling),
            ("dispatch_ms", dispatching),
            ("submit_per_s", submitting),
            ("upload_ratio", uploading),
            ("big_data_ratio", big_data),
            ("sweep", sweeping),  # before status_rps, which adds a user: then tokens are needed
            ("status_rps", status_rate),
        ):
            _attempt(figures, name, step, only)
        _dashboard(figures, sizes, folder, redis, only)
        client.close()
    finally:
        for service in services:
            service.stop()
        drop_postgres_database(database)
    figures["verdicts"] = verdicts(figures, only)
    return figures


def _dashboard(
    figures: dict[str, Any], sizes: Sizes, folder: Path, service: Service, only: frozenset[str]
) -> None:
    """The dashboard's figures on the PostgreSQL stack; the many listed jobs are added last."""
    database_url = service.env["REMOTEFIT_DATABASE_URL"]
    # As a user of a server with users (the status figure has made one by now): the pages and
    # their files then pay for authentication too, as they do for every team.
    token = status.add_user(service, "dashboard")
    client = service.client()
    client.headers["Authorization"] = f"Bearer {token}"
    with contextlib.ExitStack() as stack:
        started: list[Any] = []  # Chromium, started by the first figure that needs it

        def browser() -> Any:
            if not started:
                started.append(stack.enter_context(dashboard.chromium()))
            return started[0]

        def finished_job() -> str:
            spec: dict[str, Any] = {**INLINE_JOB, "fit": {"epochs": 3, "batch_size": 2}}
            job_id: str = client.post("/v1/jobs", json=spec).json()["id"]
            wait_final(client, job_id)
            return job_id

        def page_kib() -> None:
            figures["job_page_kib"] = dashboard.job_page_kib(client, finished_job())

        def append() -> None:
            figures["chart_append_ms_p95"] = dashboard.chart_append_ms_p95(
                browser(),
                service.url,
                finished_job(),
                sizes.chart_points,
                sizes.chart_appends,
                token,
            )

        def rows() -> None:
            found = dashboard.epoch_to_row_ms_p95(
                browser(), client, database_url, folder, sizes.row_epochs, token
            )
            figures["epoch_to_row_ms_p95"] = found["p95"]
            figures["details"]["epoch_to_row"] = found

        def listing() -> None:
            owner = dashboard.owner_of(database_url, "dashboard")
            dashboard.insert_jobs(database_url, sizes.dashboard_jobs, owner)
            figures["dashboard_list_ms_p50"] = dashboard.list_ms_p50(client, sizes.list_requests)

        for name, step in (
            ("job_page_kib", page_kib),
            ("chart_append_ms_p95", append),
            ("epoch_to_row_ms_p95", rows),
            ("dashboard_list_ms_p50", listing),
        ):
            _attempt(figures, name, step, only)
    client.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the benchmark")
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated measurements to run, of: {', '.join(MEASUREMENTS)}",
    )
    args = parser.parse_args(argv)
    only = frozenset(name for name in args.only.split(",") if name)
    if unknown := only - set(MEASUREMENTS):
        parser.error(f"unknown measurements {sorted(unknown)}; choose from {list(MEASUREMENTS)}")
    # Stopped with SIGTERM (timeout, kill), still stop the services it started: by default the
    # process would die without running `finally`, leaving an API and a worker per service.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="remotefit-bench-") as folder:
        figures = measure(SMOKE if args.smoke else FULL, Path(folder), only)
    json.dump(figures, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
