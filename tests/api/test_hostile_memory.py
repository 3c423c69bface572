"""The API's peak memory over the whole hostile corpus: every class of it, on both stacks.

Peak memory (``VmHWM`` of the API's own process), not current: a request that allocates
gigabytes and frees them again is what the bound is for. The corpus is every class the other
hostile tests send one by one (models, configs that size an allocation, requests that used to
end in a 500, multipart bodies, compressed and declared-size bombs, CSV bounds, predict rows),
sent here back to back; each is a 4xx, nothing is created, and the peak grows < 256 MiB.
"""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np

from tests.api import test_hostile_requests
from tests.api.test_hostile_models import HOSTILE, _deep, _layer
from tests.api.test_hostile_models import _job as model_job
from tests.api.test_hostile_requests import (
    Request,
    _npz,
    multipart_corpus,
    naming_corpus,
    non_finite_corpus,
    nul_corpus,
    predict_corpus,
    range_corpus,
)
from tests.api.test_sized_configs import LAYERS, METRICS, _peak_mib, _sequential
from tests.api.test_sized_configs import _job as sized_job
from tests.assertions import snapshot
from tests.services import Service

PEAK_GROWTH_MIB = 256
# The trained job, the diverged one and the dataset the requests' corpus is aimed at.
ids = test_hostile_requests.ids
made = test_hostile_requests.made


def _raw_upload(filename: str, content: bytes) -> Request:
    headers = {"content-type": "application/octet-stream"}
    return ("POST", f"/v1/datasets?filename={filename}", {"content": content, "headers": headers})


def _declaring(shape: tuple[int, ...]) -> bytes:
    """An .npy file whose header declares ``shape`` of float64, holding eight bytes."""
    buffer = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + bytes(8)


def upload_corpus() -> dict[str, Request]:
    """Files that would take far more memory than their size, or more than a bound allows."""
    bomb = io.BytesIO()
    np.savez_compressed(bomb, bomb=np.zeros((9_000, 1_000)))  # 72 MB in about 70 kB
    header = ",".join(f"c{i}" for i in range(10_001))  # one column over the bound
    return {
        "npz member expanding 1000 times": _raw_upload("bomb.npz", bomb.getvalue()),
        "npy declaring 8 GB": _raw_upload("big.npy", _declaring((10**9,))),
        "npz member declaring 8 GB": _raw_upload("big.npz", _npz_of(_declaring((10**9,)))),
        "CSV past its columns": _raw_upload("wide.csv", f"{header}\n".encode()),
        "CSV that is not numbers": _raw_upload("words.csv", b"a,b\nx,y\n"),
    }


def _npz_of(npy: bytes) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", npy)
    return buffer.getvalue()


def model_corpus() -> dict[str, Request]:
    """Hostile models and configs that size an allocation, to both routes that build them."""
    corpus: dict[str, Request] = {}
    for name, (model, _) in HOSTILE.items():
        corpus[f"model {name}"] = ("POST", "/v1/jobs", {"json": model_job(model)})
        corpus[f"inspect {name}"] = ("POST", "/v1/models/inspect", {"json": {"model": model}})
    deep = {"content": _deep(100_000), "headers": {"content-type": "application/json"}}
    corpus["nested 100,000 deep"] = ("POST", "/v1/models/inspect", deep)
    dense = _sequential(_layer("Dense", "d", units=4))
    for name, metric in METRICS.items():
        corpus[f"metric {name}"] = ("POST", "/v1/jobs", {"json": sized_job(dense, [metric])})
    for name, layer in LAYERS.items():
        corpus[f"layer {name}"] = ("POST", "/v1/jobs", {"json": sized_job(_sequential(layer))})
    return corpus


def test_the_api_peak_memory_over_the_whole_corpus(
    service: Service, client: httpx.Client, ids: dict[str, str]
) -> None:
    many = np.zeros((100_001, 3), np.float32)  # one row past REMOTEFIT_MAX_PREDICT_ROWS
    files = {"file": ("rows.npz", _npz(x=many))}
    rows = client.post("/v1/datasets", files=files).json()["id"]
    predict_rows = {"json": {"dataset": rows, "x": "x"}}
    corpus: dict[str, Request] = {
        **predict_corpus(ids),
        **naming_corpus(ids),
        **non_finite_corpus(),
        **range_corpus(),
        **nul_corpus(),
        **multipart_corpus(),
        **upload_corpus(),
        **model_corpus(),
        "predict on too many rows": ("POST", "/v1/jobs/{job}/predict", predict_rows),
    }
    api = service.processes[0].pid
    before = snapshot(client, service)
    peak = _peak_mib(api)
    answers: dict[str, Any] = {}
    for label, (method, path, options) in corpus.items():
        response = client.request(method, path.format(**ids), **options)
        answers[label] = response.status_code
        assert 400 <= response.status_code < 500, (label, response.status_code, response.text)
        assert "Traceback" not in response.text, label
    growth = _peak_mib(api) - peak
    assert snapshot(client, service) == before
    assert growth < PEAK_GROWTH_MIB, f"peak grew {growth:.0f} MiB over {len(corpus)} requests"
    assert client.get("/readyz").status_code == 200
    assert client.delete(f"/v1/datasets/{rows}").status_code == 204
