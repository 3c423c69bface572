"""Sweeps of a remotefit server, as Python objects; ``search``, behind ``Client.sweep``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remotefit.errors import JobFailed, RemoteFitError
from remotefit.http import Http
from remotefit.keras_bridge import Arrays, compile_spec, load_remote_weights
from remotefit.resources import Datasets, Job, Remote

SWEEP_FINAL = ("succeeded", "failed", "cancelled")
# Metrics where more is better: an objective given by name alone is maximized for these.
MORE_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "iou")


class Sweep(Remote):
    """A submitted sweep: its events are ``trial`` (each status), ``epoch`` and ``sweep``; it
    has ended when the sweep has and its trials have stopped."""

    collection = "sweeps"

    @property
    def trials(self) -> list[dict[str, Any]]:
        return list(self.data.get("trials") or [])

    @property
    def best(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = self.data.get("best")
        return best

    def job(self, number: int) -> Job:
        """Trial ``number``'s job (its weights, model, predictions)."""
        trial = next((t for t in self.trials if t["number"] == number), None)
        if trial is None or not trial.get("job"):
            raise RemoteFitError(f"Sweep {self.id} has no trial {number} with a job.")
        return Job(self._http, self._http.json("GET", f"/v1/jobs/{trial['job']}"))


class Sweeps:
    def __init__(self, http: Http) -> None:
        self._http = http

    def submit(self, spec: Mapping[str, Any]) -> Sweep:
        return Sweep(self._http, self._http.json("POST", "/v1/sweeps", json=dict(spec)))

    def get(self, sweep_id: str) -> Sweep:
        return Sweep(self._http, self._http.json("GET", f"/v1/sweeps/{sweep_id}"))

    def list(self, status: str | None = None, limit: int = 50, offset: int = 0) -> list[Sweep]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        body = self._http.json("GET", "/v1/sweeps", params=params)
        return [Sweep(self._http, item) for item in body["items"]]


@dataclass
class SweepResult:
    """What ``Client.sweep`` returns: the sweep, its best trial, and a model with its weights
    (the local model itself when no parameter changed the model's JSON)."""

    sweep: Sweep
    best: dict[str, Any]
    job: Job
    model: Any


def objective_of(objective: str | Mapping[str, Any]) -> dict[str, Any]:
    """``"val_loss"`` → minimize; ``"val_accuracy"`` → maximize; or ``{"metric", "direction"}``."""
    if isinstance(objective, Mapping):
        return dict(objective)
    name = objective.removeprefix("val_")
    more = any(part in name for part in MORE_IS_BETTER)
    return {"metric": objective, "direction": "maximize" if more else "minimize"}


def search(
    http: Http,
    model: Any,
    data: dict[str, Any],
    arrays: Arrays,
    fit: dict[str, Any],
    sweep: dict[str, Any],
    verbose: int | str,
) -> SweepResult:
    """Upload the arrays, run the sweep on the model's JSON, return the best trial's model.

    Every trial starts from freshly initialised weights, as a new ``model.fit`` would.
    """
    datasets = Datasets(http)
    dataset = arrays.upload(datasets) if arrays.arrays else None
    try:
        if dataset is not None:
            for split in data.values():
                split["dataset"] = dataset
        base = {
            "model": json.loads(model.to_json()),
            "compile": compile_spec(model),
            "data": data,
            "fit": fit,
        }
        submitted = Sweeps(http).submit({**sweep, "base": base})
        try:
            for event in submitted.events():
                if (
                    verbose
                    and event.type == "trial"
                    and event.data.get("status")
                    in (
                        "succeeded",
                        "pruned",
                        "failed",
                        "cancelled",
                    )
                ):
                    value = event.data.get("value")
                    print(f"trial {event.data['number']} {event.data['status']}: {value}")
        except KeyboardInterrupt:
            submitted.cancel()  # Ctrl-C stops the remote sweep too
            raise
        submitted.wait()
    finally:
        if dataset is not None:
            with contextlib.suppress(RemoteFitError):
                datasets.delete(dataset)
    best = submitted.best
    if best is None:
        raise JobFailed(f"Sweep {submitted.id} has no best trial.", detail=submitted.data)
    job = submitted.job(int(best["number"]))
    return SweepResult(submitted, best, job, _trained(model, job, http))


def _trained(model: Any, job: Job, http: Http) -> Any:
    """The local model with the job's weights if the trial kept its JSON, else a new model
    built from the trial's JSON (wider layers, say) and compiled as the local one."""
    spec = http.json("GET", f"/v1/jobs/{job.id}/spec")
    target = model
    if spec["model"] != json.loads(model.to_json()):
        import keras

        target = keras.models.model_from_json(json.dumps(spec["model"]))
        target.compile(**{k: v for k, v in spec["compile"].items() if k != "steps_per_execution"})
    load_remote_weights(target, job)
    return target
