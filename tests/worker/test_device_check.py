"""A worker says what it trains on, and refuses GPUs it cannot use instead of using the CPU."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.services import Service, embedded
from worker.device_check import DeviceError, check, describe, device_list, probe

CPU_ONLY = {
    "tensorflow": "2.21.0",
    "keras": "3.15.1",
    "built_with_cuda": False,
    "cuda": None,
    "cudnn": None,
    "gpus": [],
    "visible": None,
}


def test_the_report_on_this_cpu_machine() -> None:
    report = probe()
    assert report["tensorflow"].startswith("2.21") and report["keras"].startswith("3.15")
    assert report["gpus"] == []  # no GPU here
    assert "trains on the CPU (no GPU visible)" in describe(report)
    [cpu] = device_list(report)  # what GET /v1/workers and each job show
    assert cpu["kind"] == "CPU" and cpu["cores"] == os.cpu_count() and cpu["name"]
    gpus = device_list({**report, "gpus": [{"name": "A100", "compute_capability": "8.0"}] * 2})
    assert gpus == [{"kind": "GPU", "name": "A100", "compute_capability": "8.0"}] * 2  # no NVML


@pytest.mark.parametrize(
    ("report", "requested", "host_gpus", "phrase"),
    [
        (CPU_ONLY, [3], False, "built without CUDA"),
        (CPU_ONLY, [], True, "this host has NVIDIA GPUs"),
        ({**CPU_ONLY, "built_with_cuda": True, "visible": "3"}, [3], True, "sees 0 GPU(s)"),
        (
            {**CPU_ONLY, "built_with_cuda": True, "gpus": [{"name": "A", "compute_capability": 9}]},
            [0, 1],
            True,
            "sees 1 GPU(s)",
        ),
    ],
)
def test_devices_that_would_go_unused_stop_the_worker(
    report: dict[str, Any], requested: list[int], host_gpus: bool, phrase: str
) -> None:
    with pytest.raises(DeviceError, match="remotefit worker: .*" + re.escape(phrase)):
        check(report, requested, host_gpus)


def test_no_gpu_asked_for_on_a_host_without_gpus_trains_on_the_cpu() -> None:
    check(CPU_ONLY, [], host_gpus=False)  # no refusal


def test_worker_with_a_gpu_it_cannot_see_exits_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "REMOTEFIT_DATA_DIR": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "remotefit.cli", "worker", "--gpu", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "remotefit worker:" in result.stderr
    assert "pip install 'remotefit[server,gpu]'" in result.stderr
    assert not (tmp_path / "remotefit.db").exists()  # stopped before anything started


def test_a_started_worker_logs_its_devices(tmp_path: Path) -> None:
    service: Service = embedded(tmp_path, "device-report")
    service.start()
    try:
        deadline = time.monotonic() + 120  # the pool process imports TensorFlow after /readyz
        while "ready: TensorFlow" not in service.logs(400) and time.monotonic() < deadline:
            time.sleep(0.2)
        logs = service.logs(400)
    finally:
        service.stop()
    assert "ready: TensorFlow 2.21" in logs and "trains on the CPU (no GPU visible)" in logs
