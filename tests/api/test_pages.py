"""The dashboard's pages and the offline docs over plain HTTP: no JavaScript, no browser."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.examples import INLINE_JOB
from tests.conftest import seed_job, upload, wait_for_job
from tests.services import Service

PAGES = ["/", "/datasets", "/submit", "/docs", "/redoc"]
# Any attribute that makes a browser fetch something: it must name this server.
FETCHING = re.compile(r"""(?:src|href|action)\s*=\s*["']([^"']*)["']""")


def inline_job(name: str, epochs: int = 1) -> dict[str, Any]:
    return {**INLINE_JOB, "name": name, "fit": {**INLINE_JOB["fit"], "epochs": epochs}}


def same_origin_only(html: str) -> list[str]:
    """The URLs of ``html`` that point at another origin."""
    return [url for url in FETCHING.findall(html) if re.match(r"^(?:[a-z]+:)?//", url)]


@pytest.fixture(scope="module")
def finished_job(embedded_service: Service) -> dict[str, Any]:
    with embedded_service.client() as http:
        job = http.post("/v1/jobs", json=inline_job("pages-finished", epochs=3)).json()
        return wait_for_job(http, job["id"])


def test_every_page_renders_and_names_no_other_origin(
    embedded_service: Service, finished_job: dict[str, Any]
) -> None:
    with embedded_service.client() as http:
        for path in [*PAGES, f"/jobs/{finished_job['id']}"]:
            response = http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/html"), path
            assert same_origin_only(response.text) == [], path


def test_docs_load_their_assets_from_the_package(embedded_service: Service) -> None:
    with embedded_service.client() as http:
        swagger = http.get("/docs").text
        redoc = http.get("/redoc").text
        assert "/static/vendor/swagger-ui-bundle.js" in swagger
        assert "/static/vendor/swagger-ui.css" in swagger
        assert "validatorUrl" in swagger  # off: the badge would call validator.swagger.io
        assert "/static/vendor/redoc.standalone.js" in redoc
        assert "fonts.googleapis.com" not in redoc
        for asset in re.findall(r"/static/vendor/[\w.-]+", swagger + redoc):
            response = http.get(asset)
            assert response.status_code == 200, asset
            assert len(response.content) > 10_000, asset


def test_an_unknown_id_or_page_gets_the_dashboards_404(embedded_service: Service) -> None:
    with embedded_service.client() as http:
        for path in ("/jobs/nosuchjob", "/jobs/nosuchjob/history.csv", "/no/such/page"):
            response = http.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("text/html")
            assert "<h1>Not found</h1>" in response.text
            assert 'href="/"' in response.text
        api = http.get("/v1/jobs/nosuchjob")  # the API keeps its JSON errors
        assert api.status_code == 404
        assert api.json()["detail"]["code"] == "job_not_found"


def test_the_list_filters_sorts_and_pages_in_the_query_string(client: httpx.Client) -> None:
    ids = [client.post("/v1/jobs", json=inline_job(f"listed-{i}")).json()["id"] for i in range(3)]
    for job_id in ids:
        wait_for_job(client, job_id)
    page = client.get("/", params={"name": "listed-", "status": "succeeded", "sort": "name"})
    assert page.status_code == 200
    names = re.findall(r'<a href="/jobs/\w+">(listed-\d)</a>', page.text)
    assert names == ["listed-0", "listed-1", "listed-2"]
    assert "epoch 1/1 (100%)" in page.text
    assert 'aria-sort="ascending"' in page.text
    assert "/?status=succeeded&amp;name=listed-&amp;sort=-name" in page.text  # the other way
    reverse = client.get("/", params={"name": "listed-", "sort": "-name"}).text
    assert re.findall(r">(listed-\d)</a>", reverse) == ["listed-2", "listed-1", "listed-0"]
    none = client.get("/", params={"name": "listed-", "status": "failed"}).text
    assert "No jobs match these filters" in none
    odd = {"page": "999", "sort": "bogus", "status": "x"}
    assert client.get("/", params=odd).status_code == 200


def test_the_list_shows_a_queued_jobs_place_and_pages_on(embedded_service: Service) -> None:
    with embedded_service.client() as http:
        for index in range(51):
            http.post("/v1/jobs", json=inline_job(f"paged-{index:02d}"))
        first = http.get("/", params={"name": "paged-"}).text
        assert "page 1 of 2" in first
        assert 'rel="next"' in first
        assert "in line" in first  # 51 jobs cannot all have started yet
        second = http.get("/", params={"name": "paged-", "page": "2"}).text
        assert len(re.findall(r'<tr data-job="', second)) == 1
        assert 'rel="prev"' in second


def test_the_job_page_shows_epochs_arguments_and_downloads(
    embedded_service: Service, finished_job: dict[str, Any]
) -> None:
    job_id = finished_job["id"]
    with embedded_service.client() as http:
        page = http.get(f"/jobs/{job_id}").text
        table = page[page.index('<table id="epochs"') :]
        body = table[table.index("<tbody>") : table.index("</tbody>")]
        assert body.count("<tr") == 3
        assert "<h3>compile()</h3>" in page
        assert f"/v1/jobs/{job_id}/weights?format=keras3" in page
        assert f"curl -N http://127.0.0.1:{embedded_service.port}/v1/jobs/{job_id}/events" in page
        assert 'id="status-line" role="status"' in page
        history = http.get(f"/jobs/{job_id}/history.csv")
        lines = history.text.strip().splitlines()
        assert lines[0] == "epoch,accuracy,loss"
        assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_cancel_asks_first_then_cancels(embedded_service: Service) -> None:
    with embedded_service.client() as http:
        job = http.post("/v1/jobs", json=inline_job("to-cancel", epochs=10_000)).json()
        page = http.get(f"/jobs/{job['id']}").text
        assert re.search(r'<button type="submit" class="danger">Cancel</button>', page)
        assert 'data-confirm="Cancel job to-cancel?"' in page
        asked = http.post(f"/jobs/{job['id']}/cancel", data={"back": "/"})
        assert asked.status_code == 200
        assert "Cancel job to-cancel?" in asked.text
        assert http.get(f"/v1/jobs/{job['id']}").json()["status"] in ("queued", "running")
        done = http.post(f"/jobs/{job['id']}/cancel", data={"confirmed": "yes", "back": "/"})
        assert done.status_code == 303
        assert done.headers["location"] == "/"
        assert wait_for_job(http, job["id"])["status"] == "cancelled"


def test_a_page_of_another_origin_cannot_post(embedded_service: Service) -> None:
    with embedded_service.client() as http:
        job = http.post("/v1/jobs", json=inline_job("not-yours", epochs=10_000)).json()
        for path in (f"/jobs/{job['id']}/cancel", f"/v1/jobs/{job['id']}/cancel"):
            refused = http.post(
                path, data={"confirmed": "yes"}, headers={"Origin": "https://evil.example"}
            )
            assert refused.status_code == 403, path
            assert refused.json()["detail"]["code"] == "forbidden"
        assert http.get(f"/v1/jobs/{job['id']}").json()["status"] in ("queued", "running")
        origin = {"Origin": embedded_service.url}
        assert http.post(f"/v1/jobs/{job['id']}/cancel", headers=origin).status_code == 200


def test_submit_shows_the_servers_message_beside_its_field_then_opens_the_job(
    embedded_service: Service, seed_npz: Path
) -> None:
    with embedded_service.client() as http:
        dataset = upload(http, seed_npz)
        model = seed_job(dataset["id"])["model"]
        form = {
            "name": "from-the-form",
            "model": model,
            "dataset": dataset["id"],
            "loss": "binary_crossentropy",
            "metrics": "accuracy",
            "epochs": "2",
            "batch_size": "128",
            "validation_split": "0.1",
        }
        bad = http.post("/submit", data={**form, "loss": "no_such_loss", "action": "check"})
        assert bad.status_code == 422
        assert re.search(r'id="compile-error"[^>]*>[^<]*no_such_loss', bad.text), bad.text
        assert "from-the-form" in bad.text  # what was typed is kept
        checked = http.post("/submit", data={**form, "action": "check"})
        assert "The job is valid." in checked.text
        assert "Total params" in checked.text  # the model summary
        sent = http.post("/submit", data=form)
        assert sent.status_code == 303
        job_id = sent.headers["location"].removeprefix("/jobs/")
        job = wait_for_job(http, job_id)
        assert job["status"] == "succeeded"
        assert len(job["history"]["val_loss"]) == 2


def test_checking_a_large_model_leaves_the_server_answering(
    embedded_service: Service, seed_npz: Path
) -> None:
    """The form's check builds the model in a thread, not on the event loop: meanwhile other
    requests are answered (on the loop, /healthz waited the whole 5 s of such a check)."""
    import keras

    layers = [keras.layers.Dense(8) for _ in range(150)]
    model = keras.Sequential([keras.Input((20,)), *layers, keras.layers.Dense(1)]).to_json()
    with embedded_service.client() as http:
        dataset = upload(http, seed_npz)["id"]
        form = {"model": model, "dataset": dataset, "loss": "mse", "action": "check"}
        answers: list[httpx.Response] = []
        checking = threading.Thread(target=lambda: answers.append(http.post("/submit", data=form)))
        started = time.monotonic()
        checking.start()
        waits = []
        while checking.is_alive():
            asked = time.monotonic()
            assert http.get("/healthz").status_code == 200
            waits.append(time.monotonic() - asked)
            time.sleep(0.05)
        took = time.monotonic() - started
        assert answers and "The job is valid." in answers[0].text, answers[0].text[-2000:]
        assert took > 1.5, f"the check took {took:.2f} s: too quick to tell"
        assert max(waits) < max(1.0, took / 3), (max(waits), took)


def test_datasets_are_listed_and_deleted_after_confirmation(
    embedded_service: Service, seed_npz: Path
) -> None:
    with embedded_service.client() as http:
        dataset = upload(http, seed_npz)
        page = http.get("/datasets").text
        assert dataset["id"] in page
        assert "x_train</code>: (1000, 20), float64" in page
        assert 'enctype="multipart/form-data"' in page
        asked = http.post(f"/datasets/{dataset['id']}/delete")
        assert "Delete seed.npz?" in asked.text
        assert http.get(f"/v1/datasets/{dataset['id']}").status_code == 200
        deleted = http.post(f"/datasets/{dataset['id']}/delete", data={"confirmed": "yes"})
        assert deleted.status_code == 303
        assert http.get(f"/v1/datasets/{dataset['id']}").status_code == 404


def test_one_stream_carries_every_jobs_events(embedded_service: Service) -> None:
    with embedded_service.client() as http:
        with http.stream("GET", "/v1/events", timeout=60) as stream:
            job = http.post("/v1/jobs", json=inline_job("streamed")).json()
            seen: list[tuple[str, dict[str, Any]]] = []
            kind = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = json.loads(line.removeprefix("data: "))
                    if data.get("job") != job["id"]:
                        continue  # another test's job
                    seen.append((kind, data))
                    if kind == "status" and data.get("status") in ("succeeded", "failed"):
                        break
        kinds = [k for k, _ in seen]
        assert kinds[0] == "status" and seen[0][1]["status"] == "queued"
        assert "epoch" in kinds
        assert seen[-1][1]["status"] == "succeeded"
