"""The ``remotefit`` CLI's client commands, run for real against a real embedded service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import seed_model
from tests.services import Service, free_port


def cli(service_url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remotefit.cli", *args, "--url", service_url],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.fixture
def job_file(tmp_path: Path, seed_npz: Path) -> Path:
    spec = {
        "name": "cli-seed",
        "model": json.loads(seed_model().to_json()),
        "compile": {"loss": "binary_crossentropy", "optimizer": "rmsprop", "metrics": ["accuracy"]},
        "data": {
            "train": {"dataset": f"@{seed_npz}", "x": "x_train", "y": "y_train"},
            "test": {"dataset": f"@{seed_npz}", "x": "x_test", "y": "y_test"},
        },
        "fit": {"epochs": 2, "batch_size": 128},
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(spec))
    return path


def test_submit_watch_show_weights(
    embedded_service: Service, job_file: Path, seed_npz: Path, tmp_path: Path
) -> None:
    url = embedded_service.url
    watched = cli(url, "submit", str(job_file), "--data", str(seed_npz), "--watch")
    assert watched.returncode == 0, watched.stderr
    assert "succeeded" in watched.stdout and "evaluation: " in watched.stdout
    assert "Epoch 2/2" in watched.stdout
    listed = json.loads(cli(url, "jobs", "--status", "succeeded", "--json").stdout)
    job_id = next(job["id"] for job in listed if job["name"] == "cli-seed")
    shown = cli(url, "show", job_id)
    assert shown.returncode == 0 and "accuracy" in shown.stdout and "epoch 2/2" in shown.stdout
    target = tmp_path / "seed.weights.h5"
    assert cli(url, "weights", job_id, "-o", str(target)).returncode == 0
    model = seed_model()
    model.load_weights(target)
    watched_again = cli(url, "watch", job_id)
    assert watched_again.returncode == 0 and "succeeded" in watched_again.stdout


def test_a_failed_job_exits_1(embedded_service: Service, job_file: Path, seed_npz: Path) -> None:
    spec = json.loads(job_file.read_text())
    spec["fit"]["epochs"], spec["fit"]["batch_size"], spec["time_limit_s"] = 10_000, 1, 1
    job_file.write_text(json.dumps(spec))
    result = cli(embedded_service.url, "submit", str(job_file), "--data", str(seed_npz), "--watch")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed" in result.stdout and "time limit" in result.stdout


def test_refusals_print_the_server_message_and_exit_2(
    embedded_service: Service, job_file: Path, seed_npz: Path
) -> None:
    spec = json.loads(job_file.read_text())
    spec["fit"]["epochs"] = -1
    job_file.write_text(json.dumps(spec))
    result = cli(embedded_service.url, "submit", str(job_file), "--data", str(seed_npz))
    assert result.returncode == 2
    assert "fit.epochs" in result.stderr and "Traceback" not in result.stderr
    missing = cli(embedded_service.url, "show", "0" * 32)
    assert missing.returncode == 2 and "No job with id" in missing.stderr


def test_datasets_and_inspect(embedded_service: Service, seed_npz: Path, tmp_path: Path) -> None:
    url = embedded_service.url
    uploaded = json.loads(cli(url, "datasets", "upload", str(seed_npz), "--json").stdout)
    assert [a["name"] for a in uploaded["arrays"]][:2] == ["x_train", "y_train"]
    assert uploaded["id"] in cli(url, "datasets", "list").stdout
    assert cli(url, "datasets", "delete", uploaded["id"]).returncode == 0
    model_file = tmp_path / "model.json"
    model_file.write_text(seed_model().to_json())
    inspected = cli(url, "inspect", str(model_file))
    assert inspected.returncode == 0 and "Total params" in inspected.stdout


def test_no_server_exits_3() -> None:
    result = cli(f"http://127.0.0.1:{free_port()}", "jobs")
    assert result.returncode == 3
    assert "Cannot reach the remotefit server" in result.stderr
