"""The docs and the dashboard in a real browser: Debian's chromium driven by Playwright.

Every request to another origin is aborted and recorded, and each test ends by checking that
none was made: the service must work on a host with no internet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.test_pages import inline_job
from tests.conftest import seed_job, upload, wait_for_job
from tests.services import Service, need

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        need(f"no browser at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("Playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Visit:
    """A browser page on one service that refuses, and remembers, every other origin."""

    def __init__(self, browser: Any, service: Service, javascript: bool = True) -> None:
        self.service = service
        self.context = browser.new_context(java_script_enabled=javascript)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _route(self, route: Any) -> None:
        if urlsplit(route.request.url).netloc == f"127.0.0.1:{self.service.port}":
            route.continue_()
        else:
            self.elsewhere.append(route.request.url)
            route.abort()

    def open(self, path: str) -> Any:
        self.page.goto(self.service.url + path)
        return self.page

    def close(self) -> None:
        self.context.close()
        assert self.elsewhere == [], f"requests left the host: {self.elsewhere}"
        assert self.errors == [], f"script errors: {self.errors}"


@pytest.fixture
def visit(browser: Any, embedded_service: Service) -> Iterator[Visit]:
    opened = Visit(browser, embedded_service)
    yield opened
    opened.close()


def test_swagger_ui_works_offline_and_try_it_out_queues_a_job(
    visit: Visit, embedded_service: Service
) -> None:
    page = visit.open("/docs")
    operation = page.locator("#operations-jobs-submit_job_v1_jobs_post")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("201")
    body = operation.locator(".live-responses-table .microlight").first.inner_text()
    job_id = re.search(r'"id": "(\w+)"', body)
    assert job_id, body
    with embedded_service.client() as http:
        assert wait_for_job(http, job_id.group(1))["status"] == "succeeded"


def test_redoc_works_offline(visit: Visit) -> None:
    page = visit.open("/redoc")
    page.get_by_role("heading", name=re.compile("remotefit")).first.wait_for()
    assert page.get_by_text("POST /v1/jobs").count() + page.get_by_text("/v1/jobs").count() > 0


def test_the_list_works_without_javascript(browser: Any, embedded_service: Service) -> None:
    with embedded_service.client() as http:
        for name in ("nojs-b", "nojs-a"):
            wait_for_job(http, http.post("/v1/jobs", json=inline_job(name)).json()["id"])
    visit = Visit(browser, embedded_service, javascript=False)
    try:
        page = visit.open("/")
        page.get_by_label("Name starts with").fill("nojs-")
        page.get_by_label("Status").select_option("succeeded")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url(re.compile(r"status=succeeded"))
        assert "name=nojs-" in page.url
        page.get_by_role("link", name="Name").click()
        page.wait_for_url(re.compile(r"sort=-name"))
        names = page.locator("#jobs tbody td:nth-child(3) a").all_inner_texts()
        assert names == ["nojs-b", "nojs-a"]
        page.get_by_role("link", name="nojs-a").click()
        assert page.locator("#epochs tbody tr").count() == 1
    finally:
        visit.close()


def _submit(service: Service, seed_npz: Path, **fit: Any) -> str:
    with service.client() as http:
        dataset = upload(http, seed_npz)
        job = http.post("/v1/jobs", json=seed_job(dataset["id"], **fit))
        assert job.status_code == 201, job.text
        job_id: str = job.json()["id"]
        return job_id


def test_epochs_appear_in_the_table_and_chart_while_the_job_trains(
    visit: Visit, embedded_service: Service, seed_npz: Path
) -> None:
    epochs = 12
    job_id = _submit(embedded_service, seed_npz, epochs=epochs, batch_size=8, validation_split=0.2)
    page = visit.open(f"/jobs/{job_id}")
    page.evaluate("window.notReloaded = true")
    rows = page.locator("#epochs tbody tr")
    rows.first.wait_for()
    seen_while_running = rows.count()
    state_then = page.locator("#state").inner_text()
    page.wait_for_function("document.getElementById('state').textContent === 'succeeded'")
    assert rows.count() == epochs
    assert page.evaluate("window.notReloaded") is True
    assert seen_while_running < epochs or state_then == "running"
    headers = page.locator("#epochs thead th").all_inner_texts()
    assert headers[:1] == ["epoch"] and "val_loss" in headers
    assert page.locator("#chart-loss canvas").count() == 1
    assert page.locator("#chart-accuracy canvas").count() == 1
    series = page.evaluate("remotefitChart.charts.get('loss').series.map(([run, key]) => key)")
    assert series == ["loss", "val_loss"]
    assert "Job succeeded." in page.locator("#status-line").inner_text()


def test_a_reload_keeps_the_view(visit: Visit, embedded_service: Service) -> None:
    with embedded_service.client() as http:
        job = wait_for_job(http, http.post("/v1/jobs", json=inline_job("view", 4)).json()["id"])
    page = visit.open(f"/jobs/{job['id']}")
    page.locator("#chart-loss canvas").wait_for()
    page.get_by_label("x-axis").select_option("step")
    page.locator("#chart-loss").get_by_label("log scale").check()
    page.wait_for_url(re.compile(r"log=loss"))
    assert "x=step" in page.url
    page.reload()
    page.locator("#chart-loss canvas").wait_for()
    assert page.get_by_label("x-axis").input_value() == "step"
    assert page.locator("#chart-loss").get_by_label("log scale").is_checked()
    assert not page.locator("#chart-accuracy").get_by_label("log scale").is_checked()
    assert "x=step" in page.url and "log=loss" in page.url


def test_cancel_with_the_keyboard_alone(
    visit: Visit, embedded_service: Service, seed_npz: Path
) -> None:
    job_id = _submit(embedded_service, seed_npz, epochs=2000, batch_size=8)
    page = visit.open(f"/jobs/{job_id}")
    page.wait_for_function("document.getElementById('state').textContent === 'running'")
    page.locator("#epochs tbody tr").first.wait_for()
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Cancel":
            break
    else:
        pytest.fail("Tab never reached the Cancel button")
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('state').textContent.startsWith('cancelled')")
    assert asked == ["Cancel job seed-example?"]
    kept = page.locator("#kept")
    kept.filter(has_text="weights").wait_for()
    assert "last whole epoch were kept" in kept.inner_text()
    with httpx.Client(base_url=embedded_service.url) as http:
        assert http.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"


def test_the_list_updates_live_over_one_stream(
    visit: Visit, embedded_service: Service, seed_npz: Path
) -> None:
    job_id = _submit(embedded_service, seed_npz, epochs=6, batch_size=8)
    streams: list[str] = []
    visit.page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
    page = visit.open("/?name=seed-example")
    row = page.locator(f'tr[data-job="{job_id}"]')
    row.locator('[data-cell="state"]', has_text="succeeded").wait_for()
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert row.locator('[data-cell="progress"]').inner_text() == "epoch 6/6 (100%)"
    assert row.locator('[data-cell="loss"]').inner_text() != "\N{EN DASH}"
    assert row.locator("button", has_text="Cancel").count() == 0
    with embedded_service.client() as http:
        http.post("/v1/jobs", json=inline_job("arrived-later"))
    page.get_by_role("link", name=re.compile("1 new job since this page loaded")).wait_for()
    assert {url.split("?")[0] for url in streams} == {f"{embedded_service.url}/v1/events"}


def test_upload_from_the_datasets_page(visit: Visit, seed_npz: Path) -> None:
    page = visit.open("/datasets")
    before = page.locator("#datasets tbody tr").count()
    page.get_by_label("A .npz, .npy, .h5 or .csv file").set_input_files(str(seed_npz))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_function(f"document.querySelectorAll('#datasets tbody tr').length > {before}")
    assert page.locator("#datasets tbody", has_text="x_train").count() == 1


def test_compared_jobs_are_overlaid(visit: Visit, embedded_service: Service) -> None:
    with embedded_service.client() as http:
        ids = [http.post("/v1/jobs", json=inline_job(f"cmp-{i}", 2)).json()["id"] for i in "ab"]
        for job_id in ids:
            wait_for_job(http, job_id)
    page = visit.open(f"/jobs/{ids[0]}?compare={ids[1]}")
    page.wait_for_function(
        "remotefitChart.charts.get('loss')?.series.length === 2", timeout=TIMEOUT_MS
    )
    labels = page.evaluate("remotefitChart.charts.get('loss').plot.series.map(s => s.label)")
    assert labels[1:] == ["loss", f"{ids[1]} loss"]
    assert f"compare={ids[1]}" in page.url
