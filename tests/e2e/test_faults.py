"""No job lost or trained twice under faults, done for real.

These tests SIGKILL real worker processes (the pool child that trains, then the whole worker),
restart a real Redis of their own (with and without append-only persistence), kill the API in
the middle of an upload, and deliver a job's message twice. Each ends by checking every job's
final state, its history (each epoch exactly once) and its files.

The services here have short timings (a lease of ten seconds, a sweep every second) so a lost
worker is noticed quickly; the jobs are long enough (~1 s an epoch) to be killed mid-training.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest

from api.dispatch import broker_backlog, enqueue
from models.data.store import LocalStore
from models.db import session_scope
from models.jobs.runner import saved_epoch
from models.keras.training import CHECKPOINT
from models.settings import Settings
from models.tables import Job, JobEvent
from tests.conftest import seed_job, seed_model, upload, wait_for_job
from tests.services import (
    CLI,
    Service,
    distributed,
    drop_postgres_database,
    embedded,
    free_port,
    redis_available,
)
from worker.app import create_celery

T = TypeVar("T")

EPOCHS = 8
ROWS = 20_000
# Above the time a killed pool process takes to hand its message back (Celery's
# worker_lost_wait, 2 s) plus a new pool process's start (~4 s here), so that test 1 sees the
# redelivery take the job over at once rather than the sweeper re-queue it after the lease.
LEASE = 10.0
FAST = {
    "REMOTEFIT_LEASE_SECONDS": str(LEASE),
    "REMOTEFIT_SWEEP_SECONDS": "1",
    "REMOTEFIT_HEARTBEAT_SECONDS": "0.3",
    "REMOTEFIT_MAX_ATTEMPTS": "2",
    "REMOTEFIT_CHECKPOINT_SECONDS": "0",  # every epoch, so a kill after two resumes from two
}
FINAL_FILES = ["model.h5", "model.keras", "weights.weights.h5"]
# What a wait allows beyond the time its condition needs, on a two-core machine that is also
# training the suite's other jobs: a sweep, a process start and a slow poll, with room to spare.
SLACK = 30.0


# --- data, jobs and the services' insides -------------------------------------------------------


@pytest.fixture(scope="module")
def long_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_long_npz(tmp_path_factory.mktemp("faults-data") / "long.npz")


def write_long_npz(path: Path) -> Path:
    """20 000 rows of 20 features: about a second an epoch at batch_size 32."""
    rng = np.random.default_rng(7)
    x = rng.random((ROWS, 20), dtype=np.float32)
    y = (x[:, :10].sum(axis=1, keepdims=True) > 5).astype(np.float32)
    np.savez(path, x_train=x, y_train=y, x_test=x[:500], y_test=y[:500])
    return path


def submit(client: httpx.Client, dataset_id: str, epochs: int = EPOCHS) -> str:
    spec = seed_job(dataset_id, epochs=epochs, batch_size=32)
    spec["name"] = "faults"
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def settings_of(service: Service) -> Settings:
    """The service's own settings, as its processes read them from their environment."""
    values = {
        key.removeprefix("REMOTEFIT_").lower(): value
        for key, value in service.env.items()
        if key.startswith("REMOTEFIT_")
    }
    return Settings.model_validate(values)


