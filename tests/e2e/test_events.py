"""Live progress: a job's Server-Sent Events, read through HTTP on both stacks.

The stream is parsed here by hand (``id:``, ``event:``, ``data:`` lines, blank-line separated,
comments starting with ``:``), as a browser's ``EventSource`` or ``curl -N`` would see it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import seed_job, upload, wait_for_job
from tests.services import Service, embedded

PROGRESS_KEYS = {
    "step",
    "steps",
    "steps_per_execution",
    "loss",
    "epoch",
    "epochs",
    "elapsed_s",
    "eta_s",
}
ROWS = 20_000


@dataclass
class Event:
    id: int | None  # None for a frame that is not a stored event (the job's deletion)
    event: str
    data: dict[str, Any]


@dataclass
class Stream:
    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    ended: bool = False  # the server ended the stream (as opposed to the reader stopping)

    @property
    def ids(self) -> list[int]:
        return [event.id for event in self.events if event.id is not None]

    def of(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.event == kind]


def read_events(
    client: httpx.Client,
    job_id: str,
    *,
    after: int | None = None,
    last_event_id: int | None = None,
    until: Callable[[Stream], bool] | None = None,
    timeout: float = 120,
) -> Stream:
    """Read a job's event stream until the server ends it, or until ``until(stream)`` holds.

    ``until`` is asked after each event and each comment; when it holds, the reader
    disconnects. A stream that neither ends nor satisfies ``until`` in time fails the test.
    """
    params = {"after": after} if after is not None else {}
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    stream = Stream()
    deadline = time.monotonic() + timeout
    with client.stream(
        "GET", f"/v1/jobs/{job_id}/events", params=params, headers=headers
    ) as response:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"stream of job {job_id} still open after {timeout}s")
            if line.startswith(":"):
                stream.comments.append(line)
                if until and until(stream):
                    return stream
                continue
            if line == "":
                if "data" in fields:
                    event_id = int(fields["id"]) if "id" in fields else None
                    kind = fields.get("event", "message")
                    stream.events.append(Event(event_id, kind, json.loads(fields["data"])))
                    if until and until(stream):
                        return stream
                fields = {}
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = (
                f"{fields[name]}\n{value}" if name == "data" and name in fields else value
            )
    stream.ended = True
    return stream


def durable(events: list[Event]) -> list[Event]:
    """What the server keeps of a stream: every event but the progress ones, of which only the
    latest is kept (a late reader needs where the job stands, not each heartbeat of its life)."""
    progress = [event for event in events if event.event == "progress"]
    return [e for e in events if e.event != "progress" or (progress and e is progress[-1])]


def epochs_seen(count: int) -> Callable[[Stream], bool]:
    return lambda stream: len(stream.of("epoch")) >= count


def submit(client: httpx.Client, spec: dict[str, Any]) -> str:
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


def big_arrays() -> dict[str, np.ndarray]:
    """The seed example's shapes with 20 times the rows: many batches, seconds per epoch."""
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.random((ROWS, 20), dtype=np.float32),
        "y_train": rng.integers(2, size=(ROWS, 1)),
        "x_test": rng.random((200, 20), dtype=np.float32),
        "y_test": rng.integers(2, size=(200, 1)),
    }


@pytest.fixture(scope="module")
def big_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events-data") / "big.npz"
    arrays = big_arrays()
    np.savez(
        path,
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
    )
    return path


def long_job(dataset_id: str, epochs: int = 50) -> dict[str, Any]:
    """The seed model on 20000 rows in batches of 32: about a second per epoch here."""
    return seed_job(dataset_id, epochs=epochs, batch_size=32)


def cancel_and_wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code in (200, 409), response.text
    return wait_for_job(client, job_id, timeout=60)


@dataclass
class LiveRun:
    job: dict[str, Any]
    stream: Stream
    batches: int


_LIVE: dict[str, LiveRun] = {}


@pytest.fixture
def live_run(client: httpx.Client, service: Service, big_npz: Path) -> LiveRun:
    """One job per stack with validation, test data and 2000 small batches, read live.

    The stream is opened right after submission and read until the server ends it.
    """
    if service.name not in _LIVE:
        dataset = upload(client, big_npz)
        spec = seed_job(dataset["id"], epochs=2, batch_size=16, validation_split=0.2)
        job_id = submit(client, spec)
        stream = read_events(client, job_id)
        job = wait_for_job(client, job_id, timeout=10)
        steps = int(ROWS * 0.8) // 16
        _LIVE[service.name] = LiveRun(job=job, stream=stream, batches=2 * steps)
    return _LIVE[service.name]


