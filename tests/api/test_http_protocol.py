"""The API's uvicorn protocol hands the app every body byte, in order, as ``bytes``: large
bodies in big reads, and bodies that arrive in many small pieces while the app is busy."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from api.http_protocol import HttpToolsWithoutBodyCopies


async def digest_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the body's length, SHA-256 and the types of its messages' bodies.

    With ``?slow``, it sleeps before each read, so that pieces pile up in the protocol.
    """
    if scope["type"] != "http":
        return
    slow = scope["query_string"] == b"slow"
    digest, length, types = hashlib.sha256(), 0, set()
    while True:
        if slow:
            await asyncio.sleep(0.01)
        message = await receive()
        types.add(type(message["body"]).__name__)
        digest.update(message["body"])
        length += len(message["body"])
        if not message.get("more_body"):
            break
    body = f"{length} {digest.hexdigest()} {','.join(sorted(types))}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(digest_app, http=HttpToolsWithoutBodyCopies, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join()


def expected(content: bytes) -> str:
    return f"{len(content)} {hashlib.sha256(content).hexdigest()} bytes"


def test_a_large_body_arrives_whole(url: str) -> None:
    content = bytes(range(256)) * (32 * 1024 * 1024 // 256 + 7)
    response = httpx.post(url, content=content, timeout=60)
    assert response.text == expected(content)


def test_small_pieces_piling_up_arrive_whole_and_in_order(url: str) -> None:
    pieces = [bytes([index % 251]) * (100 + index) for index in range(400)]

    def slowly() -> Iterator[bytes]:
        for index, piece in enumerate(pieces):
            if index % 50 == 0:
                time.sleep(0.02)
            yield piece

    response = httpx.post(f"{url}/?slow", content=slowly(), timeout=60)
    assert response.text == expected(b"".join(pieces))


def test_keep_alive_requests_after_a_body_are_answered(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for size in (0, 1, 70_000, 300_000):
            content = b"z" * size
            assert client.post("/", content=content).text == expected(content)
