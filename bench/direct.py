"""The step ratios' baseline: a direct ``model.fit`` in a fresh Python process.

Not in the benchmark's own process: two processes running the same code on this machine
differ in speed by a few per cent, and the difference lasts their whole life. Two identical
services (the same code, configuration and data), taking turns for ten rounds: one's steps
were slower than the other's in eight rounds of ten by each job's median epoch (nine of ten
by its fastest), by 6.7 % at the median. Measured against one worker process and one direct
process, a figure carries that luck as a bias that no number of rounds removes; each round of
step_ratio therefore pairs a fresh worker with a fresh process of this kind, and the median
over rounds spreads the luck of both sides.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import numpy as np


class EpochClock:
    """A Keras callback timing each epoch as the worker does (``seconds`` of its epoch events).

    From the end of one epoch to the end of the next: all the epoch cost, whatever happens
    between two epochs included.
    """

    def __new__(cls) -> Any:
        import keras

        class Clock(keras.callbacks.Callback):
            def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
                self.seconds: list[float] = []
                self.mark = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                now = time.perf_counter()
                self.seconds.append(now - self.mark)
                self.mark = now

        return Clock()


SEED_COMPILE = {"loss": "binary_crossentropy", "optimizer": "rmsprop", "metrics": ["accuracy"]}


def _fit_when_asked(connection: Connection) -> None:
    """The process's whole life: the data and the model, then one fit from fresh weights per
    number of epochs asked for, each epoch's seconds back; ``None`` ends it."""
    import keras  # imported while the caller is still starting its side

    from bench.common import seed_model

    x, y, model_json, compile_args, batch_size = connection.recv()
    while (epochs := connection.recv()) is not None:
        model = seed_model() if model_json is None else keras.models.model_from_json(model_json)
        model.compile(**compile_args)  # Keras' defaults otherwise, as a user's script has them
        clock = EpochClock()
        model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[clock])
        connection.send(clock.seconds)


class DirectProcess:
    """A fresh Python process (spawned, as a user's script starts) that fits on request.

    ``with DirectProcess(x, y) as direct: direct.fit(epochs)`` returns each epoch's wall
    time; the process starts importing Keras at once and ends with the block. The data goes
    through the pipe, so that a process that died is an error here, not a wait. The model is
    the seed example's unless ``model_json`` (``model.to_json()``) names another.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        model_json: str | None = None,
        compile_args: dict[str, Any] | None = None,
        batch_size: int = 128,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_fit_when_asked, args=(child,), name="direct-fit", daemon=True
        )
        self._process.start()
        child.close()
        self._connection.send((x, y, model_json, compile_args or SEED_COMPILE, batch_size))

    def fit(self, epochs: int) -> list[float]:
        self._connection.send(epochs)
        seconds: list[float] = self._connection.recv()
        return seconds

    def __enter__(self) -> DirectProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):  # it died already
            self._connection.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()
