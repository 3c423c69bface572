"""The client is installable alone: it needs neither TensorFlow nor the server's stack."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

SERVER_ONLY = (
    "tensorflow", "keras", "fastapi", "uvicorn", "celery", "kombu", "sqlalchemy", "h5py",
    "pydantic", "pydantic_settings", "psycopg", "models", "api", "worker",
)  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def test_the_bare_package_depends_on_the_client_needs_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0] for dep in project["dependencies"]}
    assert names == {"httpx", "numpy"}
    assert "tensorflow==2.21.*" in project["optional-dependencies"]["server"]


def test_client_and_cli_import_without_any_server_module() -> None:
    # Each server-only module is made unimportable; importing the client must not notice.
    blocker = "; ".join(f"sys.modules[{name!r}] = None" for name in SERVER_ONLY)
    code = (
        f"import sys; {blocker}; "
        "import remotefit, remotefit.cli, remotefit.commands; "
        "from remotefit import Client, RemoteFitError, JobFailed; "
        "remotefit.cli.main(['jobs', '--help'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "--status" in result.stdout
