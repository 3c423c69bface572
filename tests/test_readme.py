"""The README's walk-throughs work when pasted as they are (against the embedded service)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.services import Service

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str, language: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block under {heading!r}"
    return match.group(1)


def test_readme_starts_with_the_two_setup_commands() -> None:
    first = re.search(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert first
    lines = first.group(1).strip().splitlines()
    assert (
        lines[0]
        == "# run the service (embedded default: SQLite + a local folder, nothing else to install)"
    )
    assert lines[1].endswith("remotefit serve")
    assert lines[2] == "# run the tests"
    assert "pytest" in lines[3]


def test_curl_walkthrough(embedded_service: Service, tmp_path: Path) -> None:
    repo = README.parent
    script = _block("### With curl", "sh").replace(".venv/bin/python", sys.executable)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "URL": embedded_service.url, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("succeeded {"), result.stdout
    assert (tmp_path / "seed.weights.h5").stat().st_size > 10_000


def test_python_walkthrough(embedded_service: Service, tmp_path: Path) -> None:
    script = _block("### With Python", "python")
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**os.environ, "URL": embedded_service.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("succeeded "), result.stdout
