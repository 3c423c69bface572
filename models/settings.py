"""The one typed settings object, read from ``REMOTEFIT_*`` environment variables.

Every URL, path and limit of the service lives here and nowhere else. ``get_settings()`` reads
the environment once per process; tests build their own ``Settings`` or clear the cache.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(RuntimeError):
    """A ``REMOTEFIT_*`` variable has a value the service cannot start with."""


class Settings(BaseSettings):
    """Configuration of the API, the worker and the store.

    Left unset, ``database_url``, ``broker_url`` and ``storage_dir`` fall under ``data_dir``:
    SQLite for the database and the Celery broker, a local folder for the store. That is the
    embedded default; point them at PostgreSQL, Redis and a shared volume to scale out.
    """

    model_config = SettingsConfigDict(env_prefix="REMOTEFIT_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Home of the embedded default.")
    database_url: str = ""
    broker_url: str = ""
    storage_dir: Path | None = None
    queue: str = Field(default="remotefit", description="Celery queue that workers consume.")

    token: str = Field(default="", description="If set, /v1 requires Authorization: Bearer it.")
    secret_key: str = Field(
        default="", description="Key of the tokens' HMACs; else a 0600 file in data_dir."
    )
    allow_anonymous: bool = Field(
        default=False, description="Serve a non-loopback address with no user and no token."
    )
    max_running: int = Field(default=4, ge=0, description="A user's running jobs, by default.")
    max_queued: int = Field(default=100, ge=0, description="A user's queued jobs, by default.")
    max_storage: int = Field(
        default=50 * 1024**3, ge=0, description="A user's bytes of datasets and artifacts."
    )
    rate_per_second: float = Field(default=50.0, gt=0, description="A user's request rate.")
    rate_burst: int = Field(default=200, gt=0, description="Requests a user may burst to.")
    usage_half_life_seconds: float = Field(
        default=24 * 3600.0, gt=0, description="Half-life of GPU time in fair turns."
    )
    dispatch_seconds: float = Field(default=0.2, gt=0, description="Dispatcher's period.")
    drive_seconds: float = Field(default=0.25, gt=0, description="Sweep driver's period.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    max_request_bytes: int = Field(default=32 * 1024**2, gt=0, description="JSON bodies.")
    max_model_json_bytes: int = Field(default=4 * 1024**2, gt=0)
    max_json_depth: int = Field(default=64, gt=0)
    max_layers: int = Field(default=2000, gt=0)
    max_params: int = Field(default=500_000_000, gt=0)
    max_training_bytes: int = Field(
        default=64 * 1024**3, gt=0, description="Estimated training memory a job may need."
    )
    max_config_values: int = Field(
        default=4_000_000,
        gt=0,
        description="Values one Keras object's config may size: AUC thresholds, IoU classes², "
        "a lookup layer's tokens (see models.keras.config_sizes).",
    )
    max_epochs: int = Field(default=100_000, gt=0)
    max_batch_size: int = Field(default=1_000_000, gt=0)
    max_dataset_arrays: int = Field(default=256, gt=0)
    max_npz_expansion: int = Field(
        default=200, gt=0, description="Most a compressed .npz member may expand (times)."
    )
    max_csv_rows: int = Field(default=10_000_000, gt=0)
    max_csv_columns: int = Field(default=10_000, gt=0)
    max_csv_cells: int = Field(
        default=250_000_000, gt=0, description="Cells of one CSV upload (4 bytes each once parsed)."
    )
    max_weights_json_values: int = Field(default=1_000_000, gt=0, description="?format=json")
    max_predict_rows: int = Field(default=100_000, gt=0)
    max_job_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="Longest job allowed.")
    job_seconds: int = Field(default=24 * 3600, gt=0, description="Time limit of a job by default.")
    heartbeat_seconds: float = Field(
        default=0.5, gt=0, description="Period of a running job's heartbeat, progress and checks."
    )
    cancel_poll_seconds: float = Field(
        default=0.1, gt=0, description="How often a running job reads its cancel flag."
    )
    lease_seconds: float = Field(default=60.0, gt=0, description="Silence before a worker is lost.")
    sweep_seconds: float = Field(default=10.0, gt=0, description="Period of the job sweeper.")
    events_heartbeat_seconds: float = Field(default=15.0, gt=0, description="SSE keep-alive.")
    events_poll_seconds: float = Field(default=0.2, gt=0, description="SSE polling period.")
    max_event_streams: int = Field(
        default=256, gt=0, description="Event streams open at once per API process (429 past)."
    )
    temp_max_age_seconds: float = Field(default=3600.0, ge=0, description="Stale upload temps.")
    checkpoint_seconds: float = Field(
        default=10.0, ge=0, description="Least time between two checkpoints of a running job."
    )
    stream_bytes: int = Field(
        default=256 * 1024**2, ge=0, description="Train on larger splits batch by batch from disk."
    )
    max_attempts: int = Field(default=3, ge=1)
    distribute: bool = Field(
        default=False,
        description="Train each job under MirroredStrategy over every device the worker sees "
        "(`remotefit worker --gpus 0,1`); batch_size is then the global batch.",
    )
    cpu_devices: int = Field(
        default=1, ge=1, le=64, description="Split the CPU into this many logical devices."
    )
    broker_poll_seconds: float = Field(default=0.05, gt=0, description="SQLite broker polling.")

    @model_validator(mode="after")
    def _fill_embedded_defaults(self) -> Settings:
        data_dir = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{data_dir / 'remotefit.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{data_dir / 'broker.db'}"
        if self.storage_dir is None:
            self.storage_dir = data_dir / "store"
        return self

    @property
    def store_root(self) -> Path:
        """The store's folder (always set after validation)."""
        assert self.storage_dir is not None
        return self.storage_dir.resolve()

    @property
    def visibility_timeout(self) -> int:
        """Seconds Redis waits before redelivering an unacked message: above the longest job."""
        return self.max_job_seconds + 3600

    @property
    def embedded(self) -> bool:
        """True when the broker is the SQLite one, which cannot be shared across machines."""
        return self.broker_url.startswith("sqla+sqlite")


def load_settings() -> Settings:
    """Read the environment, turning a bad value into one message that names the variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"REMOTEFIT_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']} "
            f"(received {e.get('input')!r})"
            for e in error.errors()
        )
        raise SettingsError(f"Invalid remotefit settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
