"""A CSV upload is parsed once, into the store's array form; nothing reads its text again."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session

from models.access import SERVICE
from models.data import catalog, csv_reader, datasets
from models.data.store import LocalStore
from models.errors import InvalidUpload
from models.settings import Settings

CSV = "a,b,label\n1,2,0\n3,4.5,1\n5,6,0\n"


def _upload(tmp_path: Path, store: LocalStore, text: str = CSV) -> Path:
    temp = store.temp_path()
    temp.write_text(text)
    return temp


def test_csv_is_stored_as_arrays_and_never_parsed_again(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path)
    store = LocalStore(tmp_path / "store")
    dataset = catalog.create(session, store, _upload(tmp_path, store), "table.csv", settings, None)
    assert (dataset.format, [a["name"] for a in dataset.arrays]) == ("csv", ["a", "b", "label"])
    folder = store.folder("datasets", dataset.id)
    assert sorted(p.name for p in folder.iterdir()) == [catalog.STORED_CSV]
    assert list((tmp_path / "store" / "tmp").iterdir()) == []

    def parse_again(*_: object) -> None:
        raise AssertionError("the CSV text was parsed again")

    monkeypatch.setattr(csv_reader, "read_csv_columns", parse_again)
    monkeypatch.setattr(datasets, "read_csv_columns", parse_again)
    with catalog.open_reader(session, store, dataset.id, SERVICE) as reader:
        np.testing.assert_array_equal(reader.get("b"), np.array([2, 4.5, 6], np.float32))
        assert reader.get("label").dtype == np.float32


def test_an_older_store_s_csv_file_is_still_read(session: Session, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = LocalStore(tmp_path / "store")
    dataset = catalog.create(session, store, _upload(tmp_path, store), "table.csv", settings, None)
    folder = store.folder("datasets", dataset.id)
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "data.csv").write_text(CSV)
    with catalog.open_reader(session, store, dataset.id, SERVICE) as reader:
        np.testing.assert_array_equal(reader.get("a"), np.array([1, 3, 5], np.float32))


@pytest.mark.parametrize(("rows", "columns"), [(4, 3), (1, 20), (11, 1)])
def test_total_cells_are_bounded(tmp_path: Path, rows: int, columns: int) -> None:
    settings = Settings(data_dir=tmp_path, max_csv_cells=10)
    store = LocalStore(tmp_path / "store")

    def table(count: int) -> str:
        header = ",".join(f"c{i}" for i in range(columns))
        return header + "\n" + "\n".join(",".join(["1"] * columns) for _ in range(count)) + "\n"

    with pytest.raises(InvalidUpload, match="REMOTEFIT_MAX_CSV_CELLS"):
        datasets.inspect_file(_upload(tmp_path, store, table(rows)), "csv", settings)
    if columns <= 10:  # as many rows as fit in the limit are fine
        datasets.inspect_file(_upload(tmp_path, store, table(10 // columns)), "csv", settings)
