"""The trained model for TensorFlow Serving: a SavedModel archive whose serving_default
signature answers what predict answers."""

from __future__ import annotations

import tarfile
from pathlib import Path

import httpx
import numpy as np

from tests.conftest import seed_arrays, seed_job, upload
from tests.e2e.test_weights import _remote_predictions, _run


def test_savedmodel_serves_what_predict_answers(
    client: httpx.Client, seed_npz: Path, tmp_path: Path
) -> None:
    import tensorflow as tf

    job = _run(client, seed_job(str(upload(client, seed_npz)["id"]), epochs=2))
    url = f"/v1/jobs/{job['id']}/model"
    first = client.get(url, params={"format": "savedmodel"})
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/gzip"
    assert first.headers["content-disposition"].endswith('.savedmodel.tar.gz"')
    again = client.get(url, params={"format": "savedmodel"})
    assert again.content == first.content  # made once, then kept with the job's artifacts

    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(first.content)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "serving", filter="data")
    assert "1/saved_model.pb" in names  # a version folder, as TensorFlow Serving expects

    loaded = tf.saved_model.load(str(tmp_path / "serving" / "1"))
    serve = loaded.signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    x = seed_arrays()["x_test"].astype(np.float32)
    (served,) = serve(**{input_name: tf.constant(x)}).values()
    np.testing.assert_allclose(served.numpy(), _remote_predictions(client, job["id"], x), atol=1e-5)


def test_savedmodel_of_an_unknown_job_is_a_404(client: httpx.Client) -> None:
    response = client.get("/v1/jobs/0123456789abcdef0123456789abcdef/model?format=savedmodel")
    assert response.status_code == 404, response.text
