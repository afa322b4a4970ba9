"""Running one check in a child process of its own: a hard time limit, a memory ceiling, and a
crash that stays in the child.

A check runs other people's files through C libraries (HDF5, GDAL, zlib). In a thread of the
caller, a file could take the whole process past its memory, crash it, or leave HDF5 holding its
lock in a read at the moment the process exits (a deadlock or a segfault at exit), and a thread
cannot be stopped. A forked child can: it inherits the imported engines (no import cost), has an
address-space budget of its own, reports its progress as it goes, and is killed when its time is
up. The caller only ever sees a value, the last progress report, or how the child ended.
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe
from typing import Any

# Time a child gets past its own deadline to report what it was doing before it is killed.
REPORT_GRACE_SECONDS = 2.0
# How often a waiting parent looks whether its child has ended without a word.
_LOOK_SECONDS = 0.5


class ForkUnsafe(RuntimeError):
    """This process has used a library that a forked child cannot use (obstore's runtime)."""


# Set by the readers when this process builds an obstore store: obstore's tokio runtime does not
# survive a fork (the child's first request hangs forever), so checks must never fork from a
# process that has started it.
_fork_unsafe_reason: str | None = None


def mark_fork_unsafe(reason: str) -> None:
    global _fork_unsafe_reason
    _fork_unsafe_reason = reason


@dataclass
class Outcome:
    """How a child ended: its value, or (if it has none) the last progress it reported and why
    it stopped (`timed_out`, or `ended`, e.g. "was killed by SIGSEGV")."""

    value: Any = None
    progress: Any = None
    timed_out: bool = False
    ended: str | None = None


def run_isolated(
    function: Callable[[Callable[[Any], None]], Any], seconds: float, memory_bytes: int | None = None
) -> Outcome:
    """Call `function(report)` in a forked child; `report(x)` sends progress to this process.

    Waits at most `seconds` + REPORT_GRACE_SECONDS, then kills the child. `memory_bytes` is how
    much more writable memory the child may take than this process holds (RLIMIT_DATA), so a
    runaway allocation fails inside the child as a MemoryError or a library error.
    """
    if _fork_unsafe_reason:
        raise ForkUnsafe(f"cannot fork a check from this process: {_fork_unsafe_reason}")
    reader, writer = Pipe(duplex=False)
    # The child's collector would otherwise walk, and so copy, every page of this process's
    # objects: freezing them for the fork takes a fork-and-collect from ~320 to ~45 ms.
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        reader.close()
        _child(function, writer, memory_bytes)
    gc.unfreeze()
    writer.close()
    outcome = Outcome()
    end = time.monotonic() + seconds + REPORT_GRACE_SECONDS
    status: int | None = None
    try:
        while outcome.value is None:
            remaining = end - time.monotonic()
            if remaining <= 0:
                outcome.timed_out = True
                break
            # A child forked at the same moment by another thread may hold a copy of this pipe's
            # writing end, so its end of file can come late: look at the child itself too.
            if reader.poll(min(remaining, _LOOK_SECONDS)):
                if not _receive(reader, outcome):
                    break
            elif (status := _exit_status(pid)) is not None:
                while reader.poll(0) and _receive(reader, outcome):  # what it said before it ended
                    pass
                break
    finally:
        reader.close()
        outcome.ended = _reap(pid, status, kill=outcome.timed_out)
    return outcome


def _receive(reader: Connection, outcome: Outcome) -> bool:
    """Take one message into `outcome`; False when the child is gone."""
    try:
        kind, payload = reader.recv()
    except (EOFError, OSError):
        return False
    if kind == "value":
        outcome.value = payload
    else:
        outcome.progress = payload
    return True


def _child(function: Callable[[Callable[[Any], None]], Any], writer: Connection, memory_bytes: int | None) -> None:
    code = 0
    try:
        if memory_bytes:
            _limit_memory(memory_bytes)
        value = function(lambda progress: writer.send(("progress", progress)))
        writer.send(("value", value))
    except BaseException:  # noqa: BLE001 — the parent reports how the child ended
        code = 70
    finally:
        # No interpreter shutdown: atexit handlers and finalizers (h5py closing files through
        # Python objects) are the parent's business, not a copy's.
        os._exit(code)


def _limit_memory(extra_bytes: int) -> None:
    try:
        with open("/proc/self/status") as status:
            held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    except (OSError, StopIteration):  # not Linux: no ceiling
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = held + extra_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def _exit_status(pid: int) -> int | None:
    done, status = os.waitpid(pid, os.WNOHANG)
    return status if done else None


def _reap(pid: int, status: int | None, kill: bool) -> str:
    if status is None:
        if kill:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if kill:
        return "was stopped at its time limit"
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.WEXITSTATUS(status)}"
