"""Keras objects whose config sizes an allocation: refused from the config, before any build.

``AUC(num_thresholds=20_000_000)`` was accepted and took 1.3 GB in the API, then the same in
the worker. Each metric and lookup/preprocessing layer that sizes a table by its config is a
422 naming the object, the value and the limit, within a second, with the API's peak memory
flat; the tables also count in the training-memory estimate.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.errors import LimitExceeded
from models.keras.config_sizes import SIZED, total_sized_values
from tests.api.test_hostile_models import _layer, _sequential
from tests.services import Service

HUGE = 10**9


def _metric(class_name: str, **config: Any) -> dict[str, Any]:
    return {"module": "keras.metrics", "class_name": class_name, "config": config}


METRICS = {
    "AUC": _metric("AUC", num_thresholds=20_000_000),
    "AUC labels": _metric("AUC", num_thresholds=200, num_labels=HUGE, multi_label=True),
    "PrecisionAtRecall": _metric("PrecisionAtRecall", recall=0.5, num_thresholds=HUGE),
    "RecallAtPrecision": _metric("RecallAtPrecision", precision=0.5, num_thresholds=HUGE),
    "SensitivityAtSpecificity": _metric(
        "SensitivityAtSpecificity", specificity=0.5, num_thresholds=HUGE
    ),
    "SpecificityAtSensitivity": _metric(
        "SpecificityAtSensitivity", sensitivity=0.5, num_thresholds=HUGE
    ),
    "MeanIoU": _metric("MeanIoU", num_classes=100_000),
    "IoU": _metric("IoU", num_classes=100_000, target_class_ids=[0]),
    "OneHotIoU": _metric("OneHotIoU", num_classes=100_000, target_class_ids=[0]),
    "OneHotMeanIoU": _metric("OneHotMeanIoU", num_classes=100_000),
}
LAYERS = {
    "IntegerLookup": _layer("IntegerLookup", "ints", max_tokens=HUGE),
    "StringLookup": _layer("StringLookup", "words", max_tokens=HUGE, num_oov_indices=1),
    "StringLookup oov": _layer("StringLookup", "oov", num_oov_indices=HUGE),
    "TextVectorization": _layer(
        "TextVectorization", "text", max_tokens=HUGE, output_mode="tf_idf", pad_to_max_tokens=True
    ),
    "CategoryEncoding": _layer("CategoryEncoding", "onehot", num_tokens=HUGE),
    "Hashing": _layer("Hashing", "hash", num_bins=HUGE, output_mode="one_hot"),
    "HashedCrossing": _layer("HashedCrossing", "cross", num_bins=HUGE),
    "Discretization": _layer("Discretization", "bins", num_bins=HUGE),
}


def _job(model: dict[str, Any], metrics: list[Any] | None = None) -> dict[str, Any]:
    return {
        "model": model,
        "compile": {"loss": "mse", "metrics": metrics or []},
        "data": {"train": {"x": [[0.0] * 4], "y": [[0.0] * 4]}},
        "fit": {"epochs": 1},
    }


def _peak_mib(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    assert match
    return int(match.group(1)) / 1024


def _refused(client: httpx.Client, path: str, body: dict[str, Any], *phrases: str) -> None:
    for attempt in range(2):  # once more after a scheduling stall: refused, nothing is made
        started = time.monotonic()
        response = client.post(path, json=body)
        if time.monotonic() - started < 1.0:
            break
        assert attempt == 0, (phrases, "took over a second, twice")
    assert response.status_code == 422, response.text[:500]
    detail = response.json()["detail"]
    assert detail["code"] == "limit_exceeded", detail
    for phrase in (*phrases, "REMOTEFIT_MAX_CONFIG_VALUES"):
        assert phrase in detail["message"], (phrase, detail["message"])


def test_sized_objects_are_refused_from_their_config(
    client: httpx.Client, service: Service
) -> None:
    api = service.processes[0].pid
    before_jobs = client.get("/v1/jobs").json()["total"]
    peak = _peak_mib(api)
    model = _sequential(_layer("Dense", "d", units=4))
    for metric in METRICS.values():
        value = max(v for v in metric["config"].values() if isinstance(v, int))
        phrases = (metric["class_name"], f"={value}")
        _refused(client, "/v1/jobs", _job(model, [metric]), *phrases)
        body = _job(model)
        body["compile"]["metrics"] = {"d": [metric]}  # nested under an output name too
        _refused(client, "/v1/jobs", body, *phrases)
    for layer in LAYERS.values():
        value = f"={HUGE}"
        name = layer["config"]["name"]
        for path, body in (
            ("/v1/jobs", _job(_sequential(layer))),
            ("/v1/models/inspect", {"model": _sequential(layer)}),
        ):
            _refused(client, path, body, repr(name), layer["class_name"], value)
    assert client.get("/v1/jobs").json()["total"] == before_jobs
    assert _peak_mib(api) - peak < 256
    assert client.get("/readyz").status_code == 200


def test_every_sized_class_is_in_the_corpus() -> None:
    covered = {m["class_name"] for m in METRICS.values()} | {
        layer["class_name"] for layer in LAYERS.values()
    }
    assert covered == set(SIZED)


def test_every_sized_class_is_a_keras_class() -> None:
    import keras

    for class_name in SIZED:
        assert hasattr(keras.metrics, class_name) or hasattr(keras.layers, class_name), class_name


def test_tables_count_in_the_training_memory_estimate(tmp_path: Path) -> None:
    from models.jobs.validation import check_job
    from models.settings import Settings
    from models.spec import JobCreate

    auc = _metric("AUC", num_thresholds=1_000_000)  # under the per-object limit
    spec = JobCreate.model_validate(_job(_sequential(_layer("Dense", "d", units=4)), [auc]))
    assert total_sized_values([spec.model, spec.compile.model_dump(mode="json")]) == 4_000_000
    check_job(spec, {}, Settings(data_dir=tmp_path))
    with pytest.raises(LimitExceeded, match="metric/lookup tables"):
        check_job(spec, {}, Settings(data_dir=tmp_path, max_training_bytes=8 * 1024**2))
