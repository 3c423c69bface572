"""The client's progress display, fed events as a job's stream gives them."""

from __future__ import annotations

import pytest

from remotefit.http import Event
from remotefit.progress import Progress


def test_one_line_per_epoch_says_its_time_as_keras_does(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(2, 3)
    progress(Event(1, "progress", {"epoch": 0, "epochs": 3, "step": 4, "steps": 8, "loss": 0.7}))
    progress(Event(2, "epoch", {"epoch": 1, "epochs": 3, "logs": {"loss": 0.5}, "seconds": 1.6}))
    progress(Event(3, "epoch", {"epoch": 2, "epochs": 3, "logs": {"loss": 0.25}}))  # an old server
    # An epoch shorter than the progress period: its own event gives the step count.
    progress(Event(4, "epoch", {"epoch": 3, "epochs": 3, "logs": {}, "seconds": 0.3, "steps": 3}))
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1/3 - 2s - 200ms/step - loss: 0.5000",
        "Epoch 2/3 - loss: 0.2500",
        "Epoch 3/3 - 0s - 100ms/step",
    ]
