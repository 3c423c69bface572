"""The Python client: the seed example with only its fit/evaluate/predict calls changed."""

from __future__ import annotations

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
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])  # type: ignore[attr-defined]
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
    data = seed_arrays()
    model = _compiled()
    first = remote.fit(model, data["x_train"], data["y_train"], epochs=2, verbose=0)
    second = remote.fit(model, data["x_train"], data["y_train"], epochs=2, verbose=0)
    # The second call starts where the first ended, as a second local fit would.
    assert second.history["loss"][0] < first.history["loss"][0]


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