def row(service: Service, job_id: str) -> Job:
    """The job's row, read straight from the service's database."""
    with session_scope(settings_of(service).database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def events(service: Service, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(settings_of(service).database_url) as session:
        found = session.query(JobEvent).filter_by(job_id=job_id).order_by(JobEvent.id).all()
        return [(event.type, dict(event.data)) for event in found]


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def epochs_done(service: Service, job_id: str, count: int, timeout: float = 60) -> Job:
    """Wait until the job's history holds ``count`` epochs; returns its row."""

    def check() -> Job | None:
        job = row(service, job_id)
        assert job.status in ("queued", "running"), (job.status, job.error)
        done = len((job.history or {}).get("loss", []))
        return job if job.status == "running" and done >= count else None

    return wait_until(check, timeout, f"{count} epochs of job {job_id}")


def requeued_as_lost(service: Service, job_id: str) -> bool:
    """Whether the sweeper has put the job back in the queue since its worker went silent."""
    return any(
        kind == "status" and data == {"status": "queued", "reason": "worker lost"}
        for kind, data in events(service, job_id)
    )


def resent(service: Service) -> bool:
    """Whether the sweeper has re-sent a queued job whose broker message was lost."""
    return "re-sending" in log_text(service)


def pid_of(worker: str | None) -> int:
    """The pool process of a job's ``worker`` field, ``host:pid``."""
    assert worker, "the job has no worker"
    host, _, pid = worker.rpartition(":")
    assert host == socket.gethostname()
    return int(pid)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and everything below it, parent first so nothing is respawned."""
    tree = [pid, *descendants(pid)]
    for each in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(each, signal.SIGKILL)
    wait_until(lambda: not any(alive(each) for each in tree), 10, f"{tree} to die")
    return tree


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def worker_process(service: Service) -> int:
    """The Celery parent of the service's (only live) worker."""
    for process in service.processes:
        if process.poll() is None and "remotefit.cli worker" in cmdline(process.pid):
            return process.pid
    for process in service.processes:  # `remotefit serve` starts its worker itself
        for child in children(process.pid):
            if "remotefit.cli worker" in cmdline(child) and alive(child):
                return child
    raise AssertionError(f"{service.name} has no worker process")


def add_worker(service: Service) -> subprocess.Popen[bytes]:
    """One more ``remotefit worker`` with the service's environment; stop() stops it too."""
    env = {**os.environ, **service.env, "REMOTEFIT_PORT": str(service.port)}
    log = open(service.folder / f"{service.name}-{len(service.processes)}.log", "ab")  # noqa: SIM115
    return service.launch([*CLI, "worker"], env, log)


def dataset_for(service: Service, client: httpx.Client, path: Path) -> str:
    cache: dict[str, str] = service.__dict__.setdefault("_datasets", {})
    if path.name not in cache:
        cache[path.name] = upload(client, path)["id"]
    return cache[path.name]


def first_epoch_of_attempt(service: Service, job_id: str, attempt: int) -> int:
    """The first epoch (1-based) that attempt ``attempt`` recorded."""
    seen = 0
    for kind, data in events(service, job_id):
        if kind == "status" and data.get("status") == "running":
            seen += 1
        elif kind == "epoch" and seen == attempt:
            epoch: int = data["epoch"]
            return epoch
    raise AssertionError(f"attempt {attempt} of job {job_id} recorded no epoch")


def check_succeeded(
    service: Service, client: httpx.Client, job: dict[str, Any], attempts: int, epochs: int
) -> None:
    """Final state, history (each epoch exactly once) and files of a job that succeeded."""
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == attempts
    assert job["error"] is None
    assert sorted(job["history"]) == ["accuracy", "loss"]
    for metric, values in job["history"].items():
        assert len(values) == epochs, (metric, values)
    assert job["progress"]["epoch"] == epochs
    assert sorted(job["evaluation"]) == ["accuracy", "loss"]
    check_files(service, job["id"], FINAL_FILES)

    response = client.get(f"/v1/jobs/{job['id']}/weights")
    assert response.status_code == 200
    path = service.folder / f"{job['id']}.weights.h5"
    path.write_bytes(response.content)
    model = seed_model()
    model.load_weights(path)
    rows = np.random.default_rng(0).random((8, 20), dtype=np.float32)
    assert np.isfinite(model.predict(rows, verbose=0)).all()
    path.unlink()


def check_files(service: Service, job_id: str, expected: list[str]) -> None:
    """The job's folder holds ``expected`` in whole, and no temporary nor stale checkpoint."""
    folder = settings_of(service).store_root / "jobs" / job_id
    names = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert set(expected) <= set(names), names
    assert not [name for name in names if name.startswith(".tmp-")], names
    assert CHECKPOINT not in names, names
    for name in names:
        assert (folder / name).stat().st_size > 0


def log_text(service: Service) -> str:
    return "\n".join(
        log.read_text(errors="replace") for log in sorted(service.folder.glob(f"{service.name}-*"))
    )


# --- services ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = embedded(tmp_path_factory.mktemp("faults-embedded"), "faults-embedded", **FAST)
    service.start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def distributed_faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("faults-distributed")
    service, database = distributed(folder, "faults-distributed", **FAST)
    service.start()
    yield service
    service.stop()
    drop_postgres_database(database)


@pytest.fixture(params=["embedded", "distributed"])
def stack(request: pytest.FixtureRequest) -> Service:
    service: Service = request.getfixturevalue(f"{request.param}_faults")
    return service


# --- 1. the pool process is killed mid-training -----------------------------------------------


def test_killed_pool_process_resumes_from_its_checkpoint(stack: Service, long_npz: Path) -> None:
    with stack.client() as client:
        job_id = submit(client, dataset_for(stack, client, long_npz))
        running = epochs_done(stack, job_id, 2)
        killed = len(running.history["loss"])
        kill_tree(pid_of(running.worker))

        job = wait_for_job(client, job_id, timeout=120)
        check_succeeded(stack, client, job, attempts=2, epochs=EPOCHS)

    # Celery put the message back (acks_late, reject_on_worker_lost); the next delivery takes
    # the job over at once, its worker being dead. On a machine so loaded that the new pool
    # process starts only after the lease, the sweeper re-queues the job first. Exactly one of
    # the two happened, and training went on from the last checkpoint.
    takeover = [
        data
        for kind, data in events(stack, job_id)
        if kind == "status" and "resumed_from_epoch" in data
    ]
    requeued = [data for _, data in events(stack, job_id) if data.get("reason") == "worker lost"]
    assert len(takeover) + len(requeued) == 1, (takeover, requeued)
    resumed_at = first_epoch_of_attempt(stack, job_id, 2)
    assert resumed_at - 1 >= killed - 1  # no whole epoch before the kill trained again
    if takeover:
        assert resumed_at == takeover[0]["resumed_from_epoch"] + 1


# --- 2. a job that kills its worker every time is not retried forever --------------------------


def test_attempts_are_capped(stack: Service, long_npz: Path) -> None:
    with stack.client() as client:
        job_id = submit(client, dataset_for(stack, client, long_npz))
        first = epochs_done(stack, job_id, 1)
        kill_tree(pid_of(first.worker))

        def second_attempt() -> Job | None:
            job = row(stack, job_id)
            return job if job.attempts == 2 and job.worker != first.worker else None

        second = wait_until(second_attempt, 60, "the second attempt")
        wait_until(lambda: alive(pid_of(second.worker)), SLACK, "the second pool process")
        kill_tree(pid_of(second.worker))

        job = wait_for_job(client, job_id, timeout=60)
        assert job["status"] == "failed"
        assert job["attempts"] == 2
        assert job["error"]["code"] == "worker_lost"
        assert "killed" in job["error"]["message"]
        assert "out of memory" in job["error"]["message"]

        # No endless loop: past another lease it is still failed, and nothing is queued. (What
        # is awaited here is that nothing happens, so a fixed wait is the measure.)
        time.sleep(LEASE + 2)
        again = client.get(f"/v1/jobs/{job_id}").json()
        assert (again["status"], again["attempts"]) == ("failed", 2)
        settings = settings_of(stack)
        assert broker_backlog(create_celery(settings), settings.queue) == 0
        assert again["links"]["weights"] is None
        history = again["history"]
        assert len({len(values) for values in history.values()}) == 1
        assert len(history["loss"]) < EPOCHS
    folder = settings.store_root / "jobs" / job_id
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


# --- 3. the whole worker vanishes ---------------------------------------------------------------


def test_vanished_worker_is_noticed_and_its_job_resumes(stack: Service, long_npz: Path) -> None:
    with stack.client() as client:
        job_id = submit(client, dataset_for(stack, client, long_npz))
        running = epochs_done(stack, job_id, 2)
        parent = worker_process(stack)
        assert pid_of(running.worker) in children(parent)
        killed_at = time.monotonic()
        kill_tree(parent)
        # The epoch the checkpoint file holds, which the resume trusts: a kill between writing
        # the file and recording it leaves the row one behind.
        checkpoint = saved_epoch(settings_of(stack).store_root / "jobs" / job_id / CHECKPOINT)
        assert checkpoint is not None and checkpoint >= row(stack, job_id).checkpoint_epoch

        # Nothing can report the loss but the silence: the sweeper re-queues after the lease.
        # Its event is awaited, not the status: `remotefit serve` restarts its worker, which can
        # claim the job again between two polls, so "queued" may never be seen.
        wait_until(
            lambda: requeued_as_lost(stack, job_id),
            LEASE + SLACK,
            "the sweeper to re-queue the job",
        )
        assert time.monotonic() - killed_at >= LEASE - 1
        if "serve" not in " ".join(stack.commands[0]):
            add_worker(stack)  # `remotefit serve` starts a new worker itself

        job = wait_for_job(client, job_id, timeout=120)
        check_succeeded(stack, client, job, attempts=2, epochs=EPOCHS)
    requeued = [d for k, d in events(stack, job_id) if k == "status" and d["status"] == "queued"]
    assert requeued[-1] == {"status": "queued", "reason": "worker lost"}
    assert first_epoch_of_attempt(stack, job_id, 2) == checkpoint + 1


# --- 4, 5. Redis restarted ------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own, on a free port, restartable over the same folder."""

    def __init__(self, folder: Path, persistent: bool) -> None:
        self.folder = folder
        self.port = free_port()
        self.persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if persistent
            else ["--appendonly", "no"]
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, socket_connect_timeout=2)

    def start(self) -> None:
        command = [
            "redis-server",
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--save", "",
            "--daemonize", "no",
            *self.persistence,
        ]  # fmt: skip
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

        def ready() -> bool:
            try:
                return bool(self.client().ping())
            except Exception:
                return False

        wait_until(ready, 20, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # a clean SHUTDOWN, flushing the AOF
            self.process.wait(timeout=20)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def task_ids(self, queue: str) -> set[str]:
        """Ids of the Celery messages for job ids held in ``queue`` or delivered and unacked."""
        found: set[str] = set()
        client = self.client()
        payloads = [json.loads(raw) for raw in client.lrange(queue, 0, -1)]
        for raw in client.hvals("unacked"):
            payload, _exchange, routing_key = json.loads(raw)
            if routing_key == queue:
                payloads.append(payload)
        for payload in payloads:
            found.add(payload["headers"]["id"])
        return found


def job_of_message(payload: dict[str, Any]) -> str:
    args = json.loads(base64.b64decode(payload["body"]))[0]
    job_id: str = args[0]
    return job_id


@pytest.fixture(params=[True, False], ids=["appendonly", "no-persistence"])
def own_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    if redis_available() is not None:
        pytest.skip("no Redis here")
    server = RedisServer(tmp_path, persistent=request.param)
    server.start()
    yield server
    server.stop()


def test_redis_restart_loses_no_queued_job(
    own_redis: RedisServer, long_npz: Path, tmp_path: Path
) -> None:
    service, database = distributed(tmp_path, "redis-restart", redis_url=own_redis.url, **FAST)
    try:
        service.start()
        queue = settings_of(service).queue
        with service.client() as client:
            dataset = dataset_for(service, client, long_npz)
            ids = [submit(client, dataset, epochs=3) for _ in range(3)]
            first = epochs_done(service, ids[0], 1)
            assert first.status == "running"
            assert [row(service, i).status for i in ids[1:]] == ["queued", "queued"]
            waiting = {
                json.loads(raw)["headers"]["id"]: job_of_message(json.loads(raw))
                for raw in own_redis.client().lrange(queue, 0, -1)
            }
            assert sorted(waiting.values()) == sorted(ids[1:])

            own_redis.restart()
            kept = own_redis.task_ids(queue) & set(waiting)
            if own_redis.persistence[1] == "yes":
                assert kept == set(waiting)  # the very same messages survived the restart
            else:
                assert kept == set()  # lost: the sweeper must re-send them
                wait_until(lambda: resent(service), LEASE + SLACK, "the sweeper to re-send")

            finished = [wait_for_job(client, job_id, timeout=90) for job_id in ids]
            for job in finished:
                check_succeeded(service, client, job, attempts=1, epochs=3)
            assert row(service, ids[0]).attempts == 1
    finally:
        service.stop()
        drop_postgres_database(database)


# --- 6. the API restarted in the middle of an upload ---------------------------------------------


@pytest.fixture
def upload_service(tmp_path: Path) -> Iterator[Service]:
    service = embedded(tmp_path, "upload-crash", REMOTEFIT_TEMP_MAX_AGE_SECONDS="0", **FAST)
    service.start()
    yield service
    for process in service.processes:  # whatever the test left behind
        if process.poll() is None:
            kill_tree(process.pid)
    service.stop()


def slow_npy_upload(port: int, total_mb: int, sent: list[int], failed: list[BaseException]) -> None:
    """POST /v1/datasets a ``total_mb`` MB .npy, 1 MB at a time, slowly, over a raw socket."""
    rows = total_mb * 1024 * 1024 // 8 // 16
    header = np.lib.format.header_data_from_array_1_0(np.zeros((1, 16)))
    header["shape"] = (rows, 16)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, header)
    boundary = "faultsboundary7"
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.npy"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + head.getvalue()
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    data_bytes = rows * 16 * 8
    length = len(preamble) + data_bytes + len(epilogue)
    chunk = bytes(1024 * 1024)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                (
                    f"POST /v1/datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                    f"Content-Length: {length}\r\n\r\n"
                ).encode()
                + preamble
            )
            left = data_bytes
            while left > 0:
                piece = chunk[: min(left, len(chunk))]
                sock.sendall(piece)
                left -= len(piece)
                sent[0] += len(piece)
                time.sleep(0.01)
            sock.sendall(epilogue)
            sock.recv(65536)
    except OSError as error:
        failed.append(error)


