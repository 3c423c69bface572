"""bench.direct: step_ratio's baseline fits in a process of its own, and never hangs on it."""

from __future__ import annotations

import numpy as np
import pytest

from bench.direct import DirectProcess


def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((256, 20)), rng.integers(2, size=(256, 1))


def test_each_fit_gives_each_epochs_wall_time() -> None:
    with DirectProcess(*arrays()) as direct:
        first, second = direct.fit(2), direct.fit(3)
    assert len(first) == 2 and len(second) == 3
    assert all(0 < seconds < 60 for seconds in first + second)


def test_a_process_that_died_is_an_error_not_a_wait() -> None:
    with DirectProcess(*arrays()) as direct:
        direct._process.kill()
        direct._process.join()
        with pytest.raises((EOFError, OSError)):
            direct.fit(1)
