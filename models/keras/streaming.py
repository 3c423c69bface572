"""Training on data larger than memory: batches read from disk as Keras asks for them.

An HDF5 dataset or a ``.npy`` memmap is sliced one contiguous batch at a time, so the worker
holds a few batches, never the file. Shuffling reorders whole batches each epoch (random
single-row reads from disk would be far slower); rows keep their order within a batch.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

STREAM_WORKERS = 2  # background threads reading ahead while the model trains
QUEUE_BATCHES = 8


def nbytes(arrays: Any) -> int:
    """Bytes of one array-like or of a list of them (0 for None)."""
    if arrays is None:
        return 0
    if isinstance(arrays, list | tuple):
        return sum(nbytes(a) for a in arrays)
    return int(math.prod(arrays.shape) * np.dtype(arrays.dtype).itemsize)


def length(arrays: Any) -> int:
    return int((arrays[0] if isinstance(arrays, list | tuple) else arrays).shape[0])


def _slice(arrays: Any, start: int, stop: int) -> Any:
    if arrays is None:
        return None
    if isinstance(arrays, list | tuple):
        return tuple(np.asarray(a[start:stop]) for a in arrays)
    return np.asarray(arrays[start:stop])


@cache
def _batch_class() -> type:
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(
            self, x: Any, y: Any, sample_weight: Any, rows: range, batch_size: int, shuffle: bool
        ) -> None:
            super().__init__(workers=STREAM_WORKERS, max_queue_size=QUEUE_BATCHES)
            self.parts = (x, y, sample_weight)
            self.rows = rows
            self.batch_size = batch_size
            self.shuffle = shuffle
            self.order = np.arange(math.ceil(len(rows) / batch_size))
            if shuffle:
                np.random.shuffle(self.order)

        def __len__(self) -> int:
            return len(self.order)

        def __getitem__(self, index: int) -> tuple[Any, ...]:
            start = self.rows.start + int(self.order[index]) * self.batch_size
            stop = min(self.rows.stop, start + self.batch_size)
            x, y, weight = (_slice(part, start, stop) for part in self.parts)
            return (x, y) if weight is None else (x, y, weight)

        def on_epoch_end(self) -> None:
            if self.shuffle:
                np.random.shuffle(self.order)

    return Batches


def batches(x: Any, y: Any, sample_weight: Any, rows: range, batch_size: int, shuffle: bool) -> Any:
    """A ``keras.utils.PyDataset`` over ``rows`` of the arrays, ``batch_size`` rows a batch."""
    return _batch_class()(x, y, sample_weight, rows, batch_size, shuffle)
