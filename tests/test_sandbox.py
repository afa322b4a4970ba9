"""The child process a check runs in: its value, its progress, its time limit, its memory ceiling,
its crashes — and the parent untouched by any of them."""

from __future__ import annotations

import ctypes
import faulthandler
import os
import threading
import time

import numpy as np
import pytest

from titiler_cmr_compatibility import sandbox
from titiler_cmr_compatibility.sandbox import REPORT_GRACE_SECONDS, ForkUnsafe, run_isolated


def test_the_value_comes_back_from_another_process():
    outcome = run_isolated(lambda report: {"pid": os.getpid()}, seconds=10)
    assert outcome.value["pid"] != os.getpid()
    assert not outcome.timed_out and outcome.ended == "exited with code 0"


def test_a_child_past_its_time_is_stopped_and_its_last_progress_kept():
    def slow(report):
        report("opening")
        time.sleep(60)

    started = time.monotonic()
    outcome = run_isolated(slow, seconds=1)
    assert time.monotonic() - started < 1 + REPORT_GRACE_SECONDS + 1
    assert outcome.timed_out and outcome.value is None
    assert outcome.progress == "opening"
    assert outcome.ended == "was stopped at its time limit"


def test_a_crash_stays_in_the_child():
    def crash(report):
        report("reading")
        faulthandler.disable()  # pytest's crash dump would be the child's noise in this output
        ctypes.string_at(0)  # a segfault, as a C library's bug would cause

    outcome = run_isolated(crash, seconds=10)
    assert outcome.value is None and not outcome.timed_out
    assert outcome.progress == "reading"
    assert outcome.ended == "was killed by SIGSEGV"


def test_an_allocation_past_the_budget_fails_inside_the_child():
    def greedy(report):
        try:
            block = np.ones(2 * 1024**3, dtype=np.uint8)  # 2 GiB, touched
        except MemoryError:
            return "MemoryError"
        return f"allocated {block.nbytes}"

    outcome = run_isolated(greedy, seconds=30, memory_bytes=256 * 1024**2)
    assert outcome.value == "MemoryError"
    # The same allocation is allowed within a larger budget: the ceiling is what stopped it.
    small = run_isolated(lambda report: np.ones(64 * 1024**2, dtype=np.uint8).sum(), seconds=30,
                         memory_bytes=256 * 1024**2)  # fmt: skip
    assert small.value == 64 * 1024**2


def test_an_exception_in_the_child_is_how_it_ended():
    def fails(report):
        raise RuntimeError("boom")

    outcome = run_isolated(fails, seconds=10)
    assert outcome.value is None and outcome.ended == "exited with code 70"


def test_children_forked_from_many_threads_at_once_all_report():
    results: dict[int, object] = {}

    def one(index: int) -> None:
        results[index] = run_isolated(lambda report: index * 2, seconds=20).value

    threads = [threading.Thread(target=one, args=(index,)) for index in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {index: index * 2 for index in range(12)}


def test_a_process_that_started_obstore_refuses_to_fork(monkeypatch):
    monkeypatch.setattr(sandbox, "_fork_unsafe_reason", "it has started obstore's runtime")
    with pytest.raises(ForkUnsafe, match="obstore"):
        run_isolated(lambda report: 1, seconds=5)
