"""Checking HDF5 uploads: no link, storage or declared size that reaches beyond the file."""

from __future__ import annotations

from typing import Any

import h5py

from models.data.formats import ArrayInfo, check_dtype, nbytes
from models.errors import InvalidUpload
from models.settings import Settings

# gzip tops out near 1000:1, so a dataset declaring more than that over the whole file is mostly
# unallocated fill values: a memory bomb, not data.
_H5_MAX_EXPANSION = 1000
_MIB = 1024**2


def inspect_h5(file: h5py.File, file_size: int, settings: Settings) -> list[ArrayInfo]:
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
        total += nbytes(info.shape, dataset.dtype)
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
    check_dtype(dataset.dtype, where)
    shape = tuple(int(size) for size in dataset.shape)
    declared = nbytes(shape, dataset.dtype)
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
