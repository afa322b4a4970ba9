"""A whole survey: markers, a Lithops fan-out of checks, a reprocess loop, the compiled report.

The storage layout (local directory or S3, same keys; `<run>` is the run id, e.g. `2026-11`):

    <run>/survey.json                              how the run was set up (first setup wins)
    <run>/collections/<concept-id>/.marker         the compact collection record the check needs
    <run>/collections/<concept-id>/result.json     the check's result (newest check wins)
    <run>/collections/<concept-id>/attempts/<n>.json   one per attempt: when it started and, if
                                                   it failed without a result, why
    <run>/report/report.json                       the compiled report: {"summary", "rows"}
    <run>/report/report.csv, report.parquet        the same rows as tables

The layout, not Lithops futures, is the source of truth: a collection is pending while it has
a marker and no result, so a killed survey resumes by running again with the same run id.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .result import CheckResult, Reason
from .storage import Storage, open_storage
from .umm import CollectionInfo

log = logging.getLogger(__name__)

MARKER = ".marker"
RESULT = "result.json"
REPORT = "report/report.json"
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_BATCH_SIZE = 4  # collections per Lithops call
_IO_THREADS = 32


def default_run_id() -> str:
    """Surveys of different months do not mix; a re-run in the same month continues."""
    return datetime.now(UTC).strftime("%Y-%m")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Scan:
    """What one listing of `<run>/collections/` shows."""

    markers: set[str] = field(default_factory=set)
    results: set[str] = field(default_factory=set)
    attempts: Counter = field(default_factory=Counter)

    @property
    def pending(self) -> list[str]:
        return sorted(self.markers - self.results)


@dataclass
class SetupStats:
    listed: int = 0
    created: int = 0
    existing: int = 0
    listing_seconds: float = 0.0  # CMR paging and reading the records
    writing_seconds: float = 0.0
    seconds: float = 0.0


@dataclass
class WaveStats:
    submitted: int = 0
    calls: int = 0
    failed_calls: int = 0
    seconds: float = 0.0


class Survey:
    """One run of the survey in one storage."""

    def __init__(self, storage: Storage, run: str):
        if not run or "/" in run or run.startswith("."):
            raise ValueError(f"invalid run id {run!r}")
        self.storage = storage
        self.run = run

    def key(self, concept_id: str, name: str) -> str:
        return f"{self.run}/collections/{concept_id}/{name}"

    # Reading the state

    def scan(self) -> Scan:
        scan = Scan()
        prefix = f"{self.run}/collections/"
        for key in self.storage.list(prefix):
            parts = key[len(prefix) :].split("/")
            if len(parts) == 2 and parts[1] == MARKER:
                scan.markers.add(parts[0])
            elif len(parts) == 2 and parts[1] == RESULT:
                scan.results.add(parts[0])
            elif len(parts) == 3 and parts[1] == "attempts":
                scan.attempts[parts[0]] += 1
        return scan

    def read_json(self, key: str) -> dict | None:
        body = self.storage.read(key)
        return json.loads(body) if body else None

    def read_results(self, concept_ids: Iterable[str]) -> list[dict]:
        with ThreadPoolExecutor(_IO_THREADS) as pool:
            results = pool.map(lambda cid: self.read_json(self.key(cid, RESULT)), concept_ids)
            return [result for result in results if result]

    # Phases

    def setup(
        self,
        records: Iterable[dict],
        manifest: dict[str, Any] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> SetupStats:
        """One marker per collection record, written in parallel once the listing is done.
        Idempotent: existing markers (and their results) are left alone, not even rewritten."""
        started = time.monotonic()
        stats = SetupStats()
        existing = self.scan().markers
        new: dict[str, CollectionInfo] = {}
        for item in records:
            info = CollectionInfo.from_umm(item)
            stats.listed += 1
            if info.concept_id in existing or info.concept_id in new:
                stats.existing += 1
            else:
                new[info.concept_id] = info
        stats.listing_seconds = time.monotonic() - started
        self.storage.create(f"{self.run}/survey.json", json.dumps({"created_at": _now(), **(manifest or {})}).encode())

        def write(info: CollectionInfo) -> bool:
            created = self.storage.create(self.key(info.concept_id, MARKER), json.dumps(info.to_marker()).encode())
            if on_progress:
                on_progress(1)
            return created

        writing = time.monotonic()
        with ThreadPoolExecutor(_IO_THREADS) as pool:
            for created in pool.map(write, new.values()):
                stats.created += created
                stats.existing += not created  # written meanwhile by another setup
        stats.writing_seconds = time.monotonic() - writing
        stats.seconds = time.monotonic() - started
        return stats

    def dispatch(
        self,
        work: Sequence[tuple[str, int]],
        executor,
        settings_values: dict[str, Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        worker: Callable | None = None,
    ) -> tuple[list[list[tuple[str, int]]], list]:
        """Send one Lithops call per batch of (concept id, attempt number); do not wait."""
        batches = [list(work[i : i + batch_size]) for i in range(0, len(work), batch_size)]
        if not batches:
            return batches, []
        iterdata = [(self.storage.location, self.run, batch, settings_values) for batch in batches]
        return batches, executor.map(worker or check_batch, iterdata)

    def process(
        self,
        work: Sequence[tuple[str, int]],
        executor,
        settings_values: dict[str, Any],
        batch_size: int = DEFAULT_BATCH_SIZE,
        worker: Callable | None = None,
        show_progress: bool = False,
    ) -> WaveStats:
        """One wave: Lithops calls over batches of (concept id, attempt number); each call writes
        the results of its collections. A call that fails leaves its reason in the attempt
        records of the collections it did not finish."""
        started = time.monotonic()
        batches, futures = self.dispatch(work, executor, settings_values, batch_size, worker)
        stats = WaveStats(submitted=len(work), calls=len(batches))
        if not batches:
            return stats
        # Serially, every check of the wave at its time limit: a bound that never cuts a live
        # wave short, but ends one whose calls vanished.
        limit = settings_values.get("check_timeout", 120) * len(work) + 300
        _done, not_done = executor.wait(futures, throw_except=False, show_progressbar=show_progress, timeout=limit)
        unfinished = {id(future) for future in not_done}
        for future, batch in zip(futures, batches):
            if id(future) in unfinished:
                error = f"the call did not finish within the wave's {limit:g} s"
            elif future.error:
                error = _future_error(future)
            else:
                continue
            stats.failed_calls += 1
            for concept_id, attempt in batch:
                if self.storage.read(self.key(concept_id, RESULT)) is None:
                    record = {"attempt": attempt, "failed_at": _now(), "error": error}
                    self.storage.write(self.key(concept_id, f"attempts/{attempt}.json"), json.dumps(record).encode())
        stats.seconds = time.monotonic() - started
        return stats

    def finalize(self, max_attempts: int) -> int:
        """A terminal result for every collection still pending after its last attempt, with the
        last known error: no collection is ever silently missing from the results."""
        scan = self.scan()
        exhausted = [cid for cid in scan.pending if scan.attempts[cid] >= max_attempts]

        def terminal(concept_id: str) -> bool:
            marker = self.read_json(self.key(concept_id, MARKER)) or {"concept_id": concept_id, "provider": ""}
            last = self.read_json(self.key(concept_id, f"attempts/{scan.attempts[concept_id]}.json")) or {}
            error = last.get("error") or "no result was written (the worker may have run out of memory or time)"
            result = _result_from_marker(CollectionInfo.from_marker(marker)).fail(
                Reason.PROCESSING_FAILED, f"still unchecked after {scan.attempts[concept_id]} attempts; last error: {error}"
            )
            result.checked_at = _now()
            # create, not write: a real result that lands meanwhile is worth more than this one
            return self.storage.create(self.key(concept_id, RESULT), json.dumps(result.to_record()).encode())

        with ThreadPoolExecutor(_IO_THREADS) as pool:
            return sum(pool.map(terminal, exhausted))

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
            scan = self.scan()
            work = [
                (cid, scan.attempts[cid] + 1)
                for cid in scan.pending
                if scan.attempts[cid] < max_attempts and (only is None or cid in only)
            ]
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
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool = False,
    ) -> WaveStats:
        """Check again every collection whose result has this reason (newest result wins)."""
        scan = self.scan()
        targets = [r["collection_concept_id"] for r in self.read_results(sorted(scan.results)) if r.get("incompatible_reason") == reason]
        work = [(cid, scan.attempts[cid] + 1) for cid in targets]
        return self.process(work, executor, settings_values, batch_size, show_progress=show_progress)

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

    def compile_report(self) -> tuple[dict[str, Any], int]:
        """Rebuild the report from every result.json; write JSON, CSV and Parquet. Returns the
        report and the bytes written."""
        from .report import dump_report, export_bytes, merge_rows, new_report

        scan = self.scan()
        report = new_report(self.run)
        merge_rows(report["rows"], self.read_results(sorted(scan.results)))
        body = dump_report(report)
        written = len(body)
        self.storage.write(f"{self.run}/{REPORT}", body)
        for extension in (".csv", ".parquet"):
            export = export_bytes(report["rows"], extension)
            self.storage.write(f"{self.run}/report/report{extension}", export)
            written += len(export)
        return report, written

    def load_report(self) -> dict[str, Any] | None:
        return self.read_json(f"{self.run}/{REPORT}")


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


def _future_error(future) -> str:
    """What a failed Lithops call reported (its exception), or that it died without a word."""
    exception = getattr(future, "_exception", None)
    if isinstance(exception, tuple) and len(exception) >= 2:
        return f"{getattr(exception[0], '__name__', exception[0])}: {exception[1]}"
    status = getattr(future, "_call_status", None) or {}
    if status.get("exception"):
        return str(status.get("exc_info") or status.get("exception"))
    return "the worker call failed without reporting an error (killed, out of memory or timed out)"


def check_batch(location: str, run: str, work: list[tuple[str, int]], settings_values: dict[str, Any]) -> list[dict]:
    """The Lithops worker: check each collection of the batch and write its result.json.

    Runs in another process (or a Lambda); it reopens the storage from its location and reads
    credentials from its own environment, never from the payload."""
    from .auth import EarthdataAuth
    from .check import check_collection
    from .settings import Settings

    survey = Survey(open_storage(location), run)
    settings = Settings(**settings_values)
    auth = EarthdataAuth(settings)
    done = []
    for concept_id, attempt in work:
        survey.storage.write(survey.key(concept_id, f"attempts/{attempt}.json"),
                             json.dumps({"attempt": attempt, "started_at": _now()}).encode())  # fmt: skip
        marker = survey.read_json(survey.key(concept_id, MARKER))
        if marker is None:
            continue
        result = check_collection(concept_id, collection=CollectionInfo.from_marker(marker), settings=settings, auth=auth)
        survey.storage.write(survey.key(concept_id, RESULT), json.dumps(result.to_record()).encode())
        done.append({"collection_concept_id": concept_id, "incompatible_reason": result.incompatible_reason})
    return done


def lithops_executor(kind: str | None = None, config_file: str | Path | None = None):
    """A Lithops FunctionExecutor from `config_file` (lithops.yaml) if given, with `kind`
    (localhost or aws_lambda) overriding its backend; localhost when neither says."""
    import sys

    import lithops
    import yaml

    config: dict[str, Any] = yaml.safe_load(Path(config_file).read_text()) if config_file else {}
    config.setdefault("lithops", {})
    backend = kind or config["lithops"].get("backend") or "localhost"
    config["lithops"]["backend"] = backend
    if backend == "localhost":
        config["lithops"]["storage"] = "localhost"
        localhost = config.setdefault("localhost", {})
        localhost.setdefault("version", 1)  # ~30-100 ms a call; version 2 costs ~0.5-1 s
        # Workers run this interpreter (Lithops' default is whatever `python` is on PATH).
        localhost.setdefault("runtime", sys.executable)
    config["lithops"].setdefault("log_level", "WARNING")
    return lithops.FunctionExecutor(config=config, log_level=None)
