"""bench/run --smoke: the benchmark itself still runs and reports every figure of issue 6."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.main import TARGETS
from tests.services import redis_available

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_smoke_run_reports_every_figure() -> None:
    problem = redis_available()
    if not Path("/usr/bin/chromium").exists():  # the dashboard's figures are taken in Chromium
        problem = problem or "no browser at /usr/bin/chromium (apt-get install chromium)"
    if problem:
        from tests.services import need

        need(problem)
    figures = _smoke_run("run")
    assert "errors" not in figures, figures.get("errors")
    assert set(figures["verdicts"]) == set(TARGETS)
    for key in TARGETS:
        value = figures
        for part in key.split("."):
            value = value[part]
        assert isinstance(value, float | int) and value == value, key  # a number, not NaN


def _smoke_run(script: str) -> dict[str, Any]:
    """``bench/<script> --smoke``'s JSON, the script having exited 0."""
    import sys

    result = subprocess.run(
        ["bash", str(ROOT / "bench" / script), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHON": os.environ.get("PYTHON", sys.executable)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def test_gpu_check_smoke_run_reports_each_model() -> None:
    figures = _smoke_run("gpu_check")
    assert figures["devices"]["tensorflow"].startswith("2.21")
    for name in ("seed", "conv"):
        assert figures[name]["served_ms_per_step"] > 0 and figures[name]["direct_ms_per_step"] > 0
        assert figures[name]["gpu"] is None  # this machine has no GPU: absent, not zero
        assert figures[name]["ran_on"]["devices"][0]["kind"] == "CPU"
