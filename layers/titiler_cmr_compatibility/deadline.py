"""A check's time limit, as seen from inside it: every network call is cut to the time left.

(The predecessor used `signal.alarm`, which only works in a process's main thread: in Lithops and
thread pools its timeouts never fired. The hard stop is `sandbox`'s: the check's process is
killed if it outlives its deadline.)
"""

from __future__ import annotations

import time


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
