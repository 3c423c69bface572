"""``Client``: remote training that feels like Keras.

from remotefit import Client
client = Client("http://gpu-box:8000")
history = client.fit(model, x_train, y_train, epochs=20, batch_size=128)
score = client.evaluate(model, x_test, y_test, batch_size=128)
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotefit.errors import RemoteFitError
from remotefit.http import Http
from remotefit.keras_bridge import (
    Arrays,
    callbacks_spec,
    compile_spec,
    load_remote_weights,
    save_local_weights,
)
from remotefit.progress import Progress
from remotefit.resources import Datasets, Job, Jobs
from remotefit.sweeps import SweepResult, Sweeps, objective_of, search


@dataclass
class History:
    """What ``model.fit`` returns: ``history`` by metric, ``epoch``, ``params``, ``model``."""

    history: dict[str, list[float]]
    params: dict[str, Any]
    model: Any
    job: Job
    epoch: list[int] = field(default_factory=list)


class Client:
    """A remotefit server. ``url``/``token`` default to REMOTEFIT_URL/REMOTEFIT_TOKEN."""

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60):
        self.http = Http(url, token, timeout)
        self.datasets = Datasets(self.http)
        self.jobs = Jobs(self.http)
        self.sweeps = Sweeps(self.http)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def me(self) -> dict[str, Any]:
        """The caller: name, admin or not, the token's scopes, each quota and its use."""
        result: dict[str, Any] = self.http.json("GET", "/v1/me")
        return result

    def workers(self) -> list[dict[str, Any]]:
        """The live workers: name, host, devices, ``idle`` or ``busy`` (and the job), jobs done,
        last heartbeat. Admins only, once the service has users."""
        items: list[dict[str, Any]] = self.http.json("GET", "/v1/workers")["items"]
        return items

    def inspect(self, model: Any) -> dict[str, Any]:
        """What the server makes of a model (a Keras model, its JSON string or object)."""
        body = model.to_json() if hasattr(model, "to_json") else model
        result: dict[str, Any] = self.http.json("POST", "/v1/models/inspect", json={"model": body})
        return result

    def _run(self, model: Any, spec: dict[str, Any], arrays: Arrays, verbose: int | str) -> Job:
        """Upload the model's weights and the arrays, submit, follow, load the result back."""
        uploaded = []
        with tempfile.TemporaryDirectory(prefix="remotefit-") as folder:
            weights = self.datasets.upload(save_local_weights(model, Path(folder)))
        uploaded.append(weights["id"])
        try:
            if arrays.arrays:
                dataset = arrays.upload(self.datasets)
                uploaded.append(dataset)
                for split in spec["data"].values():
                    split["dataset"] = dataset
            spec["model"] = json.loads(model.to_json())
            spec["initial_weights"] = {"dataset": weights["id"]}
            job = self.jobs.submit(spec)
            progress = Progress(verbose, spec.get("fit", {}).get("epochs", 0))
            try:
                for event in job.events():
                    progress(event)
            except KeyboardInterrupt:
                job.cancel()  # Ctrl-C stops the remote job too
                raise
            job.wait()
        finally:
            for dataset_id in uploaded:
                # A job that is not finished still uses it; then the server keeps it.
                with contextlib.suppress(RemoteFitError):
                    self.datasets.delete(dataset_id)
        return job

    def fit(
        self,
        model: Any,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: int | str = "auto",
        callbacks: list[Any] | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: bool = True,
        class_weight: dict[int, float] | None = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_freq: int = 1,
    ) -> History:
        """``model.fit`` on the server; afterwards ``model`` holds the trained weights."""
        arrays = Arrays()
        data: dict[str, Any] = {"train": arrays.split("", x, y, sample_weight)}
        if validation_data is not None:
            data["validation"] = arrays.split("val_", *validation_data)
        fit = {
            "epochs": epochs,
            "batch_size": batch_size or 32,
            "validation_split": validation_split,
            "shuffle": shuffle,
            "class_weight": {str(k): float(v) for k, v in class_weight.items()}
            if class_weight
            else None,
            "initial_epoch": initial_epoch,
            "steps_per_epoch": steps_per_epoch,
            "validation_steps": validation_steps,
            "validation_freq": validation_freq,
            "callbacks": callbacks_spec(callbacks),
        }
        spec = {"compile": compile_spec(model), "data": data, "fit": fit}
        job = self._run(model, spec, arrays, verbose)
        load_remote_weights(model, job)
        history = job.data["history"]
        count = len(next(iter(history.values()), []))
        return History(
            history=history,
            params={"epochs": epochs, "steps": job.data["progress"].get("steps"), "verbose": 0},
            model=model,
            job=job,
            epoch=list(range(initial_epoch, initial_epoch + count)),
        )

    def sweep(
        self,
        model: Any,
        x: Any = None,
        y: Any = None,
        *,
        parameters: dict[str, Any],
        objective: str | dict[str, Any] = "val_loss",
        epochs: int = 1,
        batch_size: int | None = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        sampler: dict[str, Any] | None = None,
        pruner: dict[str, Any] | None = None,
        max_trials: int = 10,
        max_concurrent_trials: int = 1,
        name: str | None = None,
        verbose: int | str = 1,
    ) -> SweepResult:
        """Search ``parameters`` (as in ``POST /v1/sweeps``: JSON Pointers into the job the
        local model and arrays make) on the server; returns the best trial, with a model
        trained to its weights (``result.model``: the local model itself when no parameter
        changes the model's JSON). ``objective`` is a History key (``val_accuracy`` is
        maximized, ``val_loss`` minimized) or ``{"metric", "direction"}``."""
        arrays = Arrays()
        data: dict[str, Any] = {"train": arrays.split("", x, y)}
        if validation_data is not None:
            data["validation"] = arrays.split("val_", *validation_data)
        fit: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size or 32}
        if validation_split:
            fit["validation_split"] = validation_split
        sweep = {
            "name": name,
            "parameters": parameters,
            "objective": objective_of(objective),
            "sampler": sampler or {"type": "tpe"},
            "pruner": pruner or {"type": "none"},
            "budget": {"max_trials": max_trials, "max_concurrent_trials": max_concurrent_trials},
        }
        return search(self.http, model, data, arrays, fit, sweep, verbose)

    def evaluate(
        self,
        model: Any,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: int | str = 0,
        sample_weight: Any = None,
        steps: int | None = None,
        return_dict: bool = False,
    ) -> Any:
        """``model.evaluate`` on the server, with the local model's current weights."""
        arrays = Arrays()
        data = {"test": arrays.split("", x, y, sample_weight)}
        spec = {
            "compile": compile_spec(model),
            "data": data,
            "fit": {"epochs": 0},
            "evaluate": {"batch_size": batch_size, "steps": steps},
        }
        job = self._run(model, spec, arrays, 0)
        result: dict[str, float] = job.data["evaluation"]
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values

    def predict(
        self, model: Any, x: Any, batch_size: int | None = None, verbose: int | str = 0
    ) -> Any:
        """``model.predict`` on the server, with the local model's current weights."""
        import numpy as np

        spec = {"compile": compile_spec(model), "data": {}, "fit": {"epochs": 0}}
        job = self._run(model, spec, Arrays(), 0)
        try:
            result = job.predict(x, batch_size=batch_size)
        finally:
            job.delete()
        if isinstance(result, dict):
            return [np.asarray(value, dtype=np.float32) for value in result.values()]
        return np.asarray(result, dtype=np.float32)