def test_api_killed_mid_upload_leaves_no_partial_dataset(upload_service: Service) -> None:
    service = upload_service
    store = settings_of(service).store_root
    with service.client() as client:
        before = client.get("/v1/datasets").json()["items"]
    folders = sorted(p.name for p in (store / "datasets").iterdir())

    sent, failed = [0], list[BaseException]()
    uploader = threading.Thread(target=slow_npy_upload, args=(service.port, 200, sent, failed))
    uploader.start()
    wait_until(lambda: sent[0] >= 40 * 1024 * 1024, 60, "40 MB to be sent")
    for process in service.processes:
        kill_tree(process.pid)  # `remotefit serve`, its worker and the worker's pool process
    uploader.join(timeout=30)
    assert not uploader.is_alive()
    assert failed, "the upload should have been cut off"
    assert sent[0] < 200 * 1024 * 1024

    # What a crash in the middle of moving an upload into the store would leave behind.
    (store / "tmp" / "0123456789abcdef0123456789abcdef").write_bytes(b"half an upload")
    service.stop()
    service.start()

    assert list((store / "tmp").iterdir()) == []  # cleaned up as the API started
    with service.client() as client:
        assert client.get("/v1/datasets").json()["items"] == before
    assert sorted(p.name for p in (store / "datasets").iterdir()) == folders


