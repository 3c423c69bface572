"""A file and its folders reach the disk (fsync) before the row that names the file commits.

Otherwise a power cut after the commit leaves a dataset or artifact row naming a file that the
disk never kept. ``os.fsync`` is wrapped to note which path each call flushed; a listener on
the session notes the commit; the real upload path (``catalog.create``) and artifact writer
(``LocalStore.writing``) run unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from models.data import catalog
from models.data.store import LocalStore
from models.settings import Settings
from models.tables import new_id

Log = list[tuple[str, str]]


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Iterator[Log]:
    """What happened, in order: ``("fsync", path)`` and ``("commit", "")``."""
    happened: Log = []
    real = os.fsync

    def fsync(descriptor: int) -> None:
        happened.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    yield happened


def _flushed_before_commit(log: Log) -> list[str]:
    commit = log.index(("commit", ""))
    return [path for kind, path in log[:commit] if kind == "fsync"]


@pytest.mark.parametrize("filename", ["data.npz", "table.csv"])
def test_an_uploaded_dataset_is_on_disk_before_its_row(
    session: Session, tmp_path: Path, log: Log, filename: str
) -> None:
    store = LocalStore(tmp_path / "store")
    temp = store.temp_path()
    if filename.endswith(".csv"):
        temp.write_text("a,b\n1,2\n3,4\n")
    else:
        with temp.open("wb") as handle:
            np.savez(handle, x=np.ones((4, 2)))
    event.listen(session, "before_commit", lambda _: log.append(("commit", "")))
    dataset = catalog.create(session, store, temp, filename, Settings(data_dir=tmp_path), None)
    final = next(store.folder("datasets", dataset.id).iterdir())
    flushed = _flushed_before_commit(log)
    folder, kind = final.parent, final.parent.parent
    # The file's bytes (flushed under its temporary name in the store's tmp, then renamed),
    # its folder's entry for it, and the kind's entry for the new folder: all before the commit.
    assert len(flushed) == 3, flushed
    assert Path(flushed[0]).parent == store.root / "tmp" and final.is_file()
    assert flushed[1:] == [str(folder), str(kind)]


def test_an_artifact_and_its_new_folder_are_on_disk_when_written(tmp_path: Path, log: Log) -> None:
    store = LocalStore(tmp_path / "store")
    job = new_id()
    with store.writing("jobs", job, "weights.weights.h5") as path:
        path.write_bytes(b"weights")
        written = str(path)
    folder = store.folder("jobs", job)
    assert [path for _, path in log] == [written, str(folder), str(folder.parent)]
    log.clear()
    with store.writing("jobs", job, "model.keras") as path:  # the folder is known by now
        path.write_bytes(b"model")
        written = str(path)
    assert [path for _, path in log] == [written, str(folder)]
