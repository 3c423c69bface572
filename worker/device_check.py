"""What a worker trains on, said at start, and a refusal to start on the wrong devices.

A worker told to use a GPU it cannot see, or on a host with NVIDIA GPUs whose TensorFlow was
built without CUDA, would otherwise train on the CPU without a word: hours lost before anyone
notices. The check runs TensorFlow in a short-lived child process (``python -m
worker.device_check``), since the worker's own parent process forks its pool and must never
import TensorFlow.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

GPU_EXTRA = "pip install 'remotefit[server,gpu]'"


class DeviceError(SystemExit):
    """The worker must not start: the message says why and what to install or change."""

    def __init__(self, message: str) -> None:
        super().__init__(f"remotefit worker: {message}")


def host_has_nvidia_gpus() -> bool:
    """Whether the NVIDIA driver reports GPUs on this host (read without TensorFlow)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def probe() -> dict[str, Any]:
    """TensorFlow's view of this process's devices, versions and CUDA build."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    build = tf.sysconfig.get_build_info()
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(
            {
                "name": details.get("device_name", device.name),
                "compute_capability": details.get("compute_capability"),
            }
        )
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
        "cuda": build.get("cuda_version"),
        "cudnn": build.get("cudnn_version"),
        "gpus": gpus,
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def device_list(report: dict[str, Any]) -> list[dict[str, Any]]:
    """What a job trains on, for ``GET /v1/workers`` and each job: every GPU TensorFlow sees
    (name, compute capability, memory where NVML tells it), or else the CPU."""
    if not report["gpus"]:
        cpu = platform.processor() or platform.machine()
        return [{"kind": "CPU", "name": cpu, "cores": os.cpu_count()}]
    from models.jobs.gpu_telemetry import memory_totals

    memory = memory_totals()
    return [
        {"kind": "GPU", **gpu, **({"memory_bytes": memory[i]} if i < len(memory) else {})}
        for i, gpu in enumerate(report["gpus"])
    ]


def describe(report: dict[str, Any]) -> str:
    """One log line: versions and devices."""
    gpus = ", ".join(
        f"{gpu['name']} (compute {gpu['compute_capability']})" for gpu in report["gpus"]
    )
    cuda = "no CUDA"
    if report["built_with_cuda"]:
        cuda = f"CUDA {report['cuda']}, cuDNN {report['cudnn']}"
    return f"TensorFlow {report['tensorflow']}, Keras {report['keras']} ({cuda}); trains on " + (
        f"GPU: {gpus}" if gpus else "the CPU (no GPU visible)"
    )


def check(report: dict[str, Any], requested: list[int], host_gpus: bool) -> None:
    """Refuse to start when the devices asked for, or the host's GPUs, would go unused.

    Raises:
        DeviceError: with what is wrong and how to fix it.
    """
    if (requested or host_gpus) and not report["built_with_cuda"]:
        raise DeviceError(
            f"this host has NVIDIA GPUs{' and --gpu was given' if requested else ''}, but "
            f"TensorFlow {report['tensorflow']} here was built without CUDA, so every job would "
            f"train on the CPU. Install the GPU build: {GPU_EXTRA} (TensorFlow with its CUDA "
            "libraries), or use the Docker image, which has them."
        )
    if requested and len(report["gpus"]) < len(requested):
        shown = ",".join(map(str, requested))
        raise DeviceError(
            f"GPU {shown} was asked for (--gpu/--gpus), but TensorFlow sees "
            f"{len(report['gpus'])} GPU(s) with CUDA_VISIBLE_DEVICES={report['visible']!r}. "
            "Check the index against `nvidia-smi`, the driver, and that the CUDA libraries load "
            f"({GPU_EXTRA}); the worker will not fall back to the CPU."
        )


def check_in_child(requested: list[int]) -> dict[str, Any]:
    """Probe the devices in a child process, as the worker's pool will see them; refuse bad ones.

    Raises:
        DeviceError: the devices asked for cannot be used (see ``check``).
    """
    result = subprocess.run(
        [sys.executable, "-m", "worker.device_check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise DeviceError(f"TensorFlow could not list the devices: {result.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    check(report, requested, host_has_nvidia_gpus())
    return report


if __name__ == "__main__":
    print(json.dumps(probe()))
