"""A Keras-style progress display fed by a job's live events."""

from __future__ import annotations

from typing import Any

from remotefit.http import Event


def _progbar(target: int | None) -> Any:
    import importlib

    for name in ("keras.utils", "tf_keras.utils"):  # a tf-keras-only environment has the latter
        try:
            return importlib.import_module(name).Progbar(target=target, verbose=1)
        except ImportError:
            continue
    return None


class Progress:
    """``verbose`` as in ``model.fit``: 0 silent, 1 a progress bar, 2 one line per epoch."""

    def __init__(self, verbose: int | str, epochs: int) -> None:
        self.verbose = 1 if verbose == "auto" else int(verbose)
        self.epochs = epochs
        self.epoch = -1
        self.bar: Any = None
        self.steps: int | None = None

    def __call__(self, event: Event) -> None:
        if self.verbose == 0:
            return
        data = event.data
        if event.type == "progress" and data.get("step"):
            self._start(int(data.get("epoch", 0)), data.get("steps"))
            if self.bar is not None and data.get("loss") is not None:
                self.bar.update(int(data["step"]), values=[("loss", float(data["loss"]))])
        elif event.type == "epoch":
            epoch = int(data["epoch"]) - 1
            self._start(epoch, data.get("steps") or self.steps)
            logs = [(k, float(v)) for k, v in data["logs"].items() if v is not None]
            if self.bar is not None:
                self.bar.update(self.steps or 1, values=logs, finalize=True)
            else:
                print(self._epoch_line(epoch, data.get("seconds"), logs), flush=True)
            self.bar = None
        elif event.type == "status" and data.get("status") in ("failed", "cancelled", "pruned"):
            print(f"\njob {data['status']}: {(data.get('error') or {}).get('message', '')}")

    def _epoch_line(self, epoch: int, seconds: float | None, logs: list[tuple[str, float]]) -> str:
        """Keras' ``verbose=2`` line: the epoch's time and time per step, then its logs."""
        parts = [f"Epoch {epoch + 1}/{self.epochs}"]
        if seconds is not None:
            parts.append(f"{seconds:.0f}s")
            if self.steps:
                parts.append(f"{seconds / self.steps * 1000:.0f}ms/step")
        return " - ".join(parts + [f"{k}: {v:.4f}" for k, v in logs])

    def _start(self, epoch: int, steps: int | None) -> None:
        if epoch == self.epoch:
            return
        self.epoch, self.steps = epoch, steps
        if self.verbose == 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
            self.bar = _progbar(steps)
