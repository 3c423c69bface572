"""The dashboard's figures: the jobs list over many jobs, the job page's weight, and, in
Chromium, a chart append and an epoch's way from the worker to the browser's table.

- ``dashboard_list_ms_p50``: ``GET /`` with ``jobs`` rows in the database (inserted directly,
  as finished jobs with a history each).
- ``job_page_kib``: the job page and everything it loads (scripts, styles, icon), each gzipped
  as a server or proxy would send it.
- ``chart_append_ms_p95``: one progress point appended to a chart already holding ``points``
  points, from the append to the end of uPlot's canvas draw (its ``draw`` hook).
- ``epoch_to_row_ms_p95``: from an epoch's end on the worker to its row in ``#epochs``. The
  worker does not publish the instant an epoch ends, so it is reconstructed on the worker's
  clock: ``started_at`` + the epochs' own ``seconds`` so far + the job's set-up time, taken as
  the smallest gap seen between that sum and an epoch event's commit (the luckiest epoch, written
  right as it ended). Browser and worker share this machine's clock.
"""

from __future__ import annotations

import gzip
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from api.auth import COOKIE
from bench.common import median, percentile, seed_arrays, seed_job, upload_arrays
from models.db import session_scope
from models.jobs.records import as_utc
from models.tables import Job, JobEvent, User

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def owner_of(database_url: str, name: str) -> str:
    """The id of user ``name``."""
    with session_scope(database_url) as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
    assert user_id is not None, name
    return str(user_id)


def insert_jobs(database_url: str, count: int, owner: str | None) -> None:
    """``count`` finished jobs of ``owner``, 20 epochs each, written straight into the database."""
    now = datetime.now(UTC)
    history = {"loss": [0.5] * 20, "val_loss": [0.6] * 20, "accuracy": [0.7] * 20}
    rows: list[dict[str, Any]] = [
        {
            "id": uuid.uuid4().hex,
            "name": f"listed-{index}",
            "status": "succeeded",
            "spec": {},
            "attempts": 1,
            "progress": {"epoch": 20, "epochs": 20},
            "history": history,
            "artifacts": [],
            "owner": owner,
            "created_at": now - timedelta(seconds=index + 60),
            "started_at": now - timedelta(seconds=index + 50),
            "finished_at": now - timedelta(seconds=index + 40),
        }
        for index in range(count)
    ]
    with session_scope(database_url) as session:
        for start in range(0, count, 1000):
            session.execute(insert(Job), rows[start : start + 1000])


def list_ms_p50(client: httpx.Client, requests: int) -> float:
    """The median time of ``GET /`` (the first page, newest first), after two warm-ups."""
    times = []
    for index in range(requests + 2):
        started = time.perf_counter()
        response = client.get("/")
        response.raise_for_status()
        if index >= 2:
            times.append((time.perf_counter() - started) * 1000)
    return median(times)


def job_page_kib(client: httpx.Client, job_id: str) -> float:
    """Kibibytes of the job page and of every file it names, each gzipped."""
    html = client.get(f"/jobs/{job_id}").text
    total = len(gzip.compress(html.encode()))
    for path in sorted(set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))):
        response = client.get(path)
        response.raise_for_status()
        total += len(gzip.compress(response.content))
    return total / 1024


@contextmanager
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no browser at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


APPEND = """
async ([points, appends]) => {
  const { charts, runs, appendPoint } = window.remotefitChart;
  const chart = charts.get("loss");
  const run = runs[0];
  let x = chart.data[0][chart.data[0].length - 1] || 0;
  while (chart.data[0].length < points) {
    x += 0.001;
    chart.data[0].push(x);
    for (let s = 1; s < chart.data.length; s++) chart.data[s].push(Math.random());
  }
  chart.plot.setData(chart.data);
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  await frame();
  const times = [];
  for (let k = 0; k < appends; k++) {
    x += 0.001;
    const point = { epoch: x, step: 0, time: 0, logs: { loss: Math.random() }, batch: true };
    run.points.push(point);
    const drawn = new Promise((done) => {
      chart.plot.hooks.draw = [() => done(performance.now())];
    });
    const started = performance.now();
    appendPoint(run, point);
    times.push((await drawn) - started);
    await frame();
  }
  return times;
}
"""


def logged_in_page(browser: Any, url: str, token: str) -> Any:
    """A new page whose browser holds the login cookie of ``token``, as after /login."""
    page = browser.new_page()
    page.context.add_cookies([{"name": COOKIE, "value": token, "url": url}])
    return page


def chart_append_ms_p95(
    browser: Any, url: str, job_id: str, points: int, appends: int, token: str
) -> float:
    page = logged_in_page(browser, url, token)
    try:
        page.goto(f"{url}/jobs/{job_id}")
        page.locator("#chart-loss canvas").wait_for(timeout=60_000)
        times: list[float] = page.evaluate(APPEND, [points, appends])
    finally:
        page.close()
    return percentile(times, 95)


WATCH_ROWS = """
() => {
  window.rowAt = {};
  const body = document.querySelector("#epochs tbody");
  const seen = () => {
    for (const row of body.rows) {
      if (!(row.dataset.epoch in window.rowAt)) window.rowAt[row.dataset.epoch] = null;
    }
  };
  seen();  // rows already there when watching began: not measured
  new MutationObserver(() => {
    const now = performance.timeOrigin + performance.now();
    for (const row of body.rows) {
      if (!(row.dataset.epoch in window.rowAt)) window.rowAt[row.dataset.epoch] = now;
    }
  }).observe(body, { childList: true });
}
"""


def epoch_to_row_ms_p95(
    browser: Any, client: httpx.Client, database_url: str, folder: Path, epochs: int, token: str
) -> dict[str, Any]:
    dataset = upload_arrays(client, folder, "rows", **seed_arrays())
    spec = seed_job(dataset, epochs=epochs, batch_size=8, validation_split=0.1)
    job_id = client.post("/v1/jobs", json=spec).json()["id"]
    page = logged_in_page(browser, str(client.base_url), token)
    try:
        page.goto(f"{client.base_url}/jobs/{job_id}")
        page.evaluate(WATCH_ROWS)
        page.wait_for_function(
            "document.getElementById('state').textContent === 'succeeded'", timeout=300_000
        )
        row_at: dict[str, float | None] = page.evaluate("window.rowAt")
    finally:
        page.close()
    with session_scope(database_url) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.started_at is not None
        started = as_utc(job.started_at).timestamp()
        events = session.execute(
            select(JobEvent.data, JobEvent.created_at)
            .where(JobEvent.job_id == job_id, JobEvent.type == "epoch")
            .order_by(JobEvent.id)
        ).all()
    ends, lags, done = {}, [], 0.0
    for data, created in events:
        done += data.get("seconds") or 0.0
        ends[str(data["epoch"])] = started + done
        lags.append(as_utc(created).timestamp() - (started + done))
    setup = min(lags)
    latencies = [
        (at / 1000 - (ends[epoch] + setup)) * 1000
        for epoch, at in row_at.items()
        if at is not None and epoch in ends
    ]
    if not latencies:
        raise RuntimeError(f"no epoch row appeared while the page watched: {row_at}")
    return {"p95": percentile(latencies, 95), "epochs_measured": len(latencies), "setup_s": setup}
