"""uvicorn's httptools protocol, handing large request bodies to the app without two copies.

Since uvicorn 0.42 every body chunk is appended to a ``bytearray`` and copied out again as
``bytes`` for the ASGI message (uvicorn #2845, which made bodies that arrive in many small
pieces linear instead of quadratic). A large upload arrives in 256 KiB reads, each taken by the
app before the next: both copies are waste, 2 GiB of memmove for a 1 GiB upload, a seventh of
the API's CPU while receiving it. Here a chunk that finds the buffer empty is kept as the
``bytes`` it came as (``bytes()`` of it in ``receive`` is the same object); a second chunk
before the app reads turns the buffer into a ``bytearray`` and uvicorn's own path takes over, so
fragmented bodies stay linear.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HttpToolsWithoutBodyCopies(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose ``on_body`` does not copy a chunk into an empty buffer."""

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if cycle.body or cycle.response_complete or self.parser.should_upgrade():
            if isinstance(cycle.body, bytes):
                cycle.body = bytearray(cycle.body)
            super().on_body(body)
            return
        cycle.body = body
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()
