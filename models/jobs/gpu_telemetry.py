"""GPU utilisation and memory of a running job, sampled through NVML by its monitor thread.

On a GPU worker each heartbeat adds the devices' utilisation (%) and memory in use to the job's
progress, with their peak and mean so far, which the job keeps when it ends. On a CPU worker,
or where NVML (``nvidia-ml-py``, in the ``gpu`` extra) or its driver library is missing, there
is nothing to sample and the progress has no ``gpu`` entry: absent, not zero.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class GpuTelemetry:
    """Samples the GPUs this process may use; ``sample()`` is None when there are none."""

    handles: list[Any] = field(default_factory=list)
    samples: int = 0
    utilization_total: float = 0.0
    peak_utilization: float = 0.0
    peak_memory_bytes: int = 0

    @classmethod
    def open(cls) -> GpuTelemetry:
        """The GPUs of ``CUDA_VISIBLE_DEVICES`` (all, when unset) through NVML, if any."""
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except Exception:  # no package, no driver, no GPU: a CPU worker
            return cls()
        # NVML numbers GPUs by PCI bus, CUDA by speed unless CUDA_DEVICE_ORDER=PCI_BUS_ID: the
        # two agree inside a container given its GPUs, and where that variable is set.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        indices = list(range(count))
        if visible is not None:
            indices = [int(i) for i in visible.split(",") if i.strip().isdigit() and int(i) < count]
        return cls([pynvml.nvmlDeviceGetHandleByIndex(index) for index in indices])

    def sample(self) -> dict[str, Any] | None:
        """This instant's utilisation (mean over the job's GPUs) and memory, with peak and mean."""
        if not self.handles:
            return None
        import pynvml

        try:
            utilization = [pynvml.nvmlDeviceGetUtilizationRates(h).gpu for h in self.handles]
            memory = sum(int(pynvml.nvmlDeviceGetMemoryInfo(h).used) for h in self.handles)
        except Exception:
            log.warning("GPU telemetry failed; it stops for this job", exc_info=True)
            self.handles = []
            return None
        now = sum(utilization) / len(utilization)
        self.samples += 1
        self.utilization_total += now
        self.peak_utilization = max(self.peak_utilization, now)
        self.peak_memory_bytes = max(self.peak_memory_bytes, memory)
        return {
            "devices": len(self.handles),
            "utilization": round(now, 1),
            "memory_bytes": memory,
            "peak_utilization": round(self.peak_utilization, 1),
            "mean_utilization": round(self.utilization_total / self.samples, 1),
            "peak_memory_bytes": self.peak_memory_bytes,
        }


def memory_totals() -> list[int]:
    """Each visible GPU's memory in bytes, in CUDA's order; empty on a CPU worker."""
    telemetry = GpuTelemetry.open()
    if not telemetry.handles:
        return []
    import pynvml

    try:
        return [int(pynvml.nvmlDeviceGetMemoryInfo(h).total) for h in telemetry.handles]
    except Exception:
        return []
