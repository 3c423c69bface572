"""``remotefit``: run the service — ``serve`` (all-in-one), ``api``, ``worker``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from remotefit import commands as client_commands

if TYPE_CHECKING:  # the server's modules are imported only by the server's commands
    from models.settings import Settings


def _settings() -> Settings:
    from models.settings import SettingsError, get_settings

    try:
        return get_settings()
    except SettingsError as error:
        print(f"remotefit: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def run_api(settings: Settings) -> None:
    """Serve the HTTP API with uvicorn (one process; TensorFlow is imported lazily)."""
    import uvicorn

    from api.http_protocol import HttpToolsWithoutBodyCopies
    from api.main import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        http=HttpToolsWithoutBodyCopies,
    )


def run_worker(settings: Settings, gpu: int | None, gpus: list[int] | None = None) -> None:
    """Run one Celery worker: one pool process that trains one job at a time.

    With ``gpu``, the process sees only that GPU (``CUDA_VISIBLE_DEVICES``): run one worker
    per GPU to train as many jobs at once. With ``gpus``, it sees those and trains each job on
    all of them (MirroredStrategy): one big job at a time, faster.
    """
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
    from worker.device_check import check_in_child, host_has_nvidia_gpus

    requested = gpus or ([gpu] if gpu is not None else [])
    if requested or host_has_nvidia_gpus():
        check_in_child(requested)  # never a silent fall back to the CPU
    from models.db import get_engine
    from worker.app import create_celery

    # Create the tables, then hold no connection: the pool processes are forked from here.
    get_engine(settings.database_url).dispose()
    name = f"remotefit-gpu{gpu}@%h" if gpu is not None else "remotefit@%h"
    if gpus:
        name = f"remotefit-gpu{'-'.join(map(str, gpus))}@%h"
    create_celery(settings).worker_main(
        argv=[
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=INFO",
            f"--queues={settings.queue}",
            f"--hostname={name}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def _gpu_list(text: str) -> list[int]:
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--gpus takes GPU indices separated by commas, e.g. 0,1. Received: {text!r}"
        ) from None
    if len(indices) < 2 or len(set(indices)) != len(indices) or min(indices) < 0:
        raise argparse.ArgumentTypeError(
            f"--gpus takes two or more distinct GPU indices (one GPU: --gpu N). Received: {text!r}"
        )
    return indices


def _exit_on_signal(signum: int, _: object) -> None:
    raise SystemExit(128 + signum)


def serve(settings: Settings) -> None:
    """The embedded default: the API here and one worker in a child process."""
    from models.db import get_engine

    get_engine(settings.database_url)  # tables exist before either side starts
    # uvicorn shuts down on SIGTERM and then re-raises it under the handler it found; with the
    # default one the process would die there and skip `finally`, orphaning the worker.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    keeper = _WorkerKeeper()
    keeper.start()
    try:
        run_api(settings)
    finally:
        keeper.stop()


class _WorkerKeeper(threading.Thread):
    """``serve``'s worker process, started again whenever it dies (killed out of memory, say).

    Without it a dead worker would leave the embedded service accepting jobs that never run. A
    job the dead worker was running is re-queued by the API's sweeper once its lease runs out,
    and the new worker resumes it from its last checkpoint. A worker that keeps dying soon after
    it starts (a broken setting, say) is restarted with a growing delay, up to a minute.
    """

    def __init__(self) -> None:
        super().__init__(name="remotefit-worker-keeper", daemon=True)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.process = self._spawn()

    @staticmethod
    def _spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "remotefit.cli", "worker"])

    def run(self) -> None:
        delay = 1.0
        started = time.monotonic()
        while not self._stopping.wait(1.0):
            code = self.process.poll()
            if code is None:
                continue
            delay = 1.0 if time.monotonic() - started > 60 else min(delay * 2, 60.0)
            print(
                f"remotefit: the worker exited (code {code}); starting a new one in {delay:g} s",
                file=sys.stderr,
                flush=True,
            )
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self.process = self._spawn()
                started = time.monotonic()

    def stop(self) -> None:
        """Stop watching, then stop the worker (SIGTERM, killed after 15 s)."""
        self._stopping.set()
        with self._lock:
            worker = self.process
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="remotefit",
        description="model.fit() as a service: run the server (serve, api, worker; settings "
        "in REMOTEFIT_* variables) or use one (submit, jobs, show, watch, ...).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("serve", "API and one worker on this machine (SQLite, local store: nothing to install)"),
        ("api", "the HTTP API only"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--host", help="listen address (REMOTEFIT_HOST)")
        command.add_argument("--port", type=int, help="listen port (REMOTEFIT_PORT)")
    worker = commands.add_parser("worker", help="one Celery worker (one per GPU)")
    devices = worker.add_mutually_exclusive_group()
    devices.add_argument("--gpu", type=int, help="GPU index this worker uses alone")
    devices.add_argument(
        "--gpus",
        type=_gpu_list,
        help="GPU indices, e.g. 0,1: each job trains on all of them (batch_size is global)",
    )
    client_commands.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command in client_commands.COMMANDS:
        raise SystemExit(client_commands.run(args))

    for option in ("host", "port"):
        if getattr(args, option, None) is not None:
            os.environ[f"REMOTEFIT_{option.upper()}"] = str(getattr(args, option))
    if getattr(args, "gpus", None):
        os.environ["REMOTEFIT_DISTRIBUTE"] = "true"  # before the settings are read, and kept
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    settings = _settings()
    if args.command == "serve":
        serve(settings)
    elif args.command == "api":
        run_api(settings)
    else:
        run_worker(settings, args.gpu, args.gpus)


if __name__ == "__main__":
    main()
