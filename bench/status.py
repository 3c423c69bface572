"""status_rps: ``GET /v1/jobs/{id}`` under concurrent clients ÷ a bare FastAPI endpoint."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import httpx

from tests.services import free_port

BARE_APP = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/v1/jobs/{job_id}")
def job(job_id: str) -> dict:
    return {"id": job_id, "status": "succeeded", "history": {"loss": [0.5] * 20}}
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="warning")
"""


def requests_per_second(url: str, clients: int, seconds: float) -> float:
    counts = [0] * clients
    deadline = time.monotonic() + seconds

    def hammer(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                client.get(url).raise_for_status()
                counts[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def status_rps(job_url: str, clients: int, seconds: float) -> dict[str, float]:
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)])
    try:
        bare_url = f"http://127.0.0.1:{port}/v1/jobs/x"
        for _ in range(100):
            try:
                httpx.get(bare_url).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        bare_rps = requests_per_second(bare_url, clients, seconds)
        service_rps = requests_per_second(job_url, clients, seconds)
    finally:
        bare.terminate()
        bare.wait()
    return {"ratio": service_rps / bare_rps, "service_rps": service_rps, "bare_rps": bare_rps}
