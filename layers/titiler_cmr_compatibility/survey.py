"""A whole survey: markers, a Lithops fan-out of checks in waves, a reprocess loop, the report.

The storage layout (local directory or S3, same keys; `<run>` is the run id, e.g. `2026-11`):

    <run>/survey.json                              how the run was set up (first setup wins)
    <run>/setup.json                               the latest setup: how many collections it covers
    <run>/collections/<concept-id>/.marker         the compact collection record the check needs
    <run>/collections/<concept-id>/result.json     the current result
    <run>/collections/<concept-id>/tile.png        tile 0/0/0 as the check rendered it (compatible
                                                   ones; written before result.json)
    <run>/collections/<concept-id>/attempts/<n>.json   attempt n: its wave and call, written when
                                                   the wave is launched (a failed call adds why)
    <run>/collections/<concept-id>/history/<n>.json    a result set aside to be checked again
                                                   (after attempt n): nothing is overwritten
    <run>/waves/<wave>.json                        a wave: its calls (batches of concept id and
                                                   attempt), settings and deadline
    <run>/waves/<wave>/started/<call>              call <call> was claimed by a worker (when), or
                                                   given up by a local survey before any worker did
    <run>/waves/<wave>/done/<call>                 call <call> finished its batch
    <run>/report/report.json                       the compiled report: {"summary", "rows"}
    <run>/report/report.csv, report.parquet        the same rows as tables
    <run>/report/report.html                       the page: headline, charts, every row, changes
    <run>/report/compatible_datasets.csv           what a titiler-cmr user needs per compatible one
    <run>/report/changes.json                      comparisons with other runs or tables (diff.py)

The layout, not Lithops futures, is the source of truth: a collection is pending while it has
a marker and no result, so a killed survey resumes by running again with the same run id. An
attempt is counted when its wave is launched, so a call that never started still uses one up.
A worker claims its call before checking anything, so a call delivered twice (Lambda retries
asynchronous invocations) checks its collections once, and a call the local survey gave up on
before it started checks nothing when it starts late.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import math
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .deadline import Deadline
from .result import CheckResult, Reason
from .settings import Settings
from .storage import Storage, open_storage
from .umm import BadRecord, CollectionInfo, is_collection_id

log = logging.getLogger(__name__)

MARKER = ".marker"
RESULT = "result.json"
TILE = "tile.png"
REPORT = "report/report.json"
PAGE = "report/report.html"
CHANGES = "report/changes.json"
COMPATIBLE = "report/compatible_datasets.csv"
SETUP = "setup.json"
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BATCH_SIZE = 4  # collections per Lithops call
# Calls per map(). With Lithops' remote invoker a map() is one Lambda Invoke, and each call adds
# ~95 bytes (its pickled index) to the payload: 1,000 calls made 98,497 bytes against Lambda's
# 256 KB for asynchronous invocations (bench/scale.py measures it; tests/support/statemachine.py
# refuses more, as Lambda would).
CALLS_PER_MAP = 1000
# The reasons that say "try again later" rather than anything about the collection: what a
# re-run of the serverless survey checks again unless told otherwise.
TRANSIENT_REASONS = (Reason.TIMEOUT, Reason.CMR_ERROR, Reason.DATA_UNAVAILABLE, Reason.PROCESSING_FAILED)
_IO_THREADS = 32
# How often a local wave looks at its calls: a listing of a local folder, or two S3 lists.
_POLL_SECONDS = 0.2
# What the survey writes as a call's claim when it gives the call up before any worker started it.
GIVEN_UP = b"given up"


def default_run_id() -> str:
    """Surveys of different months do not mix; a re-run in the same month continues."""
    return datetime.now(UTC).strftime("%Y-%m")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def worker_settings(settings, access_type: str | None = None) -> dict[str, Any]:
    """What workers need to know (and how long the survey gives each call), and nothing secret:
    they read credentials themselves (from their environment, or SSM parameters whose names,
    never values, are passed on)."""
    values: dict[str, Any] = {
        "cmr_url": settings.cmr_url,
        "access_type": access_type or settings.access_type,
        "check_timeout": settings.check_timeout,
        "worker_overhead": settings.worker_overhead,
        "start_grace": settings.start_grace,
        "titiler_endpoint": settings.titiler_endpoint,
        "data_request_timeout": settings.data_request_timeout,
        "check_memory_mb": settings.check_memory_mb,
        "token_hosts": settings.token_hosts,
        "allow_loopback_hosts": settings.allow_loopback_hosts,
    }
    for name in ("earthdata_token_parameter", "earthdata_username_parameter", "earthdata_password_parameter"):
        if getattr(settings, name):
            values[name] = getattr(settings, name)
    return values


@dataclass
class Scan:
    """What one listing of `<run>/collections/` shows. `attempts` counts the attempts since the
    collection's result was last set aside for a retry; `last_attempt` is the highest attempt
    number ever used (attempt files are numbered across retries, so none is overwritten)."""

    markers: set[str] = field(default_factory=set)
    results: set[str] = field(default_factory=set)
    attempts: Counter = field(default_factory=Counter)
    last_attempt: Counter = field(default_factory=Counter)
    set_aside: Counter = field(default_factory=Counter)  # the last attempt before the latest retry

    @property
    def pending(self) -> list[str]:
        return sorted(self.markers - self.results)

    def launchable(self, max_attempts: int | None = None) -> list[tuple[str, int]]:
        """(concept id, next attempt number) of every pending collection with attempts left (all
        pending ones if `max_attempts` is None), those tried least first, so a first pass
        finishes before retries start."""
        ready = [cid for cid in self.pending if max_attempts is None or self.attempts[cid] < max_attempts]
        ready.sort(key=lambda cid: (self.attempts[cid], cid))
        return [(cid, self.last_attempt[cid] + 1) for cid in ready]


@dataclass
class SetupStats:
    listed: int = 0  # records CMR listed: created + existing + skipped
    created: int = 0
    existing: int = 0
    skipped: Counter = field(default_factory=Counter)  # records that cannot be markers, by reason
    listing_seconds: float = 0.0  # CMR paging and reading the records
    writing_seconds: float = 0.0
    seconds: float = 0.0

    def describe_skipped(self) -> str:
        """'2 bad records skipped (invalid_concept_id 1, no_meta_or_umm 1)', or '' if none was."""
        if not self.skipped:
            return ""
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(self.skipped.items()))
        return f"{self.skipped.total():,} bad records skipped ({reasons})"


class SetupTimeout(Exception):
    """Setup ran past its time limit (the `setup_timeout` setting)."""


class SetupDeadline(Deadline):
    """Setup's time limit: its CMR requests are cut to the time left, and passing it raises
    SetupTimeout (a check's Deadline raises CheckTimeout, whose message speaks of the check)."""

    def check(self) -> None:
        if self.expired():
            raise SetupTimeout(f"setup ran past its {self.seconds:g} s limit (setting setup_timeout); the markers "
                               "written so far stay, and running setup again continues")  # fmt: skip


@dataclass
class Wave:
    """One launched wave: its id and its calls (each a batch of (concept id, attempt)). `futures`
    has one Lithops future per sent call; `unsent` says why the others were not sent."""

    id: str
    calls: list[list[tuple[str, int]]]
    deadline: float
    futures: dict[int, Any] = field(default_factory=dict)
    unsent: dict[int, str] = field(default_factory=dict)

    @property
    def collections(self) -> int:
        return sum(len(batch) for batch in self.calls)


@dataclass
class WaveStats:
    submitted: int = 0
    calls: int = 0
    failed_calls: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class CallBudget:
    """How long a local wave waits for each of its calls: `start_grace` to start while none of
    the wave's calls runs (Lithops localhost runs a few calls at a time and queues the others),
    then its checks' time plus `overhead` to finish, the same limit Lithops enforces."""

    check_timeout: float
    overhead: float
    start_grace: float

    @classmethod
    def of(cls, settings_values: dict[str, Any]) -> CallBudget:
        """From the workers' settings (`worker_settings`), the defaults for what they leave out."""
        names = ("check_timeout", "worker_overhead", "start_grace")
        return cls(*(settings_values.get(name, Settings.model_fields[name].default) for name in names))

    def seconds(self, collections: int) -> float:
        return collections * self.check_timeout + self.overhead


def new_wave_id(now: float) -> str:
    """Sortable by launch time, unique without a counter (re-runs start their own waves)."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Survey:
    """One run of the survey in one storage."""

    def __init__(self, storage: Storage, run: str):
        if not run or "/" in run or run.startswith("."):
            raise ValueError(f"invalid run id {run!r}")
        self.storage = storage
        self.run = run

    def key(self, concept_id: str, name: str) -> str:
        # Setup skips such records already; no caller can make one a path of another collection.
        if not is_collection_id(concept_id):
            raise ValueError(f"{concept_id!r:.80} is not a CMR collection concept id")
        return f"{self.run}/collections/{concept_id}/{name}"

    def wave_key(self, wave: str, name: str | None = None) -> str:
        return f"{self.run}/waves/{wave}.json" if name is None else f"{self.run}/waves/{wave}/{name}"

    # Reading the state

    def scan(self) -> Scan:
        scan = Scan()
        numbers: dict[str, list[int]] = {}
        prefix = f"{self.run}/collections/"
        for key in self.storage.list(prefix):
            parts = key[len(prefix) :].split("/")
            if not is_collection_id(parts[0]):
                continue  # not a collection's folder (nothing this code writes)
            if len(parts) == 2 and parts[1] == MARKER:
                scan.markers.add(parts[0])
            elif len(parts) == 2 and parts[1] == RESULT:
                scan.results.add(parts[0])
            elif len(parts) == 3 and parts[1] in ("attempts", "history") and parts[2].endswith(".json"):
                number = parts[2].removesuffix(".json")
                if not number.isdigit():
                    continue
                if parts[1] == "attempts":
                    numbers.setdefault(parts[0], []).append(int(number))
                else:
                    scan.set_aside[parts[0]] = max(scan.set_aside[parts[0]], int(number))
        for concept_id, used in numbers.items():
            scan.last_attempt[concept_id] = max(used)
            scan.attempts[concept_id] = sum(n > scan.set_aside[concept_id] for n in used)
        return scan

    def read_json(self, key: str) -> dict | None:
        body = self.storage.read(key)
        return json.loads(body) if body else None

    def read_results(self, concept_ids: Iterable[str]) -> list[dict]:
        return [result for result in self._each(lambda cid: self.read_json(self.key(cid, RESULT)), concept_ids) if result]

    def _each(self, function: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        with ThreadPoolExecutor(_IO_THREADS) as pool:
            return list(pool.map(function, items))

    # Phases

    def setup(
        self,
        records: Iterable[dict],
        manifest: dict[str, Any] | None = None,
        on_progress: Callable[[int], None] | None = None,
        deadline: Deadline | None = None,
    ) -> SetupStats:
        """One marker per collection record, written in parallel once the listing is done.
        Idempotent: existing markers (and their results) are left alone, not even rewritten.
        A record that cannot be a marker is skipped and counted by reason; `deadline` (a
        SetupDeadline, also given to the CMR client listing `records`) stops the writes too."""
        started = time.monotonic()
        stats = SetupStats()
        existing = self.scan().markers
        new: dict[str, CollectionInfo] = {}
        for item in records:
            stats.listed += 1
            try:
                info = CollectionInfo.from_umm(item)
            except BadRecord as error:
                stats.skipped[str(error.reason)] += 1
                log.info("setup skipped a record: %s", error)
                continue
            if info.concept_id in existing or info.concept_id in new:
                stats.existing += 1
            else:
                new[info.concept_id] = info
        stats.listing_seconds = time.monotonic() - started
        self.storage.create(f"{self.run}/survey.json", json.dumps({"created_at": _now(), **(manifest or {})}).encode())

        def write(info: CollectionInfo) -> bool:
            if deadline:
                deadline.check()
            created = self.storage.create(self.key(info.concept_id, MARKER), json.dumps(info.to_marker()).encode())
            if on_progress:
                on_progress(1)
            return created

        writing = time.monotonic()
        created = sum(self._each(write, new.values()))
        stats.created += created
        # The survey's size as of this setup, for pages made where no listing is affordable.
        if created or self.read_json(f"{self.run}/{SETUP}") is None:
            self.storage.write(f"{self.run}/{SETUP}", json.dumps(
                {"collections": len(existing) + len(new), "written_at": _now(), **(manifest or {})}).encode())
        stats.existing += len(new) - created  # written meanwhile by another setup
        stats.writing_seconds = time.monotonic() - writing
        stats.seconds = time.monotonic() - started
        return stats

    def launch_wave(
        self,
        work: Sequence[tuple[str, int]],
        executor,
        settings_values: dict[str, Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        worker: Callable | None = None,
        calls_per_map: int | None = None,
        deadline_seconds: float = 0.0,
        now: float | None = None,
        call_seconds: float | None = None,
    ) -> Wave:
        """Record a wave (its calls and one attempt per collection), then send one Lithops call
        per batch, `calls_per_map` calls per `map()` (each map with a remote invoker is one
        Lambda Invoke, whose payload grows with its calls). Does not wait for the calls. Lithops
        stops a call after `call_seconds` (default: its configured execution timeout). A map
        that Lithops fails to send leaves its calls in `unsent`, with the error.

        A call's data is only its index: the batch and the settings are in the wave's record,
        which the worker reads, so what travels in an Invoke stays small at any survey size."""
        now = time.time() if now is None else now
        wave = Wave(new_wave_id(now), [list(work[i : i + batch_size]) for i in range(0, len(work), batch_size)],
                    deadline=now + deadline_seconds)  # fmt: skip
        if not wave.calls:
            return wave
        record = {"wave": wave.id, "launched_at": _now(), "deadline": wave.deadline, "settings": settings_values,
                  "calls": wave.calls}  # fmt: skip
        self.storage.write(self.wave_key(wave.id), json.dumps(record).encode())

        def count_attempt(item: tuple[int, tuple[str, int]]) -> None:
            call, (concept_id, attempt) = item
            launched = {"attempt": attempt, "wave": wave.id, "call": call, "launched_at": record["launched_at"]}
            self.storage.create(self.key(concept_id, f"attempts/{attempt}.json"), json.dumps(launched).encode())

        self._each(count_attempt, [(call, item) for call, batch in enumerate(wave.calls) for item in batch])
        function = functools.partial(worker or check_call, self.storage.location, self.run, wave.id)
        step = calls_per_map or CALLS_PER_MAP
        timeout = math.ceil(call_seconds) if call_seconds else None
        for first in range(0, len(wave.calls), step):
            calls = list(range(first, min(first + step, len(wave.calls))))
            try:
                # include_modules=None: workers import this library (installed in their image or
                # environment); nothing of it travels with the job.
                wave.futures.update(zip(calls, executor.map(function, calls, include_modules=None, timeout=timeout)))
            except Exception as error:  # whatever Lithops raises, the calls' attempts are counted
                log.warning("wave %s: Lithops did not send calls %d-%d: %s", wave.id, calls[0], calls[-1], _describe(error))
                wave.unsent.update(dict.fromkeys(calls, f"Lithops did not send the call: {_describe(error)}"))
        return wave

    def wave_progress(self, wave: str) -> int:
        """How many calls of the wave have finished (one listing per 1,000 calls)."""
        return len(self._calls_marked(wave, "done"))

    def _calls_marked(self, wave: str, mark: str) -> set[int]:
        """The calls of the wave with a `started` or `done` marker."""
        prefix = self.wave_key(wave, f"{mark}/")
        return {int(key[len(prefix) :]) for key in self.storage.list(prefix)}

    def process(
        self,
        work: Sequence[tuple[str, int]],
        executor,
        settings_values: dict[str, Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        worker: Callable | None = None,
        show_progress: bool = False,
    ) -> WaveStats:
        """One wave, each call waited for on its own budget (`CallBudget`): each call writes the
        results of its collections. A call that fails, never starts or runs past its budget
        leaves why in the attempt records of the collections it did not finish."""
        started = time.monotonic()
        budget = CallBudget.of(settings_values)
        wave = self.launch_wave(work, executor, settings_values, batch_size, worker,
                                call_seconds=budget.seconds(batch_size))  # fmt: skip
        stats = WaveStats(submitted=len(work), calls=len(wave.calls))
        failed = self._wait_for_calls(wave, executor, budget, show_progress) if wave.calls else {}
        stats.failed_calls = len(failed)
        for call, error in failed.items():
            for concept_id, attempt in wave.calls[call]:
                if self.storage.read(self.key(concept_id, RESULT)) is None:
                    key = self.key(concept_id, f"attempts/{attempt}.json")
                    record = {**(self.read_json(key) or {"attempt": attempt}), "failed_at": _now(), "error": error}
                    self.storage.write(key, json.dumps(record).encode())
        stats.seconds = time.monotonic() - started
        return stats

    def _wait_for_calls(self, wave: Wave, executor, budget: CallBudget, show_progress: bool) -> dict[int, str]:
        """Wait until every call of the wave is done, failed or given up; returns the failed and
        given-up calls with why. Lithops' futures report a call's error (a crash, its own
        timeout); the wave's markers say which calls started and finished. So a call whose
        runner never started, or that Lithops never reports, still ends within its budget, and
        nothing Lithops raises ends the survey."""
        from lithops.wait import ALWAYS
        from tqdm import tqdm

        failed = dict(wave.unsent)
        waiting = set(wave.futures)
        given_up = False
        running: dict[int, float] = {}  # call: when its claim was first seen
        quiet_since = time.monotonic()  # when a call of the wave last started or ended
        lithops_error = ""
        with tqdm(total=len(wave.calls), initial=len(failed), unit="call", disable=None if show_progress else True,
                  file=sys.stderr) as bar:  # fmt: skip
            while waiting:
                if not lithops_error:
                    try:
                        executor.wait([wave.futures[call] for call in waiting], throw_except=False,
                                      return_when=ALWAYS, show_progressbar=False)  # fmt: skip
                    except Exception as error:  # from here on the markers and budgets decide alone
                        lithops_error = _describe(error)
                        log.warning("wave %s: Lithops failed while reporting its calls: %s", wave.id, lithops_error)
                # Listed after asking Lithops: a call it reports as finished has its done marker.
                done, claimed = self._calls_marked(wave.id, "done"), self._calls_marked(wave.id, "started")
                now = time.monotonic()
                for call in sorted(waiting - done):
                    seconds = budget.seconds(len(wave.calls[call]))
                    if not lithops_error and wave.futures[call].error:
                        failed[call] = _future_error(wave.futures[call])
                    elif call in claimed and call not in running:
                        running[call] = quiet_since = now
                    elif call in running and now - running[call] > seconds:
                        failed[call] = f"its worker did not finish the call within its budget of {seconds:g} s"
                        given_up = True
                if waiting & (done | failed.keys()):
                    quiet_since = now
                    waiting -= done | failed.keys()
                if waiting and not waiting & running.keys() and now - quiet_since > budget.start_grace:
                    # No call of the wave runs, so a worker would be free: these are not queued,
                    # they are lost. The claim keeps one that starts late from checking anything.
                    for call in sorted(waiting):
                        if self.storage.create(self.wave_key(wave.id, f"started/{call}"), GIVEN_UP + b" " + _now().encode()):
                            failed[call] = f"no worker started the call within {budget.start_grace:g} s" + (
                                f" (Lithops: {lithops_error})" if lithops_error else "")  # fmt: skip
                            waiting.discard(call)
                            given_up = True
                bar.update(len(wave.calls) - len(waiting) - bar.n)
                if waiting:
                    time.sleep(_POLL_SECONDS)
        if given_up:
            # What is left of the wave's jobs would hold the executor (localhost runs one job
            # after another): stopped as Lithops stops the jobs of a wait that failed.
            try:
                jobs = {future.job_key for future in wave.futures.values()}
                executor.compute_handler.clear(jobs, exception=TimeoutError("given up by the survey"))
            except Exception as error:
                log.warning("wave %s: Lithops did not stop its jobs: %s", wave.id, _describe(error))
        return failed

    def finalize(self, max_attempts: int) -> int:
        """A terminal result for every collection still pending after its last attempt, saying
        what is known of that attempt: no collection is ever silently missing from the results."""
        scan = self.scan()
        exhausted = [cid for cid in scan.pending if scan.attempts[cid] >= max_attempts]

        def terminal(concept_id: str) -> bool:
            marker = self.read_json(self.key(concept_id, MARKER)) or {"concept_id": concept_id, "provider": ""}
            last = self.read_json(self.key(concept_id, f"attempts/{scan.last_attempt[concept_id]}.json")) or {}
            result = _result_from_marker(CollectionInfo.from_marker(marker)).fail(
                Reason.PROCESSING_FAILED,
                f"still unchecked after {scan.attempts[concept_id]} attempts; last attempt: {self._attempt_outcome(last)}",
            )
            result.checked_at = _now()
            # create, not write: a real result that lands meanwhile is worth more than this one
            return self.storage.create(self.key(concept_id, RESULT), json.dumps(result.to_record()).encode())

        return sum(self._each(terminal, exhausted))

    def _attempt_outcome(self, record: dict) -> str:
        """What is known of an attempt that left no result: its call's error, or whether its
        worker ever claimed the call."""
        if record.get("error"):
            return record["error"]
        if "wave" not in record or "call" not in record:
            return "no record of it"
        claimed = self.storage.read(self.wave_key(record["wave"], f"started/{record['call']}"))
        if claimed and not claimed.startswith(GIVEN_UP):
            return (f"its worker started the batch at {claimed.decode()} and never finished this check (it was "
                    "killed, ran out of memory or time)")  # fmt: skip
        return f"launched at {record['launched_at']}, but no worker ever started it"

    def requeue(self, reasons: Iterable[str], concept_ids: Iterable[str] | None = None) -> list[str]:
        """Set aside the current result of every collection whose reason is one of `reasons`
        (in `history/<last attempt>.json`), so it is pending again with fresh attempts. The
        report keeps showing that result until the new one lands. Returns those concept ids."""
        wanted = {str(reason) for reason in reasons}
        if not wanted:
            return []
        scan = self.scan()
        candidates = scan.results & set(concept_ids) if concept_ids is not None else scan.results
        report = self.load_report() or {"rows": {}}
        # The report (one read) names the candidates; each is confirmed from its result.json, so
        # a report that lags behind its results never requeues a collection by an old reason.
        named = {cid for cid in candidates if report["rows"].get(cid, {}).get("incompatible_reason") in wanted}
        unreported = candidates - set(report["rows"])

        def requeue_one(concept_id: str) -> str | None:
            body = self.storage.read(self.key(concept_id, RESULT))
            if body is None or json.loads(body).get("incompatible_reason") not in wanted:
                return None
            self.storage.create(self.key(concept_id, f"history/{scan.last_attempt[concept_id]}.json"), body)
            self.storage.delete(self.key(concept_id, RESULT))
            return concept_id

        return sorted(cid for cid in self._each(requeue_one, sorted(named | unreported)) if cid)

    def run_loop(
        self,
        executor,
        settings_values: dict[str, Any],
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        worker: Callable | None = None,
        only: set[str] | None = None,
        on_wave: Callable[[int, int], None] | None = None,
        show_progress: bool = False,
    ) -> list[WaveStats]:
        """Process, then reprocess while collections are pending and have attempts left."""
        waves = []
        for _ in range(max_attempts):
            work = [item for item in self.scan().launchable(max_attempts) if only is None or item[0] in only]
            if not work:
                break
            if on_wave:
                on_wave(len(waves) + 1, len(work))
            waves.append(self.process(work, executor, settings_values, batch_size, worker, show_progress))
        self.finalize(max_attempts)
        return waves

    def reprocess_reason(
        self,
        reason: str,
        executor,
        settings_values: dict[str, Any],
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool = False,
    ) -> list[WaveStats]:
        """Check again every collection whose result has this reason, with fresh attempts (the
        earlier results are kept in each collection's history)."""
        again = self.requeue([reason])
        if not again:
            return []
        return self.run_loop(executor, settings_values, max_attempts, batch_size, only=set(again),
                             show_progress=show_progress)  # fmt: skip

    def status(self) -> dict[str, Any]:
        """Totals, done, pending, attempts, and counts by reason (compatible counted as one)."""
        scan = self.scan()
        reasons = Counter(r.get("incompatible_reason") or "compatible" for r in self.read_results(sorted(scan.results)))
        return {
            "run": self.run,
            "collections": len(scan.markers),
            "done": len(scan.results & scan.markers),
            "pending": len(scan.pending),
            "compatible": reasons.get("compatible", 0),
            "attempts": sum(scan.attempts.values()),
            "by_reason": dict(reasons.most_common()),
        }

    def query(self, compatible: bool | None = None, reason: str | None = None) -> list[str]:
        """Concept ids whose result is (in)compatible and/or has this reason."""
        return sorted(
            r["collection_concept_id"]
            for r in self.read_results(sorted(self.scan().results))
            if (compatible is None or bool(r.get("tiling_compatible")) == compatible)
            and (reason is None or r.get("incompatible_reason") == reason)
        )

    # The report

    def compile_report(self, compare_with: Sequence[str | Path] = ()) -> tuple[dict[str, Any], int]:
        """Rebuild the report from every result.json and write it with all its views (tables,
        page, compatible datasets); first compare it with `compare_with` (runs of this store or
        report files), if given, for the page's changes. Returns the report and bytes written."""
        from .report import dump_report, merge_rows, new_report

        scan = self.scan()
        report = new_report(self.run)
        merge_rows(report["rows"], self.read_results(sorted(scan.results)))
        body = dump_report(report)
        self.storage.write(f"{self.run}/{REPORT}", body)
        if compare_with:
            changes = [self.compare(source, report["rows"]).as_dict() for source in compare_with]
            self.storage.write(f"{self.run}/{CHANGES}", json.dumps(changes).encode())
        return report, len(body) + self.write_views(report, collections=len(scan.markers))

    def write_views(self, report: dict[str, Any], tables: bool = True, collections: int | None = None) -> int:
        """Write the report's page and (with `tables`) its CSV, Parquet and compatible datasets
        beside report.json; returns the bytes written."""
        from .page import build_page
        from .report import compatible_datasets, export_bytes

        views = {PAGE: build_page(report, self.page_context(collections))}
        if tables:
            views |= {f"report/report{extension}": export_bytes(report["rows"], extension) for extension in (".csv", ".parquet")}
            views[COMPATIBLE] = compatible_datasets(report["rows"])
        for name, body in views.items():
            self.storage.write(f"{self.run}/{name}", body)
        return sum(len(body) for body in views.values())

    def page_context(self, collections: int | None = None):
        """What the page says beyond the rows: the survey's size (the latest setup's, unless
        given), its CMR, and the stored comparisons."""
        from .page import PageContext

        setup = self.read_json(f"{self.run}/{SETUP}") or {}
        return PageContext(collections=collections if collections is not None else setup.get("collections"),
                           cmr_url=setup.get("cmr_url"), changes=self.read_json(f"{self.run}/{CHANGES}") or [])  # fmt: skip

    def compare(self, source: str | Path, rows: dict[str, dict] | None = None):
        """This run's rows (or `rows`) against `source`: a report file (.json/.csv/.parquet, e.g.
        the earlier survey's table) or another run of this store."""
        from .diff import compare

        before, name = rows_of(self.storage, source)
        return compare(before, rows if rows is not None else rows_of(self.storage, self.run)[0], name)

    def load_report(self) -> dict[str, Any] | None:
        return self.read_json(f"{self.run}/{REPORT}")


def rows_of(storage: Storage, source: str | Path) -> tuple[dict[str, dict], str]:
    """The report rows of `source` (a report file, or a run of `storage`) and how to name it."""
    from .diff import read_table

    path = Path(source)
    if path.suffix.lower() in (".json", ".csv", ".parquet") and path.exists():
        return read_table(path), path.name
    report = Survey(storage, str(source)).load_report()
    if report is None:
        raise ValueError(f"{source}: neither a report file nor a run with a report in {storage.location}")
    return report["rows"], f"run {source}"


def _result_from_marker(info: CollectionInfo) -> CheckResult:
    return CheckResult(
        collection_concept_id=info.concept_id,
        collection_short_name_and_version=info.short_name_and_version,
        data_center=info.data_center if info.provider else None,
        format=info.format,
        format_family=info.format_family.value if info.format_family else None,
        num_granules=info.granule_count,
        processing_level=info.processing_level,
    )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _future_error(future) -> str:
    """What a failed Lithops call reported (its exception), or that it died without a word."""
    exception = getattr(future, "_exception", None)
    if isinstance(exception, tuple) and len(exception) >= 2 and isinstance(exception[1], BaseException):
        return _describe(exception[1])
    status = getattr(future, "_call_status", None) or {}
    if status.get("exception"):
        return str(status.get("exc_info") or status.get("exception"))
    return "the worker call failed without reporting an error (killed, out of memory or timed out)"


def check_call(
    location: str, run: str, wave: str, call: int, check: Callable[..., CheckResult] | None = None
) -> dict[str, Any]:
    """The Lithops worker: check each collection of call `call` of the wave, writing each
    result.json, then mark the call done.

    Runs in another process (or a Lambda); it reopens the storage from its location, reads its
    batch and settings from the wave's record, and credentials from its own environment, never
    from the payload. A second delivery of the same call finds it claimed and checks nothing."""
    survey = Survey(open_storage(location), run)
    # Claimed before the slow imports: the survey gives up on calls that do not start in time.
    if not survey.storage.create(survey.wave_key(wave, f"started/{call}"), _now().encode()):
        return {"call": call, "skipped": "already claimed by an earlier delivery of this call, or given up"}
    from .auth import EarthdataAuth
    from .check import check_collection

    record = survey.read_json(survey.wave_key(wave))
    if record is None:
        raise RuntimeError(f"wave {wave} of run {run} has no record in {location}")
    settings = Settings(**record["settings"])
    auth = EarthdataAuth(settings)
    checked = []
    for concept_id, attempt in record["calls"][call]:
        marker = survey.read_json(survey.key(concept_id, MARKER))
        if marker is None:
            continue
        result = (check or check_collection)(concept_id, collection=CollectionInfo.from_marker(marker),
                                             settings=settings, auth=auth)  # fmt: skip
        if result.tile_png:  # first: result.json's arrival is what the aggregator acts on
            survey.storage.write(survey.key(concept_id, TILE), result.tile_png)
        survey.storage.write(survey.key(concept_id, RESULT), json.dumps(result.to_record()).encode())
        checked.append({"collection_concept_id": concept_id, "incompatible_reason": result.incompatible_reason})
    survey.storage.write(survey.wave_key(wave, f"done/{call}"), json.dumps(checked).encode())
    return {"call": call, "checked": checked}


# Lithops keeps its local working files (the copy of its own package that localhost runners
# import, job files, localhost storage) in `$TMPDIR/lithops-$USER`, fixed when it is imported and
# shared by every process of the user: another survey (or a test run) starting an executor copies
# the package again under this one's runners, which then fail to import (`No module named
# 'lithops.libs'`) and never report. No configuration key moves the folder; TMPDIR does, for this
# process and the runners it starts, if set before Lithops is imported.
_LITHOPS_LOCK = threading.Lock()


def use_own_lithops_folder() -> None:
    """Give this process a Lithops working folder of its own, removed when it exits; nothing if
    Lithops is already imported (its folder is then fixed, e.g. by the test suite's conftest)."""
    with _LITHOPS_LOCK:
        if "lithops" in sys.modules:
            return
        folder = tempfile.mkdtemp(prefix="titiler-cmr-compat-lithops-")
        os.environ["TMPDIR"] = tempfile.tempdir = folder
        # Registered before Lithops' own exit hooks, so it runs after them.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)


def lithops_executor(kind: str | None = None, config_file: str | Path | None = None):
    """A Lithops FunctionExecutor from `config_file` (lithops.yaml) if given, with `kind`
    (localhost or aws_lambda) overriding its backend; localhost when neither says. Use it as a
    context manager: leaving it stops the local job processes still running."""
    use_own_lithops_folder()
    import lithops
    import yaml

    config: dict[str, Any] = yaml.safe_load(Path(config_file).read_text()) if config_file else {}
    config.setdefault("lithops", {})
    backend = kind or config["lithops"].get("backend") or "localhost"
    config["lithops"]["backend"] = backend
    if backend == "localhost":
        config["lithops"]["storage"] = "localhost"
        # Its files go with this process's folder; Lithops' cleaner would be a detached process.
        config["lithops"]["data_cleaner"] = False
        localhost = config.setdefault("localhost", {})
        localhost.setdefault("version", 1)  # ~30-100 ms a call; version 2 costs ~0.5-1 s
        # Workers run this interpreter (Lithops' default is whatever `python` is on PATH).
        localhost.setdefault("runtime", sys.executable)
    config["lithops"].setdefault("log_level", "WARNING")
    # The first executor of a process copies Lithops' package into the folder: one executor at a
    # time, so two threads' first executors do not both copy, one under the other's runners.
    with _LITHOPS_LOCK:
        return lithops.FunctionExecutor(config=config, log_level=None)
