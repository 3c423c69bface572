"""The upload's multipart reader, fed the same body cut into chunks at every kind of place."""

from __future__ import annotations

import random

import pytest

from api.upload import _Parts
from models.errors import InvalidRequest, MalformedBody

BOUNDARY = b"remotefit-boundary-0123456789"


def _body(file: bytes, before: bytes = b"", after: bytes = b"") -> bytes:
    """A form with a text field, the file, and another text field, as curl -F sends it."""
    return b"".join(
        [
            before,
            b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello',
            b"\r\n--" + BOUNDARY + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="data.npy"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n",
            file,
            b"\r\n--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="tail"\r\n\r\nbye',
            b"\r\n--" + BOUNDARY + b"--\r\n",
            after,
        ]
    )


def _parse(body: bytes, cuts: list[int]) -> tuple[bytes, _Parts]:
    parts = _Parts(BOUNDARY, "file")
    written = bytearray()
    start = 0
    for cut in [*sorted(cuts), len(body)]:
        parts.feed(body[start:cut])
        start = cut
        for piece in parts.take():
            written += piece
    return bytes(written), parts


# Bytes that look like the start of a delimiter, and one whole delimiter without its CR.
TRICKY = b"\r\n--remotefit-bound\r\n--" + BOUNDARY[:-1] + b"x\n--" + BOUNDARY + b"\r"


@pytest.mark.parametrize("seed", range(40))
def test_any_chunking_gives_the_file_exactly(seed: int) -> None:
    rng = random.Random(seed)
    file = rng.randbytes(rng.randrange(0, 200_000)) + TRICKY + rng.randbytes(rng.randrange(5000))
    body = _body(file, before=b"preamble\r\n" if seed % 2 else b"")
    cuts = [rng.randrange(len(body)) for _ in range(rng.randrange(1, 60))]
    written, parts = _parse(body, cuts)
    assert written == file
    assert parts.filename == "data.npy"
    assert parts.state == "done"


def test_a_cut_at_every_byte_around_the_closing_delimiter() -> None:
    file = b"x" * 3000 + TRICKY
    body = _body(file)
    end = body.index(b"\r\n--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="tail"')
    for cut in range(end - 80, end + 80):
        written, _ = _parse(body, [cut - 2000, cut])
        assert written == file, cut


def test_an_empty_file_is_empty() -> None:
    written, parts = _parse(_body(b""), [10, 100])
    assert written == b""
    assert parts.found


def test_endless_part_headers_are_refused() -> None:
    parts = _Parts(BOUNDARY, "file")
    parts.feed(b"--" + BOUNDARY + b"\r\n")
    with pytest.raises(InvalidRequest, match="headers are too long"):
        for _ in range(100):
            parts.feed(b"X-Filler: " + b"a" * 1000 + b"\r\n")


@pytest.mark.parametrize("seed", range(10))
def test_bytes_after_the_closing_delimiter_are_refused(seed: int) -> None:
    rng = random.Random(seed)
    body = _body(rng.randbytes(5000), after=rng.choice([b"x", b"\r\n--", b"junk" * 1000]))
    cuts = [rng.randrange(len(body)) for _ in range(rng.randrange(1, 20))]
    with pytest.raises(MalformedBody, match="after its closing boundary"):
        _, parts = _parse(body, cuts)
        parts.finish()


def test_a_body_cut_anywhere_before_its_end_is_refused() -> None:
    body = _body(b"3,45678\n" * 100)
    for end in [*range(0, len(body) - 2, 37), len(body) - 3]:
        _, parts = _parse(body[:end], [end // 2])
        with pytest.raises(MalformedBody, match="ended before its closing boundary"):
            parts.finish()
    for complete in (body, body[:-2]):  # with and without the final CRLF
        _, parts = _parse(complete, [len(complete) // 3])
        parts.finish()
