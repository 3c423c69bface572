"""Reading the dataset files users upload: ``.npy``, ``.npz``, HDF5 and CSV.

Every upload is hostile until checked. Opening a file reads only its headers and directories
(npy, npz, HDF5) or parses it once (CSV), and turns anything unsafe or unusable into
``InvalidUpload`` (422) before any data is loaded: pickles, non-numeric dtypes, zip bombs,
truncated files, HDF5 links and storage that reach outside the file, and declared sizes far
beyond what is stored. Array names: ``"array"`` for ``.npy``, the member name without ``.npy``
for ``.npz``, the full path without the leading ``/`` for HDF5, the header name for CSV.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import h5py
import numpy as np
from numpy.lib import format as npy_format

from models.csv_reader import read_csv_columns
from models.errors import DatasetMismatch, InvalidUpload, ServiceError
from models.settings import Settings, get_settings

FORMATS: dict[str, str] = {".npz": "npz", ".npy": "npy", ".h5": "h5", ".hdf5": "h5", ".csv": "csv"}
NPY_ARRAY_NAME = "array"
"""The one array of a ``.npy`` file is named ``"array"``."""

_MIB = 1024**2
# gzip tops out near 1000:1, so a dataset declaring more than that over the whole file is mostly
# unallocated fill values: a memory bomb, not data.
_H5_MAX_EXPANSION = 1000
_DTYPE_KINDS = "biuf"
_WRITERS = {
    "npy": "numpy.save",
    "npz": "numpy.savez or numpy.savez_compressed",
    "h5": "h5py",
    "csv": "a spreadsheet or csv.writer",
}


def format_for(filename: str) -> str:
    """The upload format named by a file name's extension.

    Args:
        filename: The client's file name; only its last extension is used, case-insensitively.

    Returns:
        One of ``"npz"``, ``"npy"``, ``"h5"``, ``"csv"``.

    Raises:
        InvalidUpload: The extension is not one of ``FORMATS``.
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidUpload(
            f"Cannot tell the dataset format from the file name: the extension must be one of "
            f"{', '.join(sorted(FORMATS))}. Rename the file to match its contents. "
            f"Received: filename={filename!r}"
        )
    return FORMATS[suffix]


@dataclass(frozen=True)
class ArrayInfo:
    """One array of an uploaded file: its name, shape and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"name": ..., "shape": [...], "dtype": "float32"}``."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


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
                f"The file is corrupt; write it again with {_WRITERS[self.fmt]}."
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
                f"{_WRITERS[self.fmt]}."
            )
        if self.fmt == "npy":
            return [_inspect_npy(self.path, size)]
        if self.fmt == "npz":
            return _inspect_npz(self.path, self._settings)
        if self.fmt == "h5":
            if not h5py.is_hdf5(self.path):
                raise InvalidUpload(
                    "The uploaded file is not a valid HDF5 file (no HDF5 signature found). "
                    "Write it with h5py, e.g. `h5py.File('data.h5', 'w')['x'] = x`, or give "
                    "it the extension that matches its contents."
                )
            self._h5 = h5py.File(self.path, "r")
            return _inspect_h5(self._h5, size, self._settings)
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
                f"upload is complete and was written with {_WRITERS[self.fmt]}."
            ) from error


def _check_dtype(dtype: np.dtype, where: str) -> None:
    if dtype.kind in _DTYPE_KINDS and dtype.fields is None and dtype.subdtype is None:
        return
    reason = {
        "O": "holds objects (pickled Python objects, or variable-length HDF5 data)",
        "S": "holds strings",
        "U": "holds strings",
        "V": "holds structured, compound or raw records",
        "c": "holds complex numbers",
    }.get(dtype.kind, "is not numeric")
    raise InvalidUpload(
        f"{where} {reason}; only boolean, integer and floating-point arrays are accepted. "
        f"Convert it to numbers before uploading, e.g. `x.astype('float32')`. "
        f"Received: dtype={str(dtype)[:80]!r}"
    )


def _nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def _read_npy_header(stream: IO[bytes], where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """The declared shape and dtype of a ``.npy`` stream and the header's length in bytes."""
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as error:
        raise InvalidUpload(
            f"{where} is not a valid .npy array ({error}). Write it with numpy.save or numpy.savez."
        ) from error
    if any(size < 0 for size in shape):
        raise InvalidUpload(f"{where} declares a negative dimension: shape={shape}. It is corrupt.")
    _check_dtype(dtype, where)
    return shape, dtype, stream.tell()


def _inspect_npy(path: Path, file_size: int) -> ArrayInfo:
    with path.open("rb") as stream:
        shape, dtype, header_size = _read_npy_header(stream, "The uploaded .npy file")
    declared, stored = _nbytes(shape, dtype), file_size - header_size
    if declared > stored:
        raise InvalidUpload(
            f"The uploaded .npy file is truncated or corrupt: its header declares shape {shape} "
            f"of {dtype.name} ({declared} bytes) but only {stored} bytes of data follow. "
            f"Upload the complete file written by numpy.save."
        )
    return ArrayInfo(NPY_ARRAY_NAME, shape, dtype.name)


