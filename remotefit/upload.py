"""A file as a raw request body, streamed from disk in large reads.

The client uploads the file itself (application/octet-stream, named by ``?filename=``) rather
than a multipart form: the server need not scan a gigabyte for the form's closing delimiter.
httpx reads a file object 64 KiB at a time and sends it chunked, which cost the client more CPU
than the server spent receiving it; here the body is the file in 1 MiB reads, with an exact
Content-Length.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

READ_BYTES = 1024 * 1024


class FileBody:
    """The body of ``path``'s upload: ``headers`` and ``params`` to send, and the bytes to
    iterate (again, for a retry)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(self.size),
        }
        self.params = {"filename": path.name}

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        with open(self.path, "rb") as handle:
            while sent < self.size and (block := handle.read(min(READ_BYTES, self.size - sent))):
                sent += len(block)
                yield block
        if sent != self.size:
            raise OSError(f"{self.path} changed size while it was being uploaded")
