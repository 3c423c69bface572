"""A job runs on a thread of its own, at the bottom of a fresh Python stack."""

from __future__ import annotations

import sys
import threading

import pytest

from worker.shallow import call_on_fresh_thread


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


def _deep(levels: int) -> int:
    """The stack depth inside the fresh thread, called ``levels`` frames deeper than here."""
    if levels:
        return _deep(levels - 1)
    return call_on_fresh_thread(_depth, name="test")


def test_the_call_starts_a_fresh_stack_however_deep_the_caller() -> None:
    # A Celery task runs ~40 frames deep; TensorFlow's time per step grows with the depth.
    assert _deep(60) == _deep(0) <= 5  # threading's own three, ours, the function


def test_it_runs_on_another_thread_and_returns_the_result() -> None:
    def where(a: int, b: int) -> tuple[str, int]:
        return threading.current_thread().name, a + b

    assert call_on_fresh_thread(where, 2, 3, name="job-1234") == ("job-1234", 5)


def test_its_exception_is_raised_in_the_caller() -> None:
    def fail() -> None:
        raise KeyError("no such job")

    with pytest.raises(KeyError, match="no such job"):
        call_on_fresh_thread(fail, name="test")


def test_a_base_exception_reaches_the_caller_too() -> None:
    def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        call_on_fresh_thread(leave, name="test")
