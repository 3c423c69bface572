"""The client's multipart body, checked without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from remotefit.upload import READ_BYTES, FileForm


def test_the_body_is_head_file_tail_and_its_length_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "data.npy"
    content = bytes(range(256)) * (READ_BYTES // 256 * 2 + 3)
    path.write_bytes(content)
    form = FileForm(path)
    body = b"".join(form)
    assert len(body) == int(form.headers["Content-Length"])
    boundary = form.headers["Content-Type"].split("boundary=")[1].encode()
    assert body.startswith(b"--" + boundary + b"\r\n")
    assert b'name="file"; filename="data.npy"' in body
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    assert body[len(form.head) : len(body) - len(form.tail)] == content
    assert b"".join(form) == body  # iterable again, for a retry


def test_a_file_that_shrinks_while_sent_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "data.npy"
    path.write_bytes(b"x" * (3 * READ_BYTES))
    form = FileForm(path)
    chunks = iter(form)
    next(chunks)
    path.write_bytes(b"x" * 10)
    with pytest.raises(OSError, match="changed size"):
        list(chunks)