def _inspect_npz(path: Path, settings: Settings) -> list[ArrayInfo]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise InvalidUpload(
            "The uploaded file is not a valid .npz file (it is not a zip archive). Write it "
            "with numpy.savez or numpy.savez_compressed, or use .npy for a single array."
        ) from error
    with archive:
        members = archive.infolist()
        if len(members) > settings.max_dataset_arrays:
            raise InvalidUpload(
                f"The uploaded .npz file holds too many members: {len(members)}, but the limit "
                f"is {settings.max_dataset_arrays}. Put fewer arrays in one file."
            )
        budget = settings.max_upload_bytes * 4
        uncompressed = sum(member.file_size for member in members)
        if uncompressed > budget:
            raise InvalidUpload(
                f"The uploaded .npz file would expand to {uncompressed} bytes uncompressed, but "
                f"the limit is {budget} bytes. Upload smaller arrays."
            )
        infos: dict[str, ArrayInfo] = {}
        for member in members:
            name = member.filename.removesuffix(".npy")
            where = f"Member {member.filename!r} of the uploaded .npz file"
            if member.is_dir() or not member.filename.endswith(".npy") or not name:
                raise InvalidUpload(
                    f"{where} is not a named .npy array; an .npz file holds only `name.npy` "
                    f"members. Write it with numpy.savez(file, name=array)."
                )
            if name in infos:
                raise InvalidUpload(
                    f"{where} repeats the array name {name!r}; names must be unique."
                )
            with archive.open(member) as stream:
                shape, dtype, header_size = _read_npy_header(stream, where)
            declared, stored = _nbytes(shape, dtype), member.file_size - header_size
            if declared > stored:
                raise InvalidUpload(
                    f"{where} declares shape {shape} of {dtype.name} ({declared} bytes) but "
                    f"stores only {stored} bytes: it is corrupt or a zip bomb. Write the file "
                    f"again with numpy.savez."
                )
            infos[name] = ArrayInfo(name, shape, dtype.name)
    if not infos:
        raise InvalidUpload("The uploaded .npz file holds no arrays. Save at least one array.")
    return list(infos.values())


def _inspect_h5(file: h5py.File, file_size: int, settings: Settings) -> list[ArrayInfo]:
    # visititems follows hard links only, so a link it never reaches could still point outside;
    # every link in the file is checked first, then every component of each dataset's path.
    # Callbacks only record and stop (a non-None return): h5py garbles exceptions raised in them.
    outside: list[tuple[str, Any]] = []

    def note_link(name: str, link: Any) -> bool | None:
        if isinstance(link, h5py.HardLink):
            return None
        outside.append((name, link))
        return True

    file.visititems_links(note_link)
    if outside:
        _check_link(*outside[0])
    found: list[tuple[str, h5py.Dataset]] = []

    def collect(name: str, item: Any) -> bool | None:
        if isinstance(item, h5py.Dataset):
            found.append((name, item))
        return len(found) > settings.max_dataset_arrays or None

    file.visititems(collect)
    if len(found) > settings.max_dataset_arrays:
        raise InvalidUpload(
            f"The uploaded HDF5 file holds too many datasets: more than "
            f"{settings.max_dataset_arrays}, the limit. Put fewer arrays in one file."
        )
    if not found:
        raise InvalidUpload(
            "The uploaded HDF5 file holds no datasets. Store each array as a dataset, e.g. "
            "`f.create_dataset('x_train', data=x_train)`."
        )
    budget = settings.max_upload_bytes * 4
    bound = min(file_size * _H5_MAX_EXPANSION + _MIB, budget)
    infos, total = [], 0
    for name, dataset in found:
        _check_path_links(file, name)
        info = _inspect_h5_dataset(name, dataset, bound)
        total += _nbytes(info.shape, dataset.dtype)
        infos.append(info)
    if total > budget:
        raise InvalidUpload(
            f"The datasets of the uploaded HDF5 file declare {total} bytes in all, but the "
            f"limit is {budget} bytes. Upload smaller arrays."
        )
    return infos


def _check_link(name: str, link: Any) -> None:
    if isinstance(link, h5py.HardLink):
        return
    if isinstance(link, h5py.ExternalLink):
        kind = f"an external link (to {link.filename[:80]!r}:{link.path[:80]!r})"
    elif isinstance(link, h5py.SoftLink):
        kind = f"a soft link (to {link.path[:80]!r})"
    else:
        kind = "a user-defined link"
    raise InvalidUpload(
        f"The uploaded HDF5 file has {kind} at {name!r}; links are not accepted because they "
        f"can reach outside the file. Store the data itself under that name, e.g. "
        f"`f.create_dataset(name, data=array)`."
    )


def _check_path_links(file: h5py.File, name: str) -> None:
    group, parts = file, name.split("/")
    for depth, part in enumerate(parts, start=1):
        _check_link("/".join(parts[:depth]), group.get(part, getlink=True))
        if depth < len(parts):
            group = group[part]


def _inspect_h5_dataset(name: str, dataset: h5py.Dataset, bound: int) -> ArrayInfo:
    where = f"HDF5 dataset {name!r}"
    fix = "Write the data itself into the file, e.g. `f.create_dataset(name, data=array)`."
    if dataset.is_virtual:
        raise InvalidUpload(f"{where} is a virtual dataset, whose data lives elsewhere. {fix}")
    if dataset.external is not None:
        raise InvalidUpload(f"{where} uses external storage in files outside the upload. {fix}")
    if dataset.shape is None:
        raise InvalidUpload(f"{where} is empty (it has a null dataspace, no shape). {fix}")
    _check_dtype(dataset.dtype, where)
    shape = tuple(int(size) for size in dataset.shape)
    declared = _nbytes(shape, dataset.dtype)
    if declared > bound:
        raise InvalidUpload(
            f"{where} declares shape {shape} of {dataset.dtype.name} ({declared} bytes), far "
            f"more than the file stores (limit {bound} bytes for this file). {fix}"
        )
    plist = dataset.id.get_create_plist()
    for index in range(plist.get_nfilters()):
        code, _, _, filter_name = plist.get_filter(index)
        if not h5py.h5z.filter_avail(code):
            raise InvalidUpload(
                f"{where} is compressed with filter {filter_name.decode(errors='replace')!r} "
                f"(id {code}), which this service cannot decode. Use gzip or no compression."
            )
    return ArrayInfo(name, shape, dataset.dtype.name)
