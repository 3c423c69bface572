"""status_rps: ``GET /v1/jobs/{id}`` under concurrent clients ÷ a bare FastAPI endpoint.

The load comes from a client cheap enough that the servers, not it, are the bottleneck: plain
sockets, keep-alive, one request in flight per connection. With httpx on two cores the client
capped the bare endpoint at about a quarter of what it serves, and hid the service's cost.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.services import CLI, Service, free_port

# The baseline is served as the service is (uvicorn, access log on, one process), by the
# cheapest endpoint FastAPI has: async, no database, no dependencies.
BARE_APP = """
import uvicorn
from fastapi import FastAPI
app = FastAPI()
@app.get("/v1/jobs/{job_id}")
async def job(job_id: str) -> dict:
    return {"id": job_id, "status": "succeeded", "history": {"loss": [0.5] * 20}}
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), log_level="info")
"""


class _Connection:
    """One keep-alive HTTP/1.1 connection that GETs a URL and reads the whole response."""

    def __init__(self, url: str, token: str | None = None) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.request = f"GET {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode()
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self) -> None:
        self.sock.sendall(self.request)
        while True:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if found:
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"status poll failed: {head[:200]!r}")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    self.buffer = rest[length:]
                    return
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def requests_per_second(
    urls: list[str], clients: int, seconds: float, token: str | None = None
) -> float:
    """Requests per second of ``clients`` connections, client ``i`` polling ``urls[i % n]``
    (sending ``token``, when given, as a bearer token)."""
    counts = [0] * clients
    connections = [_Connection(urls[i % len(urls)], token) for i in range(clients)]
    deadline = time.monotonic() + seconds

    def hammer(index: int) -> None:
        connection = connections[index]
        while time.monotonic() < deadline:
            connection.get()
            counts[index] += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    return sum(counts) / seconds


def status_rps(job_urls: list[str], clients: int, seconds: float, log: Path) -> dict[str, float]:
    """Each client polls a job of its own (the headline), then all poll one job."""
    port = free_port()
    with open(log, "ab") as output:
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE_APP, str(port)], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        bare_url = f"http://127.0.0.1:{port}/v1/jobs/x"
        for _ in range(100):
            try:
                httpx.get(bare_url).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        bare_rps = requests_per_second([bare_url], clients, seconds)
        service_rps = requests_per_second(job_urls, clients, seconds)
        one_job_rps = requests_per_second(job_urls[:1], clients, seconds)
    finally:
        bare.terminate()
        bare.wait()
    return {
        "ratio": service_rps / bare_rps,
        "service_rps": service_rps,
        "bare_rps": bare_rps,
        "jobs": len(job_urls),
        "one_job_ratio": one_job_rps / bare_rps,
        "one_job_rps": one_job_rps,
    }


def add_user(service: Service, name: str) -> str:
    """Make ``name`` an admin of ``service`` with ``remotefit users add``; returns its token."""
    done = subprocess.run(
        [*CLI, "users", "add", name, "--admin"],
        env={**os.environ, **service.env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]
