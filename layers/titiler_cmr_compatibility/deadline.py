"""Time limits that work in threads and worker processes alike.

The predecessor used `signal.alarm`, which only works in a process's main thread: in Lithops and
thread pools its timeouts never fired. Here the check runs in a daemon thread that the caller
stops waiting for at the deadline, and every network call inside it is cut to the time left.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CheckTimeout(Exception):
    """The check's time ran out."""


class Deadline:
    """A point in monotonic time that network calls shrink their own timeouts to."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def check(self) -> None:
        if self.expired():
            raise CheckTimeout(f"the check ran past its {self.seconds:g} s limit")

    def cap(self, timeout: float) -> float:
        """`timeout`, shortened to the time left (never zero: a request needs some time to fail)."""
        self.check()
        return max(0.05, min(timeout, self.remaining()))


def run_with_timeout(
    function: Callable[[], T], seconds: float, on_timeout: Callable[[], T]
) -> T:
    """Run `function` in a daemon thread; return `on_timeout()` if it has not finished in time.

    A thread cannot be killed, so one that overruns is abandoned; the Deadline it was given makes
    its next network call fail promptly, so it does not keep working for long.
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # re-raised in the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=target, name="compatibility-check", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return on_timeout()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
