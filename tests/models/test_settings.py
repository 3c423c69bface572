"""Settings: embedded defaults, and a bad variable stops start-up naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models.settings import Settings, SettingsError, load_settings


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'remotefit.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert settings.store_root == tmp_path / "store"
    assert settings.embedded
    assert settings.visibility_timeout > settings.max_job_seconds


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMOTEFIT_MAX_EPOCHS", "lots")
    with pytest.raises(SettingsError, match=r"REMOTEFIT_MAX_EPOCHS.*'lots'"):
        load_settings()


def test_cli_refuses_to_start_with_a_bad_setting(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "remotefit.cli", "serve"],
        env={
            "REMOTEFIT_PORT": "99999",
            "PATH": "/usr/bin:/bin",
            "REMOTEFIT_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "REMOTEFIT_PORT" in result.stderr and "99999" in result.stderr
    assert "Traceback" not in result.stderr
