"""Checking ``.npy`` and ``.npz`` uploads from their headers, before any data is loaded."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from models.data.formats import NPY_ARRAY_NAME, ArrayInfo, check_dtype, nbytes
from models.errors import InvalidUpload
from models.settings import Settings

# Below this size a member's expansion is harmless whatever its ratio (a mask of zeros).
RATIO_FLOOR_BYTES = 64 * 1024**2


def _check_expansion(member: zipfile.ZipInfo, where: str, max_ratio: int) -> None:
    """Refuse a compressed member that expands far beyond its stored size (a zip bomb).

    Deflate reaches about 1000:1 on constant data; numeric arrays rarely pass 10:1.
    """
    if member.compress_type == zipfile.ZIP_STORED or member.file_size <= RATIO_FLOOR_BYTES:
        return
    ratio = member.file_size / max(member.compress_size, 1)
    if ratio > max_ratio:
        raise InvalidUpload(
            f"{where} stores {member.compress_size} bytes that expand to {member.file_size} "
            f"({ratio:.0f} times), over this server's limit of {max_ratio} times "
            "(REMOTEFIT_MAX_NPZ_EXPANSION). Save it with numpy.savez (uncompressed), or as .npy.",
            figure=round(ratio),
            limit=max_ratio,
        )


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
    check_dtype(dtype, where)
    return shape, dtype, stream.tell()


def inspect_npy(path: Path, file_size: int) -> ArrayInfo:
    with path.open("rb") as stream:
        shape, dtype, header_size = _read_npy_header(stream, "The uploaded .npy file")
    declared, stored = nbytes(shape, dtype), file_size - header_size
    if declared > stored:
        raise InvalidUpload(
            f"The uploaded .npy file is truncated or corrupt: its header declares shape {shape} "
            f"of {dtype.name} ({declared} bytes) but only {stored} bytes of data follow. "
            f"Upload the complete file written by numpy.save."
        )
    return ArrayInfo(NPY_ARRAY_NAME, shape, dtype.name)


def inspect_npz(path: Path, settings: Settings) -> list[ArrayInfo]:
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
            _check_expansion(member, where, settings.max_npz_expansion)
            with archive.open(member) as stream:
                shape, dtype, header_size = _read_npy_header(stream, where)
            declared, stored = nbytes(shape, dtype), member.file_size - header_size
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
