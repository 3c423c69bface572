"""GPU telemetry is absent, not zero, on a worker without GPUs (this machine)."""

from __future__ import annotations

from pathlib import Path

from models.jobs.gpu_telemetry import GpuTelemetry


def test_no_gpu_no_telemetry() -> None:
    assert not Path("/proc/driver/nvidia/gpus").exists(), "this test expects a machine without GPUs"
    telemetry = GpuTelemetry.open()
    assert telemetry.handles == []
    assert telemetry.sample() is None
    assert telemetry.samples == 0
