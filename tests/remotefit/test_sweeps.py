"""Sweeps from the client's side: ``client.sweep`` on a local Keras model, and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from remotefit import Client
from tests.e2e.test_sweeps import counter_sweep
from tests.remotefit.test_commands import cli
from tests.services import Service


def local_model() -> object:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(20,)),
            keras.layers.Dense(4, activation="relu", name="hidden"),
            keras.layers.Dense(1, activation="sigmoid", name="out"),
        ]
    )
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def test_client_sweep_returns_the_best_trial_with_a_model_of_its_weights(
    embedded_service: Service,
) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((256, 20), dtype=np.float32)
    y = (x[:, :1] > 0.5).astype(np.float32)
    with Client(embedded_service.url) as client:
        before = {d["id"] for d in client.datasets.list()}  # the service is shared by tests
        result = client.sweep(
            local_model(),
            x,
            y,
            parameters={
                "units": {
                    "target": "/model/config/layers/@hidden/config/units",
                    "categorical": [2, 8],
                }
            },
            objective="val_accuracy",
            epochs=2,
            validation_split=0.25,
            sampler={"type": "grid", "seed": 1},
            max_trials=2,
            verbose=0,
        )
        assert result.sweep.status == "succeeded"
        assert result.sweep.data["objective"] == {
            "metric": "val_accuracy",
            "direction": "maximize",
        }
        assert len(result.sweep.trials) == 2
        values = [t["value"] for t in result.sweep.trials]
        assert result.best["value"] == max(values)
        # The best trial's width, with its weights: it predicts as the server's job does.
        units = result.best["params"]["units"]
        assert result.model.get_layer("hidden").units == units  # type: ignore[attr-defined]
        local = result.model.predict(x[:8], verbose=0)  # type: ignore[attr-defined]
        np.testing.assert_allclose(local, np.asarray(result.job.predict(x[:8])), atol=1e-5)
        after = {d["id"] for d in client.datasets.list()}
        assert after == before, "the uploaded arrays are removed afterwards"


def test_cli_submits_watches_lists_and_shows_a_sweep(
    embedded_service: Service, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    data = tmp_path / "counter.npz"
    x = rng.random((640, 20), dtype=np.float32)
    np.savez(data, x=x, y=np.full((640, 1), 1e4, dtype=np.float32))
    spec = counter_sweep(f"@{data}", epochs=2)
    spec["budget"] = {"max_trials": 2, "max_concurrent_trials": 1}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(spec))

    done = cli(embedded_service.url, "sweep", "submit", str(path), "--data", str(data), "--watch")
    assert done.returncode == 0, done.stderr
    assert "status" in done.stdout and "best: trial" in done.stdout
    assert re.search(r"^trial 1  pruned ", done.stdout, re.MULTILINE), done.stdout
    found = re.search(r"^([0-9a-f]{32})  succeeded  counter-lr$", done.stdout, re.MULTILINE)
    assert found, done.stdout
    sweep_id = found.group(1)
    listed = cli(embedded_service.url, "sweeps")
    assert listed.returncode == 0 and sweep_id in listed.stdout
    shown = cli(embedded_service.url, "sweep", "show", sweep_id, "--json")
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["status"] == "succeeded"
    missing = cli(embedded_service.url, "sweep", "show", "0" * 32)
    assert missing.returncode == 2 and "No sweep with id" in missing.stderr
