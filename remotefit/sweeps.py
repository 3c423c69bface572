"""Sweeps of a remotefit server, as Python objects; ``search``, behind ``Client.sweep``."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from remotefit.errors import JobFailed, RemoteFitError
from remotefit.http import Event, Http
from remotefit.keras_bridge import Arrays, compile_spec, load_remote_weights
from remotefit.resources import Datasets, Job

SWEEP_FINAL = ("succeeded", "failed", "cancelled")
# Metrics where more is better: an objective given by name alone is maximized for these.
MORE_IS_BETTER = ("acc", "auc", "precision", "recall", "f1", "iou")


class Sweep:
    """A submitted sweep: its latest known state in ``data``."""

    def __init__(self, http: Http, data: dict[str, Any]) -> None:
        self._http = http
        self.data = data

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def trials(self) -> list[dict[str, Any]]:
        return list(self.data.get("trials") or [])

    @property
    def best(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = self.data.get("best")
        return best

    def __repr__(self) -> str:
        return f"<Sweep {self.id} {self.status}>"

    def refresh(self) -> Sweep:
        self.data = self._http.json("GET", f"/v1/sweeps/{self.id}")
        return self

    def events(self, after: int = 0) -> Iterator[Event]:
        """Live events until the sweep ends: ``trial`` (each status), ``epoch``, ``sweep``."""
        return self._http.events(f"/v1/sweeps/{self.id}/events", after)

    def wait(self, timeout: float | None = None, raise_on_failure: bool = True) -> Sweep:
        """Block until the sweep has ended and its trials stopped; ``JobFailed`` unless it
        succeeded."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for _ in self.events():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"sweep {self.id} still {self.status} after {timeout}s")
        self.refresh()
        if raise_on_failure and self.status != "succeeded":
            error = self.data.get("error") or {}
            raise JobFailed(
                f"Sweep {self.id} ended {self.status}: {error.get('message', 'no message')}",
                code=str(error.get("code", self.status)),
                detail=self.data,
            )
        return self

    def cancel(self) -> Sweep:
        try:
            self.data = self._http.json("POST", f"/v1/sweeps/{self.id}/cancel")
        except RemoteFitError as error:
            if error.status_code != 409:  # already ended: nothing to cancel
                raise
        return self

    def delete(self) -> None:
        self._http.request("DELETE", f"/v1/sweeps/{self.id}")

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
