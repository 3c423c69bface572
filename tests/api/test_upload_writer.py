"""The upload's file writer: the space it reserves, the file it leaves, and a full disk."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from api.upload import _Writer
from models.data import disk_space
from models.errors import StoreFull


def write(target: Path, size: int | None, blocks: list[bytes]) -> None:
    async def run() -> None:
        writer = _Writer(target, size)
        try:
            for block in blocks:
                await writer.put([block, memoryview(block)[:1]])
        finally:
            writer.close()

    asyncio.run(run())


def test_a_reservation_larger_than_the_body_is_trimmed_to_it(tmp_path: Path) -> None:
    target = tmp_path / "upload"
    write(target, 10_000_000, [b"abc", b"defg"])
    assert target.read_bytes() == b"abcadefgd"


def test_without_a_length_the_file_is_what_was_written(tmp_path: Path) -> None:
    target = tmp_path / "upload"
    write(target, None, [b"xyz"])
    assert target.read_bytes() == b"xyzx"


def test_a_reservation_the_disk_cannot_hold_is_store_full(tmp_path: Path) -> None:
    target = tmp_path / "upload"
    size = 2 * shutil.disk_usage(tmp_path).free + 2**30
    with open(tmp_path / "probe", "wb") as probe:
        if not disk_space.reserve(probe.fileno(), 4096):
            pytest.skip("this filesystem cannot reserve space (no fallocate)")
    with pytest.raises(StoreFull, match=f"no room for this upload of {size} bytes"):
        write(target, size, [b"never written"])
    assert target.stat().st_size == 0
    assert os.stat(target).st_blocks == 0  # nothing of the disk was taken


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_disk_that_fills_while_writing_is_store_full() -> None:
    with pytest.raises(StoreFull, match="No space left on device"):
        write(Path("/dev/full"), None, [b"x" * 1_000_000] * 3)
