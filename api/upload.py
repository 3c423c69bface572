"""Streaming an upload straight into the store, written once, never held in memory.

An upload is either multipart/form-data (a browser's form, Swagger UI, ``curl -F``) or the file
itself as an application/octet-stream body named by ``?filename=`` (the Python client, ``curl
--data-binary``), which spares both sides the multipart framing and the server its scan for the
closing delimiter (0.15 CPU-seconds a GiB).

Starlette's form parser spools each file to a temporary file of its own, which the route would
then copy into the store: the bytes were written twice. Here the stream is parsed as it arrives
and the file's bytes are appended, a few megabytes at a time, to a temporary file in the store,
which is then adopted under the dataset's id.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import parse_options_header
from starlette.concurrency import run_in_threadpool

from models.data import disk_space
from models.errors import InvalidRequest, MalformedBody

FLUSH_BYTES = 4 * 1024 * 1024
HOW = (
    "Send multipart/form-data with the file in the field `file` (`curl -F file=@data.npz URL`), "
    "or the file itself as an application/octet-stream body named by the query parameter "
    "`filename` (`curl --data-binary @data.npz -H 'Content-Type: application/octet-stream' "
    "'URL?filename=data.npz'`)."
)
FILE_SCHEMA = {"type": "string", "format": "binary", "description": ".npz, .npy, .h5/.hdf5 or .csv"}

UPLOAD_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": FILE_SCHEMA},
                }
            },
            "application/octet-stream": {"schema": FILE_SCHEMA},
        },
    }
}


MAX_PART_HEADERS = 16 * 1024
MAX_EPILOGUE = 2  # the CRLF some clients end a body with; anything more is refused


class _Body:
    """The file's bytes as a request body yields them: ``feed`` chunks, ``take`` what is due.

    This one is a raw body, every byte the file's; ``_Parts`` finds the file in a multipart one.
    """

    def __init__(self) -> None:
        self.out: list[bytes | bytearray | memoryview] = []  # the file's bytes, to be written
        self.out_bytes = 0

    def feed(self, chunk: bytes) -> None:
        self._add(chunk)

    def _add(self, data: bytes | bytearray | memoryview) -> None:
        self.out.append(data)
        self.out_bytes += len(data)

    def take(self) -> list[bytes | bytearray | memoryview]:
        """The file bytes parsed so far, handed over to be written."""
        out, self.out, self.out_bytes = self.out, [], 0
        return out


class _Parts(_Body):
    """A streaming multipart/form-data reader for one file field, at the speed of bytes.find.

    Part bodies are scanned for the delimiter with ``bytes.find`` (C speed) and written as they
    come; only a delimiter's length is held back between chunks. python-multipart's general
    parser took about three times as long as the transfer itself on a 1 GiB upload. A chunk
    wholly inside a body is not copied at all: views of it go to the writer.
    """

    def __init__(self, boundary: bytes, field: str) -> None:
        super().__init__()
        self.opening = b"--" + boundary
        self.delimiter = b"\r\n--" + boundary
        self.keep = len(self.delimiter) - 1  # bytes held back: a delimiter may start in them
        self.field = field.encode()
        self.buffer = bytearray()
        self.state = "preamble"  # preamble → headers → body|skip → after → headers ... → done
        self.filename: str | None = None
        self.found = False

    def feed(self, chunk: bytes) -> None:
        if self.state in ("body", "skip") and self._inside_body(chunk):
            return
        if self.state == "done" and len(self.buffer) + len(chunk) > MAX_EPILOGUE:
            raise MalformedBody(
                "The multipart body goes on after its closing boundary; a body ends there. "
                "Nothing was stored; send the file alone in the body."
            )
        self.buffer += chunk
        while self._step():
            pass

    def _inside_body(self, chunk: bytes) -> bool:
        """Take ``chunk`` without copying it if no delimiter starts in it; else False."""
        keep = self.keep
        if len(chunk) <= keep or chunk.find(self.delimiter) >= 0:
            return False
        joint = bytes(self.buffer) + chunk[:keep]  # a delimiter across the previous chunk
        if joint.find(self.delimiter) >= 0:
            return False
        self._emit(self.buffer)
        self._emit(memoryview(chunk)[: len(chunk) - keep])
        self.buffer = bytearray(chunk[len(chunk) - keep :])
        return True

    def _step(self) -> bool:
        """Advance one state if the buffer allows; False when more bytes are needed."""
        buffer = self.buffer
        if self.state == "preamble":
            index = buffer.find(self.opening)
            if index < 0:
                del buffer[: max(0, len(buffer) - len(self.opening))]
                return False
            del buffer[: index + len(self.opening)]
            self.state = "after"
            return True
        if self.state == "after":
            if len(buffer) < 2:
                return False
            if buffer[:2] == b"--":
                self.state = "done"
                del buffer[:2]  # what follows is checked by ``finish``
                return False
            del buffer[:2]  # the CRLF ending the boundary line
            self.state = "headers"
            return True
        if self.state == "headers":
            index = buffer.find(b"\r\n\r\n")
            if index < 0:
                if len(buffer) > MAX_PART_HEADERS:
                    raise InvalidRequest(f"A multipart part's headers are too long. {HOW}")
                return False
            self._headers(bytes(buffer[:index]))
            del buffer[: index + 4]
            return True
        if self.state in ("body", "skip"):
            index = buffer.find(self.delimiter)
            keep = self.keep
            if index < 0:
                if len(buffer) > keep:
                    self._emit(buffer[: len(buffer) - keep])
                    del buffer[: len(buffer) - keep]
                return False
            self._emit(buffer[:index])
            del buffer[: index + len(self.delimiter)]
            self.state = "after"
            return True
        return False

    def _headers(self, raw: bytes) -> None:
        disposition = b""
        for line in raw.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-disposition":
                disposition = value.strip()
        _, options = parse_options_header(disposition)
        if options.get(b"name") == self.field and not self.found:
            self.found = True
            self.state = "body"
            raw_name = options.get(b"filename", b"")
            self.filename = raw_name.decode("utf-8", "replace") if raw_name else None
        else:
            self.state = "skip"

    def _emit(self, data: bytes | bytearray | memoryview) -> None:
        if self.state == "body" and data:
            self._add(data)

    def finish(self) -> None:
        """Check that the body ended with its closing delimiter, and nothing after it.

        Raises:
            MalformedBody: the body was cut short (the file would be stored truncated), or
                bytes follow the closing delimiter (a second body smuggled behind the first).
        """
        if self.state != "done":
            raise MalformedBody(
                "The multipart body ended before its closing boundary "
                f"(--{self.opening[2:].decode('latin-1')}--), so the file in it may be cut "
                "short; nothing was stored. Send the whole body again.",
            )
        if self.buffer.strip(b"\r\n"):
            raise MalformedBody(
                f"The multipart body has {len(self.buffer)} bytes after its closing boundary; "
                "a body ends there. Nothing was stored; send the file alone in the body.",
            )


class _Writer:
    """Writes blocks to a file from a thread of its own, so receiving and writing overlap.

    The queue is short: a client faster than the disk waits for it (back-pressure), and the
    process never holds more than a few blocks. Where the body's length is known, the file's
    space is reserved first, and trimmed to what was written at the end.
    """

    def __init__(self, target: Path, size: int | None) -> None:
        self.blocks: queue.Queue[list[bytes | bytearray | memoryview] | None] = queue.Queue(4)
        self.error: BaseException | None = None
        self.handle = open(target, "wb")  # noqa: SIM115 (closed by close())
        try:
            self.reserved = size is not None and disk_space.reserve(self.handle.fileno(), size)
        except BaseException:
            self.handle.close()
            raise
        self.thread = threading.Thread(target=self._run, name="upload-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (block := self.blocks.get()) is not None:
            if self.error is None:
                try:
                    for piece in block:
                        self.handle.write(piece)
                except OSError as error:
                    full = error.errno in disk_space.FULL
                    self.error = disk_space.full(None, str(error.strerror)) if full else error
                except BaseException as error:
                    self.error = error

    async def put(self, block: list[bytes | bytearray | memoryview]) -> None:
        try:
            self.blocks.put_nowait(block)
        except queue.Full:
            await run_in_threadpool(self.blocks.put, block)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.blocks.put(None)
        self.thread.join()
        if self.reserved and self.error is None:
            self.handle.truncate()  # to what was written: the reservation was the most
        self.handle.close()
        if self.error is not None:
            raise self.error


async def receive_file(
    request: Request, target: Path, filename: str | None = None, field: str = "file"
) -> str:
    """Stream the uploaded file of ``request`` into ``target``: the multipart field ``field``,
    or the whole body where it is application/octet-stream, named by ``filename``.

    Returns:
        The file name the client gave.

    Raises:
        InvalidRequest: another content type, no such field, or no file name.
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type == b"application/octet-stream":
        if not filename:
            raise InvalidRequest(
                "A raw (application/octet-stream) upload needs the query parameter `filename`, "
                f"whose extension tells its format. {HOW}",
                field="filename",
            )
        await _stream(request, _Body(), target)
        return filename
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidRequest(
            f"The upload is neither multipart/form-data nor application/octet-stream "
            f"(Content-Type: {request.headers.get('content-type')!r}). {HOW}"
        )
    part = _Parts(boundary, field)
    await _stream(request, part, target)
    part.finish()
    if not part.found:
        raise InvalidRequest(
            f"The multipart field `{field}` is required; this upload has none. {HOW}", field=field
        )
    if not part.filename:
        raise InvalidRequest(
            f"The multipart field `{field}` has no file name, so its format is unknown. {HOW}"
        )
    if "\x00" in part.filename:
        raise InvalidRequest(
            "The file name holds a NUL character, which no name may contain. Rename the file. "
            f"Received: {part.filename[:100]!r}.",
            field="filename",
        )
    return part.filename


async def _stream(request: Request, body: _Body, target: Path) -> None:
    length = request.headers.get("content-length", "")
    writer = _Writer(target, int(length) if length.isdigit() else None)
    try:
        async for chunk in request.stream():
            body.feed(chunk)
            if body.out_bytes >= FLUSH_BYTES:
                await writer.put(body.take())
        if body.out:
            await writer.put(body.take())
    finally:
        await run_in_threadpool(writer.close)
