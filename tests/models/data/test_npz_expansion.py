"""A compressed .npz member that expands far beyond its stored size is refused by its ratio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.data import numpy_files
from models.data.datasets import inspect_file
from models.errors import InvalidUpload
from models.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setattr(numpy_files, "RATIO_FLOOR_BYTES", 64 * 1024)  # small files suffice
    return Settings(data_dir=tmp_path)


@pytest.mark.parametrize(
    "array",
    [np.zeros((1000, 100), np.float32), np.ones((300, 300), np.int64), np.full(200_000, 7.0)],
)
def test_members_that_expand_hundreds_of_times_are_refused(
    tmp_path: Path, settings: Settings, array: np.ndarray
) -> None:
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, fine=np.arange(10), bomb=array)
    with pytest.raises(InvalidUpload, match="REMOTEFIT_MAX_NPZ_EXPANSION") as raised:
        inspect_file(path, "npz", settings)
    assert "'bomb.npy'" in raised.value.message


def test_ordinary_compressed_and_stored_members_pass(tmp_path: Path, settings: Settings) -> None:
    rng = np.random.default_rng(0)
    compressed, stored = tmp_path / "compressed.npz", tmp_path / "stored.npz"
    np.savez_compressed(compressed, x=rng.random((1000, 100)), y=rng.integers(9, size=1000))
    np.savez(stored, zeros=np.zeros((1000, 100)))  # uncompressed: its size is its size
    assert [a.name for a in inspect_file(compressed, "npz", settings)] == ["x", "y"]
    assert [a.name for a in inspect_file(stored, "npz", settings)] == ["zeros"]


def test_a_lower_limit_is_the_operator_s(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "ints.npz"
    np.savez_compressed(path, x=np.random.default_rng(0).integers(3, size=100_000))  # ~20x
    inspect_file(path, "npz", settings)
    with pytest.raises(InvalidUpload, match="limit of 2 times"):
        inspect_file(path, "npz", settings.model_copy(update={"max_npz_expansion": 2}))
