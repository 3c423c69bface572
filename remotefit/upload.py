"""A file as a multipart/form-data body, streamed from disk in large reads.

httpx's own ``files=`` reads 64 KiB at a time and sends the body chunked; sending a 1 GiB
file that way cost the client more CPU than the server spent receiving it. Here the body is
the form's head, the file in 1 MiB reads, and its tail, with an exact Content-Length.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

READ_BYTES = 1024 * 1024


def _quoted(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")


class FileForm:
    """The form ``{field: path}``: ``headers`` to send, and the body to iterate, once."""

    def __init__(self, path: Path, field: str = "file") -> None:
        self.path = path
        boundary = f"remotefit-{uuid.uuid4().hex}"
        self.head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{_quoted(path.name)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.size = path.stat().st_size
        self.headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(self.head) + self.size + len(self.tail)),
        }

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        sent = 0
        with open(self.path, "rb") as handle:
            while sent < self.size and (block := handle.read(min(READ_BYTES, self.size - sent))):
                sent += len(block)
                yield block
        if sent != self.size:
            raise OSError(f"{self.path} changed size while it was being uploaded")
        yield self.tail
