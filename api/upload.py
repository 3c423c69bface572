"""Streaming a multipart upload straight into the store, written once, never held in memory.

Starlette's form parser spools each file to a temporary file of its own, which the route would
then copy into the store: the bytes were written twice. Here the multipart stream is parsed as
it arrives and the file part is appended, a megabyte at a time, to a temporary file in the
store, which is then adopted under the dataset's id.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from models.errors import InvalidRequest

FLUSH_BYTES = 1024 * 1024
HOW = "Send multipart/form-data with the file in the field `file`, e.g. `curl -F file=@data.npz`."

UPLOAD_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": ".npz, .npy, .h5/.hdf5 or .csv",
                        }
                    },
                }
            }
        },
    }
}


class _FilePart:
    """Parser callbacks: find the part named ``field`` and collect its bytes for writing."""

    def __init__(self, field: str) -> None:
        self.field = field.encode()
        self.filename: str | None = None
        self.found = False
        self.pending = bytearray()
        self._writing = False
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}

    def on_part_begin(self) -> None:
        self._headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") == self.field and not self.found:
            self.found = self._writing = True
            raw = options.get(b"filename", b"")
            self.filename = raw.decode("utf-8", "replace") if raw else None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._writing:
            self.pending += data[start:end]

    def on_part_end(self) -> None:
        self._writing = False


async def receive_file(request: Request, target: Path, field: str = "file") -> str:
    """Stream the multipart field ``field`` of ``request`` into ``target``.

    Returns:
        The file name the client gave.

    Raises:
        InvalidRequest: not multipart, no such field, or no file name.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            f"The upload is not multipart/form-data (Content-Type: "
            f"{request.headers.get('content-type')!r}). {HOW}"
        )
    part = _FilePart(field)
    parser = MultipartParser(boundary, callbacks=_bound(part))  # type: ignore[arg-type]
    handle: BinaryIO = await run_in_threadpool(open, target, "wb")
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if len(part.pending) >= FLUSH_BYTES:
                data, part.pending = bytes(part.pending), bytearray()
                await run_in_threadpool(handle.write, data)
        parser.finalize()
        if part.pending:
            await run_in_threadpool(handle.write, bytes(part.pending))
    finally:
        await run_in_threadpool(handle.close)
    if not part.found:
        raise InvalidRequest(
            f"The multipart field `{field}` is required; this upload has none. {HOW}", field=field
        )
    if not part.filename:
        raise InvalidRequest(
            f"The multipart field `{field}` has no file name, so its format is unknown. {HOW}"
        )
    return part.filename


def _bound(part: _FilePart) -> dict[str, object]:
    names = (
        "on_part_begin",
        "on_header_field",
        "on_header_value",
        "on_header_end",
        "on_headers_finished",
        "on_part_data",
        "on_part_end",
    )
    return {name: getattr(part, name) for name in names}