def test_stream_from_submission_to_the_end(live_run: LiveRun) -> None:
    job, stream = live_run.job, live_run.stream
    assert job["status"] == "succeeded", job["error"]
    assert stream.ended, "the stream must end by itself once the job is final"
    ids = stream.ids
    assert ids == sorted(set(ids)), f"event ids must strictly increase: {ids}"

    kinds = [event.event for event in stream.events]
    assert stream.events[0].event == "status" and stream.events[0].data["status"] == "queued"
    assert stream.events[1].event == "status" and stream.events[1].data["status"] == "running"
    assert kinds[-2:] == ["evaluation", "status"]
    assert stream.events[-1].data["status"] == "succeeded"
    assert set(kinds[2:-2]) == {"progress", "epoch"}, kinds

    epochs = stream.of("epoch")
    assert [e.data["epoch"] for e in epochs] == [1, 2]
    assert all(e.data["epochs"] == 2 for e in epochs)
    running_s = job["timings"]["running_s"]
    assert all(0 < e.data["seconds"] < running_s for e in epochs), "each epoch's wall time"
    assert all(e.data["steps"] == live_run.batches // 2 for e in epochs)
    # The worker chose how many batches run per call, and says so with each epoch.
    chosen = {e.data["steps_per_execution"] for e in epochs}
    assert len(chosen) == 1 and 1 < chosen.pop() <= live_run.batches // 2, epochs
    for index, event in enumerate(epochs):
        logs = event.data["logs"]
        assert set(logs) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert logs == {key: values[index] for key, values in job["history"].items()}

    evaluation = stream.of("evaluation")[0].data
    assert set(evaluation) == {"loss", "accuracy"}
    assert evaluation == job["evaluation"]

    progress = stream.of("progress")
    assert progress, "a job of seconds reports its batches"
    for event in progress:
        assert set(event.data) == PROGRESS_KEYS, event.data
        assert event.data["epochs"] == 2
        assert event.data["steps"] in (None, live_run.batches // 2)
        assert event.data["elapsed_s"] >= 0
    batches = [e.data for e in progress if e.data["step"]]
    assert batches, "some progress events report a batch"
    assert all(isinstance(p["loss"], float) and p["eta_s"] is not None for p in batches)
    assert {p["steps_per_execution"] for p in batches} == {epochs[0].data["steps_per_execution"]}
    # The last progress says the job is done, before its evaluation and final status.
    last = progress[-1].data
    assert (last["epoch"], last["eta_s"]) == (2, 0)
    assert kinds.index("evaluation") > stream.events.index(progress[-1])


def test_batch_progress_is_throttled(live_run: LiveRun) -> None:
    progress = live_run.stream.of("progress")
    seconds = progress[-1].data["elapsed_s"]
    assert seconds >= 1.0, f"the job trained {seconds}s; too short to measure a rate"
    rate = len(progress) / seconds
    assert rate <= 4.5, f"{len(progress)} progress events in {seconds}s of training"
    assert len(progress) < live_run.batches / 20


def test_late_subscriber_gets_the_whole_sequence(client: httpx.Client, live_run: LiveRun) -> None:
    late = read_events(client, live_run.job["id"], timeout=30)
    assert late.ended
    assert late.events == durable(live_run.stream.events)
    assert len(late.of("progress")) == 1


def test_after_query_resumes_after_that_event(client: httpx.Client, live_run: LiveRun) -> None:
    events = live_run.stream.events
    for index in (0, 1, len(events) // 2, len(events) - 2, len(events) - 1):
        rest = read_events(client, live_run.job["id"], after=events[index].id, timeout=30)
        assert rest.ended
        assert rest.events == [e for e in durable(events) if e.id > events[index].id]


def test_reconnect_with_last_event_id_has_no_gap_and_no_repeat(
    client: httpx.Client, big_npz: Path
) -> None:
    dataset = upload(client, big_npz)
    job_id = submit(client, seed_job(dataset["id"], epochs=3, batch_size=32))

    first = read_events(client, job_id, until=epochs_seen(1))
    assert not first.ended
    second = read_events(client, job_id, last_event_id=first.ids[-1], until=epochs_seen(1))
    assert not second.ended, "the job has a third epoch to go"
    third = read_events(client, job_id, after=second.ids[-1])
    assert third.ended

    assert wait_for_job(client, job_id, timeout=10)["status"] == "succeeded"
    full = read_events(client, job_id, timeout=30)
    union = first.events + second.events + third.events
    assert [e.id for e in union] == sorted({e.id for e in union}), "no repeat"
    assert durable(union) == full.events, "no gap"
    assert [e.data["epoch"] for e in full.of("epoch")] == [1, 2, 3]


def test_many_subscribers_see_the_same_sequence(client: httpx.Client, big_npz: Path) -> None:
    dataset = upload(client, big_npz)
    job_id = submit(client, seed_job(dataset["id"], epochs=2, batch_size=64))
    streams: list[Stream | BaseException] = []

    def subscribe() -> None:
        try:
            with httpx.Client(base_url=str(client.base_url), timeout=60) as own:
                streams.append(read_events(own, job_id))
        except BaseException as error:  # reported below, in the test's thread
            streams.append(error)

    threads = [threading.Thread(target=subscribe) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(streams) == 5
    for stream in streams:
        assert isinstance(stream, Stream), stream
        assert stream.ended
    first = streams[0]
    assert isinstance(first, Stream)
    assert first.events[-1].data["status"] == "succeeded"
    # Each saw every event; of the progress events, those while it was reading.
    expected = durable(first.events)
    assert all(isinstance(s, Stream) and durable(s.events) == expected for s in streams)


def test_unknown_job_is_a_404_not_a_stream(client: httpx.Client) -> None:
    for job_id in ("0" * 32, "no-such-job"):
        response = client.get(f"/v1/jobs/{job_id}/events")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["detail"]["code"] == "job_not_found"


def test_running_job_shows_its_progress(client: httpx.Client, big_npz: Path) -> None:
    dataset = upload(client, big_npz)
    job_id = submit(client, long_job(dataset["id"]))
    try:
        deadline = time.monotonic() + 60
        job: dict[str, Any] = {}
        while time.monotonic() < deadline:
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] == "running" and (job["progress"].get("step") or 0) > 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"no batch progress within 60s: {job}")
        progress = job["progress"]
        assert set(progress) >= PROGRESS_KEYS, progress
        assert progress["epochs"] == 50 and 0 <= progress["epoch"] < 50
        assert progress["steps"] == ROWS // 32 and 0 < progress["step"] <= progress["steps"]
        assert progress["elapsed_s"] > 0 and progress["eta_s"] > 0
        assert isinstance(progress["loss"], float)
    finally:
        cancel_and_wait(client, job_id)


def test_deleting_the_job_ends_its_stream(client: httpx.Client, big_npz: Path) -> None:
    dataset = upload(client, big_npz)
    job_id = submit(client, long_job(dataset["id"]))
    seen = read_events(client, job_id, until=lambda s: bool(s.of("progress")))
    done: list[Stream] = []
    connected = threading.Event()

    def connect_then_read_on(stream: Stream) -> bool:
        if stream.events:  # the replay has begun: the stream is open before the delete
            connected.set()
        return False

    reader = threading.Thread(
        target=lambda: done.append(read_events(client, job_id, until=connect_then_read_on))
    )
    reader.start()
    assert connected.wait(timeout=60), "the second stream never opened"
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    reader.join(timeout=60)
    assert done, "the stream of a deleted job must end"
    stream = done[0]
    assert stream.ended
    kept = [e for e in seen.events if e.event != "progress"]
    assert [e for e in stream.events if e.event != "progress"][: len(kept)] == kept
    last = stream.events[-1]
    assert (last.id, last.event, last.data) == (None, "deleted", {"status": "deleted"})
    assert client.get(f"/v1/jobs/{job_id}/events").status_code == 404


# Heartbeats need a service whose keep-alive period fits in a test.


@pytest.fixture(scope="module")
def heartbeat_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = embedded(
        tmp_path_factory.mktemp("events-hb"), "events-hb", REMOTEFIT_EVENTS_HEARTBEAT_SECONDS="0.5"
    )
    service.start()
    yield service
    service.stop()


def test_keep_alives_while_nothing_happens(heartbeat_service: Service, big_npz: Path) -> None:
    with heartbeat_service.client() as client:
        dataset = upload(client, big_npz)
        busy = submit(client, long_job(dataset["id"]))
        try:
            deadline = time.monotonic() + 60
            while client.get(f"/v1/jobs/{busy}").json()["status"] != "running":
                assert time.monotonic() < deadline, "the long job never started"
                time.sleep(0.1)
            waiting = submit(client, seed_job(dataset["id"], epochs=1))  # queued behind it

            # Subscribed from the start: the queued status, then only keep-alives.
            start = time.monotonic()
            idle = read_events(client, waiting, until=lambda s: len(s.comments) >= 3, timeout=20)
            assert time.monotonic() - start < 5
            assert [(e.event, e.data["status"]) for e in idle.events] == [("status", "queued")]
            assert idle.comments == [": keep-alive"] * 3

            # Resumed after the latest event: nothing to replay, keep-alives keep it open.
            resumed = read_events(
                client, waiting, after=idle.ids[-1], until=lambda s: len(s.comments) >= 2
            )
            assert resumed.events == [] and len(resumed.comments) == 2

            assert client.post(f"/v1/jobs/{waiting}/cancel").status_code == 200
            end = read_events(client, waiting, after=idle.ids[-1], timeout=20)
            assert end.ended
            assert [(e.event, e.data["status"]) for e in end.events] == [("status", "cancelled")]
        finally:
            assert cancel_and_wait(client, busy)["status"] == "cancelled"
