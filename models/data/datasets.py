"""Reading the dataset files users upload: ``.npy``, ``.npz``, HDF5 and CSV.

Every upload is hostile until checked. Opening a file reads only its headers and directories
(npy, npz, HDF5) or parses it once (CSV), and turns anything unsafe or unusable into
``InvalidUpload`` (422) before any data is loaded: pickles, non-numeric dtypes, zip bombs,
truncated files, HDF5 links and storage that reach outside the file, and declared sizes far
beyond what is stored. Array names: ``"array"`` for ``.npy``, the member name without ``.npy``
for ``.npz``, the full path without the leading ``/`` for HDF5, the header name for CSV.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from models.data.csv_reader import read_csv_columns
from models.data.formats import FORMATS, WRITERS, ArrayInfo
from models.data.hdf5_files import inspect_h5
from models.data.numpy_files import inspect_npy, inspect_npz
from models.errors import DatasetMismatch, InvalidUpload, ServiceError
from models.settings import Settings, get_settings


def inspect_file(path: Path, fmt: str, settings: Settings) -> list[ArrayInfo]:
    """Open an uploaded file and list every array in it, checking that each is safe and usable.

    Args:
        path: The uploaded file on disk.
        fmt: Its format, from ``format_for``.
        settings: The limits (``max_dataset_arrays``, ``max_csv_rows``, ``max_csv_columns``,
            ``max_upload_bytes``).

    Returns:
        One ``ArrayInfo`` per array, in file order.

    Raises:
        InvalidUpload: The file is empty, corrupt, not of its format, or holds something unsafe
            or unusable; the message says what, what was expected and how to fix it.
    """
    with ArrayReader(path, fmt, settings) as reader:
        return reader.infos()


class ArrayReader:
    """Reads the arrays of an uploaded file, checking the whole file on entering the context.

    ``get`` loads one array: ``.npz`` members are read lazily one by one, HDF5 datasets with
    ``dset[()]``, CSV is parsed once and its columns kept, and ``.npy`` is a read-only memmap.
    """

    def __init__(self, path: Path, fmt: str, settings: Settings | None = None) -> None:
        if fmt not in FORMATS.values():
            raise InvalidUpload(
                f"Unknown dataset format {fmt!r}; expected one of {sorted(set(FORMATS.values()))}."
            )
        self.path = path
        self.fmt = fmt
        self._settings = settings if settings is not None else get_settings()
        self._infos: dict[str, ArrayInfo] | None = None
        self._h5: h5py.File | None = None
        self._npz: Any = None
        self._columns: dict[str, np.ndarray] = {}

    def __enter__(self) -> ArrayReader:
        try:
            with self._untrusted():
                self._infos = {info.name: info for info in self._open()}
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the open file handles; the reader cannot be used afterwards."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None
        if self._npz is not None:
            self._npz.close()
            self._npz = None
        self._columns = {}
        self._infos = None

    def infos(self) -> list[ArrayInfo]:
        """Every array's name, shape and dtype, in file order."""
        return list(self._opened().values())

    def names(self) -> list[str]:
        """Every array's name, in file order."""
        return list(self._opened())

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of array ``name``, without reading its data.

        Raises:
            DatasetMismatch: The file has no array called ``name``.
        """
        return self._info(name).shape

    def get(self, name: str) -> np.ndarray:
        """The whole array ``name`` in memory (a read-only memmap for ``.npy``).

        Raises:
            DatasetMismatch: The file has no array called ``name``.
            InvalidUpload: The stored data cannot be read (corrupt or truncated).
        """
        info = self._info(name)
        with self._untrusted():
            if self.fmt == "npy":
                data = np.load(self.path, mmap_mode="r", allow_pickle=False)
            elif self.fmt == "npz":
                if self._npz is None:
                    self._npz = np.load(self.path, allow_pickle=False)
                data = self._npz[name]
            elif self.fmt == "h5":
                assert self._h5 is not None
                data = np.asarray(self._h5[name][()])
            else:
                data = self._columns[name]
        if data.shape != info.shape or data.dtype.name != info.dtype:
            raise InvalidUpload(
                f"Array {name!r} of the uploaded {self.fmt} file holds {data.shape} "
                f"{data.dtype.name} data, but its header declares {info.shape} {info.dtype}. "
                f"The file is corrupt; write it again with {WRITERS[self.fmt]}."
            )
        return data

    def lazy(self, name: str) -> Any:
        """Array ``name`` without reading it: an h5py dataset or a memmap, sliced on demand.

        Formats that cannot be read in parts (``.npz``, CSV) give the array itself.
        """
        if self.fmt == "h5":
            self._info(name)
            assert self._h5 is not None
            return self._h5[name]
        return self.get(name)

    def _opened(self) -> dict[str, ArrayInfo]:
        if self._infos is None:
            raise RuntimeError("Use ArrayReader as a context manager: `with ArrayReader(...)`.")
        return self._infos

    def _info(self, name: str) -> ArrayInfo:
        infos = self._opened()
        if name not in infos:
            raise DatasetMismatch(
                f"The dataset has no array named {name!r}. Use one of the arrays it holds: "
                f"{sorted(infos)}. Received: {name!r}",
                available=sorted(infos),
            )
        return infos[name]

    def _open(self) -> list[ArrayInfo]:
        size = self.path.stat().st_size
        if size == 0:
            raise InvalidUpload(
                f"The uploaded {self.fmt} file is empty (0 bytes). Upload a file written with "
                f"{WRITERS[self.fmt]}."
            )
        if self.fmt == "npy":
            return [inspect_npy(self.path, size)]
        if self.fmt == "npz":
            return inspect_npz(self.path, self._settings)
        if self.fmt == "h5":
            if not h5py.is_hdf5(self.path):
                raise InvalidUpload(
                    "The uploaded file is not a valid HDF5 file (no HDF5 signature found). "
                    "Write it with h5py, e.g. `h5py.File('data.h5', 'w')['x'] = x`, or give "
                    "it the extension that matches its contents."
                )
            self._h5 = h5py.File(self.path, "r")
            return inspect_h5(self._h5, size, self._settings)
        self._columns = read_csv_columns(self.path, self._settings)
        return [ArrayInfo(name, column.shape, "float32") for name, column in self._columns.items()]

    @contextmanager
    def _untrusted(self) -> Iterator[None]:
        """Turn any failure of numpy, h5py or zipfile on the file into a 422, never a 500."""
        try:
            yield
        except ServiceError:
            raise
        except Exception as error:
            # Library messages can quote the server-side path; the client must not see it.
            reason = f"{type(error).__name__}: {error}".replace(str(self.path), "<upload>")
            raise InvalidUpload(
                f"The uploaded {self.fmt} file could not be read ({reason}). Check that the "
                f"upload is complete and was written with {WRITERS[self.fmt]}."
            ) from error
