"""upload_ratio, upload_rss_mib and big_data_ratio: moving large data through the service."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import h5py
import httpx
import numpy as np

from bench.common import Timer, run_job
from remotefit import Client


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


class PeakRss(threading.Thread):
    """Samples a process's resident memory while a block runs; ``growth`` is peak minus start."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.start_mib = rss_mib(pid)
        self.peak_mib = self.start_mib
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.02):
            self.peak_mib = max(self.peak_mib, rss_mib(self.pid))

    def __enter__(self) -> PeakRss:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join()

    @property
    def growth(self) -> float:
        return self.peak_mib - self.start_mib


def write_npy(path: Path, mib: int) -> None:
    """A float32 .npy of ``mib`` MiB, written in slices (never whole in memory)."""
    rows = mib * 1024 * 1024 // (256 * 4)
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, 256))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 65536):
        array[start : start + 65536] = rng.random((min(65536, rows - start), 256))
    array.flush()
    del array


def _copy(source: Path, target: Path) -> None:
    """A plain copy through user space, as an upload must move the bytes (no kernel offload)."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while block := reader.read(4 * 1024 * 1024):
            writer.write(block)


def upload(client: httpx.Client, folder: Path, api_pid: int, mib: int) -> dict[str, float]:
    """Upload throughput of a large .npy (by remotefit's client) ÷ a local copy of it; the
    API's memory growth.

    Both sides start with the disk's dirty pages flushed (os.sync), alternate, and keep their
    best of five runs: the same copy took from 0.25 s to 1.3 s here, as the disk's writeback
    allowed, and the best of each side is the figure least decided by it.
    """
    source = folder / "big.npy"
    write_npy(source, mib)
    copies, uploads, growth = [], [], 0.0
    with Client(str(client.base_url)) as remote:
        for _ in range(5):
            os.sync()
            with Timer() as copy:
                _copy(source, folder / "copy.npy")
            copies.append(copy.seconds)
            (folder / "copy.npy").unlink()
            os.sync()
            with PeakRss(api_pid) as memory, Timer() as sent:
                dataset = remote.datasets.upload(source)
            uploads.append(sent.seconds)
            growth = max(growth, memory.growth)
            remote.datasets.delete(dataset["id"])
    source.unlink()
    return {
        "ratio": min(copies) / min(uploads),
        "rss_growth_mib": growth,
        "copy_s": min(copies),
        "upload_s": min(uploads),
    }


def write_h5(path: Path, mib: int) -> int:
    rows = mib * 1024 * 1024 // (64 * 4)
    rng = np.random.default_rng(2)
    with h5py.File(path, "w") as file:
        x = file.create_dataset("x", shape=(rows, 64), dtype="float32", chunks=(8192, 64))
        y = file.create_dataset("y", shape=(rows, 1), dtype="float32")
        for start in range(0, rows, 65536):
            stop = min(rows, start + 65536)
            x[start:stop] = rng.random((stop - start, 64), dtype=np.float32)
            y[start:stop] = rng.integers(2, size=(stop - start, 1))
    return rows


def _dense_model() -> dict[str, Any]:
    import json

    import keras

    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    return dict(json.loads(model.to_json()))


def big_data(client: httpx.Client, folder: Path, mib: int) -> dict[str, float]:
    """Training throughput on an HDF5 file streamed from disk ÷ the same data held in RAM."""
    path = folder / "big.h5"
    rows = write_h5(path, mib)
    with open(path, "rb") as handle:
        response = client.post("/v1/datasets", files={"file": ("big.h5", handle)}, timeout=600)
    response.raise_for_status()
    streamed_id = response.json()["id"]
    spec: dict[str, Any] = {
        "model": _dense_model(),
        "compile": {"loss": "binary_crossentropy", "optimizer": "adam"},
        "data": {"train": {"dataset": streamed_id, "x": "x", "y": "y"}},
        "fit": {"epochs": 1, "batch_size": 1024, "shuffle": True},
    }
    seconds_streamed, job = run_job(client, spec)
    worker_pid = int(job["worker"].rpartition(":")[2])
    peak = rss_mib(worker_pid, "VmHWM")
    with h5py.File(path) as file:
        in_ram = folder / "big.npz"
        np.savez(in_ram, x=file["x"][()], y=file["y"][()])
    with open(in_ram, "rb") as handle:
        response = client.post("/v1/datasets", files={"file": ("big.npz", handle)}, timeout=600)
    response.raise_for_status()
    spec["data"]["train"]["dataset"] = response.json()["id"]
    seconds_ram, _ = run_job(client, spec)
    return {
        "ratio": seconds_ram / seconds_streamed,
        "worker_peak_rss_mib": peak,
        "file_mib": path.stat().st_size / 2**20,
        "rows": rows,
    }
