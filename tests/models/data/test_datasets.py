"""Reading uploaded dataset files: each format's happy path and every hostile or broken file.

Every file is built in the test with numpy, h5py, zipfile or plain text; nothing is mocked.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from numpy.lib import format as npy_format

from models.data.datasets import ArrayReader, inspect_file
from models.data.formats import FORMATS, NPY_ARRAY_NAME, ArrayInfo, format_for
from models.errors import DatasetMismatch, InvalidUpload
from models.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def rejected(path: Path, fmt: str, settings: Settings, *fragments: str) -> InvalidUpload:
    """Inspect ``path``, expecting a 422 whose message holds every fragment."""
    with pytest.raises(InvalidUpload) as caught:
        inspect_file(path, fmt, settings)
    error = caught.value
    assert error.status_code == 422
    assert error.code == "invalid_upload"
    for fragment in fragments:
        assert fragment in error.message
    assert str(path.parent) not in error.message
    return error


def npy_bytes(header: dict[str, object], data: bytes = b"") -> bytes:
    """A ``.npy`` file written by hand, so its header can lie about the data."""
    stream = io.BytesIO()
    npy_format.write_array_header_1_0(stream, header)
    return stream.getvalue() + data


# --- file names and ArrayInfo ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "fmt"),
    [
        ("train.npz", "npz"),
        ("x.NPY", "npy"),
        ("data.h5", "h5"),
        ("data.tar.HDF5", "h5"),
        ("table.csv", "csv"),
    ],
)
def test_format_for_reads_the_extension(filename: str, fmt: str) -> None:
    assert format_for(filename) == fmt


@pytest.mark.parametrize("filename", ["data.txt", "data", "npz", "data.npz.gz", ""])
def test_format_for_rejects_unknown_extensions(filename: str) -> None:
    with pytest.raises(InvalidUpload) as caught:
        format_for(filename)
    assert caught.value.status_code == 422
    for extension in FORMATS:
        assert extension in caught.value.message
    assert repr(filename) in caught.value.message


def test_array_info_as_dict() -> None:
    info = ArrayInfo("x", (3, 2), "float32")
    assert info.as_dict() == {"name": "x", "shape": [3, 2], "dtype": "float32"}


# --- .npy ------------------------------------------------------------------------------------


def test_npy_happy_path(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    array = np.arange(12, dtype=">i4").reshape(3, 4)
    np.save(path, array)

    assert inspect_file(path, "npy", settings) == [ArrayInfo(NPY_ARRAY_NAME, (3, 4), "int32")]
    with ArrayReader(path, "npy", settings) as reader:
        assert reader.names() == ["array"]
        assert reader.shape("array") == (3, 4)
        loaded = reader.get("array")
        np.testing.assert_array_equal(loaded, array)
        assert not loaded.flags.writeable


def test_npy_bool_and_empty_arrays_are_accepted(tmp_path: Path, settings: Settings) -> None:
    np.save(tmp_path / "b.npy", np.array([True, False]))
    np.save(tmp_path / "e.npy", np.zeros((0, 3), dtype=np.float16))

    assert inspect_file(tmp_path / "b.npy", "npy", settings) == [ArrayInfo("array", (2,), "bool")]
    with ArrayReader(tmp_path / "e.npy", "npy", settings) as reader:
        assert reader.get("array").shape == (0, 3)
        assert reader.infos() == [ArrayInfo("array", (0, 3), "float16")]


def test_npy_object_dtype_is_rejected_as_pickle(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.array([{"a": 1}, "text"], dtype=object), allow_pickle=True)
    rejected(path, "npy", settings, "pickled Python objects", "dtype='object'")


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.array(["a", "bc"]), "strings"),
        (np.array([b"a"]), "strings"),
        (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "structured"),
        (np.zeros(2, dtype=np.complex64), "complex"),
        (np.array(["2024-01-01"], dtype="datetime64[D]"), "not numeric"),
    ],
)
def test_npy_non_numeric_dtypes_are_rejected(
    tmp_path: Path, settings: Settings, array: np.ndarray, problem: str
) -> None:
    path = tmp_path / "x.npy"
    np.save(path, array)
    rejected(path, "npy", settings, problem, "only boolean, integer and floating-point")


def test_truncated_npy_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((100, 10), dtype=np.float64))
    path.write_bytes(path.read_bytes()[:-8])
    rejected(path, "npy", settings, "truncated", "(100, 10)", "8000 bytes", "7992 bytes")


def test_npy_header_declaring_a_huge_shape_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**9)}
    path.write_bytes(npy_bytes(header, b"\0" * 64))
    rejected(path, "npy", settings, "truncated", "(1000000000, 1000000000)")


def test_npy_negative_dimension_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    path.write_bytes(npy_bytes({"descr": "<f4", "fortran_order": False, "shape": (-1, 4)}))
    rejected(path, "npy", settings, "negative dimension")


def test_npy_garbage_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    path.write_bytes(b"this is not numpy data at all")
    rejected(path, "npy", settings, "not a valid .npy array")


# --- .npz ------------------------------------------------------------------------------------


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_happy_path(tmp_path: Path, settings: Settings, save: Callable[..., None]) -> None:
    path = tmp_path / "data.npz"
    x = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    y = np.arange(5, dtype=np.int64)
    save(path, x_train=x, y_train=y, mask=np.ones(5, dtype=bool))

    assert inspect_file(path, "npz", settings) == [
        ArrayInfo("x_train", (5, 3), "float32"),
        ArrayInfo("y_train", (5,), "int64"),
        ArrayInfo("mask", (5,), "bool"),
    ]
    with ArrayReader(path, "npz", settings) as reader:
        assert reader.names() == ["x_train", "y_train", "mask"]
        assert reader.shape("x_train") == (5, 3)
        np.testing.assert_array_equal(reader.get("x_train"), x)
        np.testing.assert_array_equal(reader.get("y_train"), y)


def test_npz_with_a_pickled_member_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, good=np.zeros(3), evil=np.array([object()], dtype=object))
    rejected(path, "npz", settings, "'evil.npy'", "pickled Python objects")


def test_npz_with_too_many_members_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    arrays: dict[str, Any] = {f"a{i}": np.zeros(1) for i in range(5)}
    np.savez(path, **arrays)
    limited = Settings(data_dir=tmp_path, max_dataset_arrays=4)
    rejected(path, "npz", limited, "too many members", "5", "limit is 4")


def test_npz_member_declaring_a_huge_shape_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "bomb.npz"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("small.npy", npy_bytes({**header, "shape": (2,)}, b"\0" * 16))
        archive.writestr("x.npy", npy_bytes(header))
    rejected(path, "npz", settings, "'x.npy'", "(1000000, 1000000)", "zip bomb")


def test_npz_expanding_beyond_the_limit_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    zeros = io.BytesIO()
    np.save(zeros, np.zeros(1_000_000, dtype=np.uint8))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", zeros.getvalue())
    assert path.stat().st_size < 10_000
    limited = Settings(data_dir=tmp_path, max_upload_bytes=10_000)
    rejected(path, "npz", limited, "uncompressed", "1000128 bytes", "limit is 40000 bytes")


def test_non_zip_npz_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.npz"
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    rejected(path, "npz", settings, "not a valid .npz", "not a zip archive")


@pytest.mark.parametrize("member", ["notes.txt", ".npy", "folder/"])
def test_npz_member_that_is_not_a_named_npy_is_rejected(
    tmp_path: Path, settings: Settings, member: str
) -> None:
    path = tmp_path / "data.npz"
    with zipfile.ZipFile(path, "w") as archive:
        header = {"descr": "<f4", "fortran_order": False, "shape": ()}
        archive.writestr("x.npy", npy_bytes(header, b"\0" * 4))
        archive.writestr(member, b"")
    rejected(path, "npz", settings, repr(member), "not a named .npy array")


def test_empty_zip_npz_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.npz"
    zipfile.ZipFile(path, "w").close()
    rejected(path, "npz", settings, "holds no arrays")


def test_npz_corrupt_data_becomes_a_422_on_read(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.arange(1000, dtype=np.float64))
    raw = bytearray(path.read_bytes())
    raw[4000] ^= 0xFF  # inside the stored data, past the header: the CRC no longer matches
    path.write_bytes(bytes(raw))

    assert inspect_file(path, "npz", settings) == [ArrayInfo("x", (1000,), "float64")]
    with ArrayReader(path, "npz", settings) as reader, pytest.raises(InvalidUpload) as caught:
        reader.get("x")
    assert "could not be read" in caught.value.message
    assert "CRC" in caught.value.message
    assert str(tmp_path) not in caught.value.message


# --- HDF5 ------------------------------------------------------------------------------------


def test_h5_happy_path_with_nested_groups(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    with h5py.File(path, "w") as file:
        file["x_train"] = x
        file.create_dataset("group/inner/y", data=np.arange(6, dtype=np.int16), compression="gzip")
        file["group/flags"] = np.array([True, False, True, True, False, True])
        file["group"].attrs["note"] = "attributes are ignored"

    assert inspect_file(path, "h5", settings) == [
        ArrayInfo("group/flags", (6,), "bool"),
        ArrayInfo("group/inner/y", (6,), "int16"),
        ArrayInfo("x_train", (6, 4), "float32"),
    ]
    with ArrayReader(path, "h5", settings) as reader:
        assert reader.shape("group/inner/y") == (6,)
        np.testing.assert_array_equal(reader.get("x_train"), x)
        np.testing.assert_array_equal(reader.get("group/inner/y"), np.arange(6))


def test_h5_soft_link_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.zeros(3)
        file["alias"] = h5py.SoftLink("/x")
    rejected(path, "h5", settings, "soft link", "'alias'", "'/x'")


def test_h5_soft_link_on_a_group_component_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["real/x"] = np.zeros(3)
        file["outer/linked"] = h5py.SoftLink("/real")
    rejected(path, "h5", settings, "soft link", "'outer/linked'")


def test_h5_external_link_is_rejected(tmp_path: Path, settings: Settings) -> None:
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as file:
        file["data"] = np.arange(3)
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.zeros(3)
        file["group/stolen"] = h5py.ExternalLink("secret.h5", "/data")
    rejected(path, "h5", settings, "external link", "'group/stolen'", "'secret.h5'")


def test_h5_external_storage_is_rejected(tmp_path: Path, settings: Settings) -> None:
    raw = tmp_path / "raw.bin"
    np.arange(4, dtype=np.float32).tofile(raw)
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset(
            "x", shape=(4,), dtype=np.float32, external=[(str(raw), 0, h5py.h5f.UNLIMITED)]
        )
    rejected(path, "h5", settings, "'x'", "external storage")


def test_h5_virtual_dataset_is_rejected(tmp_path: Path, settings: Settings) -> None:
    source = tmp_path / "source.h5"
    with h5py.File(source, "w") as file:
        file["data"] = np.arange(4, dtype=np.float32)
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        layout = h5py.VirtualLayout(shape=(4,), dtype=np.float32)
        layout[:] = h5py.VirtualSource(str(source), "data", shape=(4,))
        file.create_virtual_dataset("v", layout)
    rejected(path, "h5", settings, "'v'", "virtual dataset")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (np.array([b"abc", b"d"]), "strings"),
        (np.array(["abc", "d"], dtype=h5py.string_dtype()), "variable-length"),
        (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "compound"),
    ],
)
def test_h5_non_numeric_datasets_are_rejected(
    tmp_path: Path, settings: Settings, data: np.ndarray, problem: str
) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.zeros(2)
        file.create_dataset("labels", data=data)
    rejected(path, "h5", settings, "'labels'", problem)


def test_h5_declared_size_far_beyond_the_file_is_rejected(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("x", shape=(10**6, 10**6), dtype=np.float64, chunks=(100, 100))
    rejected(path, "h5", settings, "'x'", "(1000000, 1000000)", "far more than the file stores")


def test_h5_without_datasets_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_group("empty")
    rejected(path, "h5", settings, "no datasets")


def test_h5_null_dataspace_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=h5py.Empty("f4"))
    rejected(path, "h5", settings, "'x'", "null dataspace")


def test_h5_with_too_many_datasets_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        for i in range(4):
            file[f"g/x{i}"] = np.zeros(1)
    limited = Settings(data_dir=tmp_path, max_dataset_arrays=3)
    rejected(path, "h5", limited, "too many datasets", "3")


def test_non_hdf5_bytes_named_h5_are_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    np.save(path.with_suffix(".npy"), np.zeros(3))
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    rejected(path, "h5", settings, "not a valid HDF5 file")


def test_truncated_h5_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["x"] = np.arange(10_000, dtype=np.float64)
    path.write_bytes(path.read_bytes()[:4000])
    rejected(path, "h5", settings, "could not be read")


# --- CSV -------------------------------------------------------------------------------------


def test_csv_happy_path(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "table.csv"
    path.write_text("\ufeffheight, weight ,label\n1.5,60,0\n1.8,8e1,1\n\n-2,  3 ,nan\n")

    assert inspect_file(path, "csv", settings) == [
        ArrayInfo("height", (3,), "float32"),
        ArrayInfo("weight", (3,), "float32"),
        ArrayInfo("label", (3,), "float32"),
    ]
    with ArrayReader(path, "csv", settings) as reader:
        assert reader.names() == ["height", "weight", "label"]
        np.testing.assert_array_equal(reader.get("weight"), np.array([60, 80, 3], np.float32))
        np.testing.assert_array_equal(reader.get("label"), np.array([0, 1, np.nan], np.float32))


def test_headerless_csv_names_columns_by_position(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "table.csv"
    path.write_text("1,2\r\n3,4\r\n5,6\r\n")

    assert inspect_file(path, "csv", settings) == [
        ArrayInfo("0", (3,), "float32"),
        ArrayInfo("1", (3,), "float32"),
    ]
    with ArrayReader(path, "csv", settings) as reader:
        np.testing.assert_array_equal(reader.get("1"), np.array([2, 4, 6], np.float32))


def test_csv_text_cell_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n3,cat\n")
    rejected(path, "csv", settings, "non-numeric", "column 'b'", "row 2", "line 3", "'cat'")


def test_csv_empty_cell_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n,4\n")
    rejected(path, "csv", settings, "empty cell", "column 'a'", "row 2")


def test_csv_with_too_many_columns_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,b,c,d\n1,2,3,4\n")
    limited = Settings(max_csv_columns=3, data_dir=tmp_path)
    rejected(path, "csv", limited, "too many columns", "4 columns", "limit is 3")


def test_csv_with_too_many_rows_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a\n" + "1\n" * 6)
    limited = Settings(max_csv_rows=5, data_dir=tmp_path)
    rejected(path, "csv", limited, "too many rows", "limit is 5")


def test_csv_huge_single_line_is_rejected_before_splitting(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("1," * 100_000 + "1\n")
    limited = Settings(max_csv_columns=3, data_dir=tmp_path)
    rejected(path, "csv", limited, "Line 1", "longer than 384 characters")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a,a,b\n1,2,3\n", "duplicate column names: ['a']"),
        ("a,,b\n1,2,3\n", "Column 2 of the uploaded CSV file has an empty name"),
        ("a,b\n1,2\n3\n", "Row 2 (line 3) of the uploaded CSV file has 1 cells"),
        ("a,b\n", "no data rows"),
        ("\n\n", "no rows"),
        ("a\n" + "1" * 200_000 + "\n", "could not be parsed: field larger than field limit"),
    ],
)
def test_malformed_csv_is_rejected(
    tmp_path: Path, settings: Settings, text: str, problem: str
) -> None:
    path = tmp_path / "table.csv"
    path.write_text(text)
    rejected(path, "csv", settings, problem)


def test_csv_that_is_not_utf8_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "table.csv"
    path.write_bytes("größe\n1\n".encode("latin-1"))
    rejected(path, "csv", settings, "not UTF-8", "invalid start byte", "xf6")


# --- every format ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(set(FORMATS.values())))
def test_empty_file_is_rejected(tmp_path: Path, settings: Settings, fmt: str) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    rejected(path, fmt, settings, "empty (0 bytes)")


def test_unknown_format_is_rejected(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "data.txt"
    path.write_text("1,2\n")
    rejected(path, "txt", settings, "Unknown dataset format 'txt'")


def test_reader_names_the_available_arrays_when_one_is_missing(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros(2), y=np.ones(2))
    with ArrayReader(path, "npz", settings) as reader, pytest.raises(DatasetMismatch) as caught:
        reader.shape("x_train")
    assert caught.value.status_code == 422
    assert "'x_train'" in caught.value.message
    assert "['x', 'y']" in caught.value.message
    assert caught.value.extra == {"available": ["x", "y"]}


def test_reader_must_be_entered(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(2))
    with pytest.raises(RuntimeError, match="context manager"):
        ArrayReader(path, "npy", settings).names()
