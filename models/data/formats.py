"""Dataset formats: the file extensions accepted, the arrays' names, and the dtypes allowed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import InvalidUpload

FORMATS: dict[str, str] = {".npz": "npz", ".npy": "npy", ".h5": "h5", ".hdf5": "h5", ".csv": "csv"}
NPY_ARRAY_NAME = "array"
"""The one array of a ``.npy`` file is named ``"array"``."""

_DTYPE_KINDS = "biuf"
WRITERS = {
    "npy": "numpy.save",
    "npz": "numpy.savez or numpy.savez_compressed",
    "h5": "h5py",
    "csv": "a spreadsheet or csv.writer",
}
"""What writes each format well, for messages that say how to fix a file."""


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


def check_dtype(dtype: np.dtype, where: str) -> None:
    """Refuse any dtype but boolean, integer and floating point, saying what it holds instead."""
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


def nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize
