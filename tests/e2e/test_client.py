"""The Python client: the seed example with only its fit/evaluate/predict calls changed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from remotefit import Client, JobFailed, RemoteFitError
from tests.conftest import seed_arrays, seed_model, tf_keras_seed_model
from tests.services import Service


@pytest.fixture
def remote(service: Service) -> Client:
    return Client(service.url)


def _compiled() -> object:
    model = seed_model()
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    return model


def test_seed_example_through_the_client(remote: Client) -> None:
    data = seed_arrays()
    model = _compiled()
    history = remote.fit(
        model, data["x_train"], data["y_train"], epochs=3, batch_size=128, verbose=0
    )
    assert sorted(history.history) == ["accuracy", "loss"]
    assert history.epoch == [0, 1, 2]
    assert history.job.status == "succeeded"
    # After fit the local model holds the trained weights: predicting locally equals remotely.
    local = model.predict(data["x_test"], verbose=0)  # type: ignore[attr-defined]
    remote_predictions = history.job.predict(data["x_test"])
    np.testing.assert_allclose(local, np.asarray(remote_predictions), atol=1e-5)
    score = remote.evaluate(model, data["x_test"], data["y_test"], batch_size=128)
    local_score = model.evaluate(data["x_test"], data["y_test"], batch_size=128, verbose=0)  # type: ignore[attr-defined]
    assert score == pytest.approx(local_score, abs=1e-4)
    np.testing.assert_allclose(remote.predict(model, data["x_test"][:5]), local[:5], atol=1e-5)


def test_fit_continues_from_the_local_weights(remote: Client) -> None:
    import keras

    data = seed_arrays()
    model = _compiled()
    remote.fit(model, data["x_train"], data["y_train"], epochs=2, verbose=0)
    trained = model.get_weights()  # type: ignore[attr-defined]
    # With a learning rate of 0 a fit changes nothing: if it started from these weights (as a
    # second local fit would), it hands back exactly these weights.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="binary_crossentropy")  # type: ignore[attr-defined]
    remote.fit(model, data["x_train"], data["y_train"], epochs=1, verbose=0)
    for before, after in zip(trained, model.get_weights(), strict=True):  # type: ignore[attr-defined]
        np.testing.assert_array_equal(before, after)


def test_server_errors_arrive_as_exceptions_with_the_message(remote: Client) -> None:
    model = _compiled()
    with pytest.raises(RemoteFitError, match=r"data.train.x.*shape \[10, 19\]") as caught:
        remote.fit(model, np.zeros((10, 19)), np.zeros((10, 1)), verbose=0)
    assert caught.value.status_code == 422
    assert not isinstance(caught.value, JobFailed)


def test_seed_example_with_a_tf_keras_model(remote: Client) -> None:
    data = seed_arrays()
    model = tf_keras_seed_model()
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    history = remote.fit(
        model, data["x_train"], data["y_train"], epochs=2, batch_size=128, verbose=0
    )
    assert sorted(history.history) == ["accuracy", "loss"]
    score = remote.evaluate(model, data["x_test"], data["y_test"], batch_size=128)
    local = model.evaluate(data["x_test"], data["y_test"], batch_size=128, verbose=0)
    assert score == pytest.approx(local, abs=1e-4)


FIT_FOREVER = """
import signal
import sys
from typing import Any

# A shell that started the suite in the background ignores SIGINT, and a child inherits that:
# Python then installs no KeyboardInterrupt handler. The client's Ctrl-C is what is tested.
signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np
from remotefit import Client
from tests.conftest import seed_model
model = seed_model()
model.compile(loss="binary_crossentropy", optimizer="rmsprop")
x = np.random.random((20000, 20)); y = np.random.randint(2, size=(20000, 1))
Client(sys.argv[1]).fit(model, x, y, epochs=1000, batch_size=16, verbose=0)
"""


def test_ctrl_c_cancels_the_remote_job(service: Service) -> None:
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    before = service.unfinished_jobs()
    process = subprocess.Popen(
        [sys.executable, "-c", FIT_FOREVER, service.url],
        cwd=root,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a Ctrl-C meant for this child alone, not for pytest
    )
    try:
        with Client(service.url) as client:
            deadline = time.monotonic() + 120
            running: list[Any] = []
            while not running and time.monotonic() < deadline and process.poll() is None:
                running = [
                    j for j in client.jobs.list(status="running") if j.data["progress"].get("step")
                ]
                time.sleep(0.2)
            assert running, f"the fit never started running: {process.poll()=}"
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=60)
            assert "KeyboardInterrupt" in stderr
            job = running[0]
            deadline = time.monotonic() + 60
            while job.refresh().status == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert job.status == "cancelled"
    finally:
        process.kill()
        process.communicate()
        # Whatever happened above, the 1,000-epoch job must not go on training on the worker
        # that every later test shares.
        service.cancel(service.unfinished_jobs() - before)


def test_upload_streams_a_file_byte_for_byte(remote: Client, tmp_path: Any) -> None:
    """The client's own multipart body: odd names survive, the arrays arrive exactly."""
    rng = np.random.default_rng(3)
    arrays = {"x": rng.random((3000, 70)), "y": rng.integers(9, size=(3000, 1))}
    path = tmp_path / 'odd "name" é.npz'
    np.savez(path, allow_pickle=False, **arrays)
    dataset = remote.datasets.upload(path)
    assert dataset["filename"] == 'odd "name" é.npz'
    assert dataset["size_bytes"] == path.stat().st_size
    shapes = {array["name"]: array["shape"] for array in dataset["arrays"]}
    assert shapes == {"x": [3000, 70], "y": [3000, 1]}
