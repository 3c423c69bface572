"""``bench/gpu_check``: is the service using this machine's GPU, and how fast, as one JSON.

The seed model and a small convnet (the keras.io MNIST one) trained through an embedded service
against a direct ``model.fit`` on the same device: ms per step both ways, the GPU's utilisation
and memory during the served jobs (absent on a CPU), the devices the worker reports, and the
worker and devices each job ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import steps
from bench.common import run_job, upload_arrays
from tests.services import embedded
from worker.device_check import check_in_child


def check(rows: int, conv_rows: int, epochs: int, folder: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {"devices": check_in_child([])}
    service = embedded(folder)
    service.start()
    try:
        for workload in (steps.seed_workload(rows), steps.conv_workload(conv_rows)):
            ratio = steps.step_ratio(service, folder, workload, epochs, rounds=1)
            with service.client() as client:
                dataset = upload_arrays(client, folder, f"gpu-{workload.name}", **workload.arrays)
                job = run_job(client, workload.job(dataset, epochs))[1]
            figures[workload.name] = {
                "served_ms_per_step": ratio["served_ms_per_step"],
                "direct_ms_per_step": ratio["direct_ms_per_step"],
                "ratio": ratio["ratio"],
                "steps_per_execution": ratio["steps_per_execution"],
                "gpu": job["progress"].get("gpu"),  # absent on a CPU
                "ran_on": job.get("ran_on"),  # the worker and the devices the job trained on
            }
    finally:
        service.stop()
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/gpu_check", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script")
    args = parser.parse_args(argv)
    sizes = (1_000, 256, 2) if args.smoke else (64_000, 6_400, 4)
    with tempfile.TemporaryDirectory(prefix="remotefit-gpu-check-") as folder:
        figures = check(*sizes, Path(folder))
    json.dump(figures, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
