"""Static checks of the deployment files: Dockerfile, .dockerignore and docker-compose.yml.

They need no Docker engine: the compose file is read with PyYAML and the Dockerfile line by
line. Where a compose client is installed, the file is also validated by it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from models.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SUBCOMMANDS = {"api", "worker", "serve"}
APP_SERVICES = ("api", "worker")
SHARED_SETTINGS = (
    "REMOTEFIT_DATABASE_URL",
    "REMOTEFIT_BROKER_URL",
    "REMOTEFIT_STORAGE_DIR",
    "REMOTEFIT_MAX_JOB_SECONDS",
)


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def instruction_args(dockerfile: list[tuple[str, str]], keyword: str) -> list[str]:
    return [arguments for kw, arguments in dockerfile if kw == keyword]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {name: str(value) for name, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def seconds(duration: str) -> int:
    """A compose duration such as '1m30s' in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(int(number) * units[unit] for number, unit in parts)


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_has_the_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"redis", "postgres", "api", "worker"} <= set(services)


def test_redis_keeps_queued_jobs_in_an_append_only_file(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    assert redis["image"].startswith("redis:7")
    args = command(redis)
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    volume = next(v for v in redis["volumes"] if v.split(":")[1] == "/data")
    assert volume.split(":")[0] in compose["volumes"], "Redis data must be on a named volume"


def test_postgres_matches_the_database_url(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    env = environment(postgres)
    url = urlsplit(environment(services["api"])["REMOTEFIT_DATABASE_URL"])
    assert url.scheme == "postgresql"
    assert url.hostname == "postgres"
    assert url.username == env["POSTGRES_USER"]
    assert url.password == env["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == env["POSTGRES_DB"]
    assert any(v.split(":")[0] in compose["volumes"] for v in postgres["volumes"])


def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test, f"service {name} has no healthcheck"
        assert test[0] in {"CMD", "CMD-SHELL"}, f"service {name}: healthcheck {test!r}"
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert any("/healthz" in part for part in services["api"]["healthcheck"]["test"])
    assert "worker.app:celery_app" in services["worker"]["healthcheck"]["test"]


def test_api_and_worker_wait_for_healthy_redis_and_postgres(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in APP_SERVICES:
        depends_on = services[name]["depends_on"]
        for backend in ("redis", "postgres"):
            assert depends_on[backend]["condition"] == "service_healthy", (name, backend)


def test_api_and_worker_share_database_broker_and_store(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    api, worker = (environment(services[name]) for name in APP_SERVICES)
    for setting in SHARED_SETTINGS:
        assert api[setting] == worker[setting], setting
    assert urlsplit(api["REMOTEFIT_BROKER_URL"]).scheme == "redis"
    assert urlsplit(api["REMOTEFIT_BROKER_URL"]).hostname == "redis"

    store_dir = api["REMOTEFIT_STORAGE_DIR"]
    for name in APP_SERVICES:
        mounts = dict(v.split(":")[1::-1] for v in services[name]["volumes"])
        assert mounts.get(store_dir) == "store", f"{name} does not mount the store on {store_dir}"
    assert "store" in compose["volumes"]


def test_api_publishes_its_port(services: dict[str, dict[str, Any]]) -> None:
    assert "8000:8000" in services["api"]["ports"]


def test_worker_reserves_an_nvidia_gpu_it_can_see(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert device["capabilities"] == ["gpu"]
    assert device["device_ids"] == ["0"]
    # Inside the container the reserved GPUs are numbered from 0, whatever their host index.
    args = command(worker)
    gpu = int(args[args.index("--gpu") + 1])
    assert 0 <= gpu < len(device["device_ids"])


def test_multi_gpu_worker_trains_on_the_gpus_it_reserves(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker-multi-gpu"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and len(device["device_ids"]) >= 2
    args = command(worker)
    assert args[:2] == ["remotefit", "worker"]
    gpus = [int(index) for index in args[args.index("--gpus") + 1].split(",")]
    assert sorted(gpus) == list(range(len(device["device_ids"])))  # numbered from 0 inside


def test_worker_has_time_to_finish_its_batch_on_stop(services: dict[str, dict[str, Any]]) -> None:
    assert seconds(services["worker"]["stop_grace_period"]) >= 30


def test_compose_remotefit_variables_are_settings_fields(
    services: dict[str, dict[str, Any]],
) -> None:
    names = {n for s in services.values() for n in environment(s) if n.startswith("REMOTEFIT_")}
    assert names, "no REMOTEFIT_ variable in docker-compose.yml"
    for name in sorted(names):
        assert name.removeprefix("REMOTEFIT_").lower() in Settings.model_fields, name


def test_compose_commands_use_known_subcommands(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        args = command(services[name])
        assert args[0] == "remotefit" and args[1] in SUBCOMMANDS, (name, args)
    assert command(services["api"])[1] == "api"
    assert command(services["worker"])[1] == "worker"


def compose_client() -> list[str] | None:
    """`docker compose` (v2 plugin) if it works here, else `docker-compose` (v1), else None."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid_for_the_compose_client() -> None:
    client = compose_client()
    if client is None:
        pytest.skip("no compose client: neither the docker compose plugin nor docker-compose")
    # The file requires the key tokens are hashed under, as an operator sets it.
    env = {**os.environ, "REMOTEFIT_SECRET_KEY": "0" * 64}
    result = _compose_config(client, env)
    assert result.returncode == 0, result.stderr
    del env["REMOTEFIT_SECRET_KEY"]
    refused = _compose_config(client, env)
    assert refused.returncode != 0 and "REMOTEFIT_SECRET_KEY" in refused.stderr


def _compose_config(client: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*client, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env=env,
    )


# --- Dockerfile ----------------------------------------------------------------------------


def test_the_gpu_extra_pins_the_servers_tensorflow_with_cuda() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    (server_tf,) = [d for d in extras["server"] if d.startswith("tensorflow==")]
    assert extras["gpu"] == [server_tf.replace("tensorflow==", "tensorflow[and-cuda]==")]


def test_dockerfile_base_is_the_pinned_tensorflow_gpu_image(
    dockerfile: list[tuple[str, str]],
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = project["optional-dependencies"]["server"]
    tf_pin = next(d for d in pinned if d.startswith("tensorflow=="))
    series = tf_pin.removeprefix("tensorflow==").removesuffix(".*")  # e.g. "2.21"
    (default,) = (a for a in instruction_args(dockerfile, "ARG") if a.startswith("TF_IMAGE="))
    assert default == f"TF_IMAGE=tensorflow/tensorflow:{series}.0-gpu"
    assert instruction_args(dockerfile, "FROM") == ["${TF_IMAGE}"]


def test_dockerfile_runs_as_a_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    users = instruction_args(dockerfile, "USER")
    assert users, "the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001"


def test_dockerfile_sets_the_runtime_environment(dockerfile: list[tuple[str, str]]) -> None:
    env = " ".join(instruction_args(dockerfile, "ENV"))
    for setting in (
        "REMOTEFIT_HOST=0.0.0.0",
        "REMOTEFIT_DATA_DIR=/srv/remotefit",
        "PYTHONUNBUFFERED=1",
        "TF_CPP_MIN_LOG_LEVEL=2",
    ):
        assert setting in env.split(), setting
    for name in re.findall(r"\b(REMOTEFIT_\w+)=", env):
        assert name.removeprefix("REMOTEFIT_").lower() in Settings.model_fields, name
    assert "8000" in instruction_args(dockerfile, "EXPOSE")


def test_dockerfile_healthcheck_and_cmd_use_exec_form(dockerfile: list[tuple[str, str]]) -> None:
    (healthcheck,) = instruction_args(dockerfile, "HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD ") + len("CMD ") :])
    assert probe[0] == "python3" and any("/healthz" in part for part in probe)

    (cmd,) = instruction_args(dockerfile, "CMD")
    argv = json.loads(cmd)
    assert argv[0] == "remotefit" and argv[1] in SUBCOMMANDS
    assert argv == ["remotefit", "api"]


def test_dockerfile_copies_every_package_pyproject_installs(
    dockerfile: list[tuple[str, str]],
) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in include}
    copied = [args.split()[0].rstrip("/") for args in instruction_args(dockerfile, "COPY")]
    assert packages <= set(copied), f"not copied into the image: {packages - set(copied)}"
    # Metadata first, code after: editing the code must not reinstall the dependencies.
    first_code = min(copied.index(p) for p in packages)
    assert copied.index("pyproject.toml") < first_code


# --- .dockerignore -------------------------------------------------------------------------


def test_dockerignore_keeps_local_state_out_and_the_sources_in() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", "__pycache__", ".pytest_cache"} <= patterns
    needed = {"pyproject.toml", "README.md", "api", "worker", "models", "remotefit"}
    assert not patterns & needed, f"excluded from the build context: {patterns & needed}"