# --- 7. artifacts are written under a temporary name and renamed into place ---------------------


ITEM = "0123456789abcdef0123456789abcdef"


def test_an_interrupted_artifact_write_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    final = store.path("jobs", ITEM, "weights.weights.h5")
    with pytest.raises(RuntimeError), store.writing("jobs", ITEM, "weights.weights.h5") as path:
        path.write_bytes(b"half of the wei")
        raise RuntimeError("killed while writing")
    assert not final.exists()
    assert list(final.parent.iterdir()) == []


def test_an_artifact_appears_only_complete(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    final = store.path("jobs", ITEM, "weights.weights.h5")
    with store.writing("jobs", ITEM, "weights.weights.h5") as path:
        path.write_bytes(b"first")
        assert path.parent == final.parent and path.name.startswith(".tmp-")
        assert not final.exists()
    assert final.read_bytes() == b"first"

    # A rewrite that fails keeps the previous, complete file; one that succeeds replaces it.
    with pytest.raises(OSError), store.writing("jobs", ITEM, "weights.weights.h5") as path:
        path.write_bytes(b"seco")
        raise OSError("disk full")
    assert final.read_bytes() == b"first"
    with store.writing("jobs", ITEM, "weights.weights.h5") as path:
        path.write_bytes(b"second")
        assert final.read_bytes() == b"first"
    assert final.read_bytes() == b"second"
    assert [p.name for p in final.parent.iterdir()] == ["weights.weights.h5"]


def test_writing_nothing_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(FileNotFoundError), store.writing("jobs", ITEM, "model.keras"):
        pass
    assert list(store.folder("jobs", ITEM).iterdir()) == []


# --- 8. the same message delivered twice -------------------------------------------------------


def test_a_duplicate_delivery_trains_once(stack: Service, long_npz: Path) -> None:
    settings = settings_of(stack)
    celery = create_celery(settings)
    extra = None
    if "serve" not in " ".join(stack.commands[0]):
        # A second worker takes the duplicate while the first one trains the job.
        extra = add_worker(stack)
    try:
        with stack.client() as client:
            job_id = submit(client, dataset_for(stack, client, long_npz), epochs=4)
            enqueue(celery, settings.queue, job_id)
            job = wait_for_job(client, job_id, timeout=90)
            check_succeeded(stack, client, job, attempts=1, epochs=4)
            wait_until(lambda: f"job {job_id}: skipped" in log_text(stack), 60, "the duplicate")
            assert log_text(stack).count(f"job {job_id}: skipped") == 1
            assert broker_backlog(celery, settings.queue) == 0
            again = client.get(f"/v1/jobs/{job_id}").json()
            assert (again["status"], again["attempts"]) == ("succeeded", 1)
            assert again["history"] == job["history"]
        running = [
            d for k, d in events(stack, job_id) if k == "status" and d["status"] == "running"
        ]
        assert len(running) == 1
    finally:
        if extra is not None:
            extra.send_signal(signal.SIGTERM)
            extra.wait(timeout=30)
            stack.processes.remove(extra)
