"""Real remotefit services for tests: API and worker processes on either stack.

``embedded`` runs ``remotefit serve`` (SQLite database and broker, local store);
``distributed`` runs ``remotefit api`` and ``remotefit worker`` on the Redis and PostgreSQL of
this machine, in a fresh database and on a queue of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

REDIS_URL = os.environ.get("REMOTEFIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get("REMOTEFIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(reason: str) -> None:
    """Skip on a newcomer's laptop; fail in CI, where every service must be there."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every service must be running)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_available() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return None
    except Exception as error:
        return f"Redis is not reachable at {REDIS_URL}: {error}"


def postgres_database(name: str) -> str:
    """Create database ``name`` and return its URL (skips/fails when PostgreSQL is absent)."""
    import psycopg

    try:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        need(f"PostgreSQL is not reachable at {POSTGRES_URL}: {error}")
    return f"{POSTGRES_URL}/{name}"


def drop_postgres_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(eq=False)  # a running service is itself, not its settings
class Service:
    """A running remotefit: its URL, its environment, and the processes behind it."""

    name: str
    folder: Path
    env: dict[str, str]
    commands: list[list[str]]
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store_root(self) -> Path:
        """The service's store: the shared volume, or the embedded default's folder."""
        if "REMOTEFIT_STORAGE_DIR" in self.env:
            return Path(self.env["REMOTEFIT_STORAGE_DIR"])
        return Path(self.env["REMOTEFIT_DATA_DIR"]) / "store"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def start(self, timeout: float = 120) -> None:
        env = {**os.environ, **self.env, "REMOTEFIT_PORT": str(self.port)}
        for index, command in enumerate(self.commands):
            log = open(self.folder / f"{self.name}-{index}.log", "ab")  # noqa: SIM115
            self.launch(command, env, log)
        RUNNING.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.logs()}")

    def launch(self, command: list[str], env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
        """Start one process of the service in a process group of its own.

        Its group is what ``stop`` kills last, so a worker's pool processes cannot outlive the
        service, and a Ctrl-C in the terminal that runs pytest reaches pytest alone.
        """
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            kill_group(process.pid)
        self.processes.clear()

    def unfinished_jobs(self) -> set[str]:
        """The ids of its queued and running jobs; empty when its API does not answer."""
        found: set[str] = set()
        try:
            with httpx.Client(base_url=self.url, timeout=10) as http:
                for status in ("queued", "running"):
                    page = http.get("/v1/jobs", params={"status": status, "limit": 500})
                    found |= {job["id"] for job in page.json()["items"]}
        except (httpx.HTTPError, KeyError, ValueError):
            return set()
        return found

    def cancel(self, job_ids: set[str], timeout: float = 60) -> None:
        """Cancel these jobs and wait until none of them runs any more (at most ``timeout``)."""
        if not job_ids:
            return
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for job_id in job_ids:
                http.post(f"/v1/jobs/{job_id}/cancel")
            deadline = time.monotonic() + timeout
            while job_ids & self.unfinished_jobs() and time.monotonic() < deadline:
                time.sleep(0.2)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self, lines: int = 60) -> str:
        text = []
        for log in sorted(self.folder.glob(f"{self.name}-*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            text.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(text)


RUNNING: list[Service] = []
"""The services started and not yet stopped, for fixtures that clean up after every test."""


@atexit.register
def _stop_what_is_left() -> None:
    """However the test run ends (but SIGKILL), no service it started outlives it."""
    for service in list(RUNNING):
        service.stop()


def kill_group(pid: int) -> None:
    """SIGKILL whatever is left of the process group that ``pid`` leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


CLI = [sys.executable, "-m", "remotefit.cli"]
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def embedded(folder: Path, name: str = "embedded", **settings: str) -> Service:
    """``remotefit serve``; ``settings`` are extra variables, e.g. REMOTEFIT_LEASE_SECONDS."""
    return Service(
        name=name,
        folder=folder,
        env={**QUIET, "REMOTEFIT_DATA_DIR": str(folder / "var"), **settings},
        commands=[[*CLI, "serve"]],
    )


def distributed(
    folder: Path, name: str = "distributed", redis_url: str = REDIS_URL, **settings: str
) -> tuple[Service, str]:
    """``remotefit api`` + ``remotefit worker`` on a fresh PostgreSQL database.

    Returns the service and its database name (drop it with ``drop_postgres_database``).
    """
    problem = redis_available()
    if problem:
        need(problem)
    database = f"remotefit_test_{uuid.uuid4().hex[:12]}"
    env: dict[str, Any] = {
        **QUIET,
        "REMOTEFIT_DATABASE_URL": postgres_database(database),
        "REMOTEFIT_BROKER_URL": redis_url,
        "REMOTEFIT_STORAGE_DIR": str(folder / "shared-store"),
        "REMOTEFIT_DATA_DIR": str(folder / "var"),
        "REMOTEFIT_QUEUE": f"remotefit-test-{uuid.uuid4().hex[:8]}",
        **settings,
    }
    service = Service(name=name, folder=folder, env=env, commands=[[*CLI, "api"], [*CLI, "worker"]])
    return service, database
