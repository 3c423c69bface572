"""The client's upload body, checked without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from remotefit.upload import READ_BYTES, FileBody


def test_the_body_is_the_file_named_in_the_query_with_its_exact_length(tmp_path: Path) -> None:
    path = tmp_path / "data.npy"
    content = bytes(range(256)) * (READ_BYTES // 256 * 2 + 3)
    path.write_bytes(content)
    body = FileBody(path)
    assert b"".join(body) == content
    assert body.headers == {
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(content)),
    }
    assert body.params == {"filename": "data.npy"}
    assert b"".join(body) == content  # iterable again, for a retry


def test_a_file_that_shrinks_while_sent_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "data.npy"
    path.write_bytes(b"x" * (3 * READ_BYTES))
    body = FileBody(path)
    chunks = iter(body)
    next(chunks)
    path.write_bytes(b"x" * 10)
    with pytest.raises(OSError, match="changed size"):
        list(chunks)
