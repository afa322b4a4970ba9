"""The S3-event aggregator: merges new result.json objects into the run's compiled report.

Workers write `<run>/collections/<concept-id>/result.json`; S3 sends one event per new object to
SQS; a Lambda gets the messages in batches and calls `handle_sqs_event`. Per batch and per run
it reads every named result (in parallel), then makes ONE read of `<run>/report/report.json` and
ONE conditional write of it (a compare-and-swap on its ETag, `Storage.replace`). A write that
loses the race to another aggregator re-reads the report and merges again (jittered backoff),
up to `max_attempts` times; the results are not read again. The winner then writes the page of
the report it wrote (`report.html`, plain write): two aggregators finishing together may leave
the page one batch behind the report until the next batch, and finalize writes it last.

Rows enter the report only through `report.merge_rows`, which is idempotent and independent of
order, so duplicate, late and out-of-order events change nothing, and SQS may redeliver a whole
batch whenever in doubt. A batch whose merge changes no row writes nothing.

Failures follow SQS's ReportBatchItemFailures: a poison message (a body that is not an S3 event
notification) and a message naming a result that cannot be read are reported alone, the rest of
the batch is merged; if the report itself cannot be written (all attempts lost, or S3 failed),
every message that named a result of that run is reported, to be delivered again. A result that
vanished (deleted since its event) is skipped, not an error.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .metrics import ReportChanges
from .report import dump_report, load_report, merge_rows
from .storage import S3Storage, Storage, check_key
from .survey import REPORT, RESULT, Survey

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 10  # report read-merge-write rounds per batch and run
BACKOFF_BASE = 0.05  # seconds; the sleep before retry n is uniform in [0, min(CAP, BASE * 2**(n-1))]
BACKOFF_CAP = 2.0
READ_THREADS = 32  # S3Storage's pool holds 64 connections


@dataclass(frozen=True)
class Message:
    """One SQS message: its id, and the result.json object keys its S3 event names.

    `keys` are object keys in `bucket` as S3 wrote them (URL-decoded), not yet relative to the
    survey's store. An `error` marks a poison message (to be reported as failed); a message with
    neither keys nor error (S3's TestEvent, other objects, other event types) needs nothing."""

    message_id: str
    keys: tuple[str, ...] = ()
    bucket: str | None = None
    error: str | None = None

    @property
    def poison(self) -> bool:
        return self.error is not None


@dataclass
class AggregateStats:
    """What one `aggregate` call did. `bytes_written` counts every report PUT sent, including
    conditional writes that lost their race (their bytes crossed the wire too)."""

    run: str
    results: int = 0  # distinct result keys given
    results_read: int = 0  # results read and merged
    missing: list[str] = field(default_factory=list)  # keys that no longer exist
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it could not be read
    rows_changed: int = 0  # rows the successful merge added or replaced
    changes: ReportChanges = field(default_factory=ReportChanges)  # what that merge did to the rows
    rows: int = 0  # rows in the report afterwards
    report_reads: int = 0
    report_writes: int = 0  # conditional PUTs, won or lost
    retries: int = 0  # rounds repeated after a lost race
    bytes_written: int = 0
    report_bytes: int = 0  # size of the report as it stands afterwards
    page_bytes: int = 0  # size of the report.html written after the report
    seconds: float = 0.0

    def add(self, other: AggregateStats) -> None:
        """Fold another run's numbers into these (totals of a batch; rows and report_bytes then
        add up the reports it touched)."""
        for name in ("results", "results_read", "rows_changed", "rows", "report_reads", "report_writes", "retries",
                     "bytes_written", "report_bytes", "page_bytes", "seconds"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.missing += other.missing
        self.failed.update(other.failed)
        self.changes.add(other.changes)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["missing"], values["failed"] = len(self.missing), len(self.failed)
        return values


class ReportWriteError(RuntimeError):
    """The report could not be written within `max_attempts` rounds (every write lost a race)."""

    def __init__(self, message: str, stats: AggregateStats):
        super().__init__(message)
        self.stats = stats


@dataclass
class BatchOutcome:
    """What `process_messages` did: the ids of the failed messages (in event order) and the
    stats of each run's aggregation."""

    failures: list[str] = field(default_factory=list)
    runs: dict[str, AggregateStats] = field(default_factory=dict)
    messages: int = 0
    poison: int = 0
    ignored_keys: int = 0  # named by an event, but not a result.json of this store


# --- the SQS event ------------------------------------------------------------------------------


def parse_sqs_event(event: dict) -> list[Message]:
    """Every SQS record of a Lambda event as a `Message`, in order.

    A record without a `messageId` makes the event itself invalid (ValueError): SQS always sends
    one, and a failure could not be reported without it."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise ValueError("not an SQS event: no Records list")
    messages = []
    for record in records:
        message_id = record.get("messageId") if isinstance(record, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise ValueError(f"SQS record without a messageId: {str(record)[:200]}")
        messages.append(_parse_body(message_id, record.get("body")))
    return messages


def _parse_body(message_id: str, body: Any) -> Message:
    try:
        notification = json.loads(body)
    except (TypeError, ValueError) as error:
        return Message(message_id, error=f"body is not JSON: {error}")
    if not isinstance(notification, dict):
        return Message(message_id, error="body is not a JSON object")
    if notification.get("Event") == "s3:TestEvent" and "Records" not in notification:
        return Message(message_id)  # sent once when notifications are configured
    s3_records = notification.get("Records")
    if not isinstance(s3_records, list):
        return Message(message_id, error="body has no Records list: not an S3 event notification")
    keys: list[str] = []
    buckets: set[str] = set()
    for s3_record in s3_records:
        try:
            event_name = s3_record["eventName"]
            bucket = s3_record["s3"]["bucket"]["name"]
            raw_key = s3_record["s3"]["object"]["key"]
        except (TypeError, KeyError) as error:
            return Message(message_id, error=f"S3 record lacks {error}")
        if not all(isinstance(value, str) for value in (event_name, bucket, raw_key)):
            return Message(message_id, error="S3 record with a non-string eventName, bucket or key")
        if not event_name.startswith("ObjectCreated:"):
            continue  # removals and the like add nothing to the report
        key = unquote_plus(raw_key)  # S3 encodes keys with quote_plus ("a b/c" -> "a+b%2Fc")
        if key.endswith("/" + RESULT):
            keys.append(key)
            buckets.add(bucket)
    if len(buckets) > 1:
        return Message(message_id, error=f"one message names objects of several buckets: {sorted(buckets)}")
    return Message(message_id, tuple(keys), buckets.pop() if buckets else None)


def store_key(storage: Storage, bucket: str | None, object_key: str) -> str | None:
    """The key of a result.json relative to `storage`, or None if the object is not one of its
    results (another bucket or prefix, or not `<run>/collections/<concept-id>/result.json`).

    On S3 the object must be in the storage's bucket, under its prefix; any other storage (a
    local directory, in tests and benchmarks) takes the object key as its own."""
    key = object_key
    if isinstance(storage, S3Storage):
        root = f"{storage.prefix}/" if storage.prefix else ""
        if bucket != storage.bucket or not key.startswith(root):
            return None
        key = key[len(root) :]
    parts = key.split("/")
    if len(parts) != 4 or parts[1] != "collections" or parts[3] != RESULT or parts[0].startswith("."):
        return None
    try:
        return check_key(key)
    except ValueError:
        return None


# --- the merge ----------------------------------------------------------------------------------


def _read_result(storage: Storage, key: str) -> tuple[str, dict | None, str | None]:
    """(key, record or None if absent, error or None)."""
    try:
        body = storage.read(key)
        if body is None:
            return key, None, None
        record = json.loads(body)
        if not isinstance(record, dict) or not isinstance(record.get("collection_concept_id"), str):
            return key, None, "not a result record (no collection_concept_id)"
        return key, record, None
    except Exception as error:  # noqa: BLE001 - one unreadable result must not sink the batch
        return key, None, f"{type(error).__name__}: {error}"


def aggregate(
    storage: Storage,
    run: str,
    keys: Iterable[str],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    *,
    threads: int = READ_THREADS,
    sleep: Callable[[float], None] = time.sleep,
) -> AggregateStats:
    """Merge the results at `keys` (all `<run>/collections/<id>/result.json` keys of `storage`)
    into `<run>/report/report.json`: one report read and one conditional write, repeated only
    when another writer changed the report in between. Raises ReportWriteError when every one
    of `max_attempts` rounds lost its race; other storage errors on the report propagate.
    Results that cannot be read are listed in `stats.failed` (the rest are merged), results
    that vanished in `stats.missing`."""
    started = time.monotonic()
    if not run or "/" in run or run.startswith("."):
        raise ValueError(f"invalid run id {run!r}")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    keys = list(dict.fromkeys(keys))
    for key in keys:
        if not key.startswith(f"{run}/"):
            raise ValueError(f"result key {key!r} is not of run {run!r}")
    stats = AggregateStats(run=run, results=len(keys))
    records: list[dict] = []
    if keys:
        with ThreadPoolExecutor(max(1, min(threads, len(keys)))) as pool:
            for key, record, error in pool.map(lambda key: _read_result(storage, key), keys):
                if error is not None:
                    stats.failed[key] = error
                elif record is None:
                    stats.missing.append(key)
                else:
                    records.append(record)
    stats.results_read = len(records)
    if not records:
        stats.seconds = time.monotonic() - started
        return stats

    report_key = f"{run}/{REPORT}"
    for attempt in range(1, max_attempts + 1):
        found = storage.read_versioned(report_key)
        stats.report_reads += 1
        body, etag = found if found is not None else (None, None)
        report = load_report(body, run)
        before = ReportChanges.rows_before(report["rows"], records)
        changed = merge_rows(report["rows"], records)
        if found is not None and not changed:  # all already there (a redelivery): nothing to write
            stats.rows, stats.report_bytes = len(report["rows"]), len(body)
            break
        new_body = dump_report(report)
        stats.report_writes += 1
        stats.bytes_written += len(new_body)
        if storage.replace(report_key, new_body, etag):
            stats.rows_changed, stats.rows, stats.report_bytes = changed, len(report["rows"]), len(new_body)
            stats.changes = ReportChanges.between(before, report["rows"])
            stats.page_bytes = Survey(storage, run).write_views(report, tables=False)
            break
        if attempt == max_attempts:
            stats.seconds = time.monotonic() - started
            raise ReportWriteError(
                f"{report_key}: every one of {max_attempts} conditional writes lost to another writer", stats
            )
        stats.retries += 1
        sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))))
    stats.seconds = time.monotonic() - started
    return stats


# --- one Lambda invocation ----------------------------------------------------------------------


def process_messages(
    messages: list[Message], storage: Storage, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> BatchOutcome:
    """Aggregate a batch of messages, one report per run; which messages failed, and stats."""
    outcome = BatchOutcome(messages=len(messages))
    failed: set[str] = set()
    readers: dict[str, set[str]] = defaultdict(set)  # store key -> ids of the messages naming it
    for message in messages:
        if message.poison:
            failed.add(message.message_id)
            outcome.poison += 1
            log.warning("poison message %s: %s", message.message_id, message.error)
            continue
        for object_key in message.keys:
            key = store_key(storage, message.bucket, object_key)
            if key is None:
                outcome.ignored_keys += 1
                log.warning("message %s: s3://%s/%s is not a result of %s; ignored",
                            message.message_id, message.bucket, object_key, storage.location)  # fmt: skip
            else:
                readers[key].add(message.message_id)
    by_run: dict[str, list[str]] = defaultdict(list)
    for key in readers:
        by_run[key.split("/", 1)[0]].append(key)
    for run, keys in by_run.items():
        try:
            stats = aggregate(storage, run, keys, max_attempts)
        except Exception as error:  # noqa: BLE001 - the report of this run failed: redeliver its messages
            log.error("report of run %s not written, %d results to be delivered again: %s",
                      run, len(keys), error, exc_info=not isinstance(error, ReportWriteError))  # fmt: skip
            if isinstance(error, ReportWriteError):
                outcome.runs[run] = error.stats
            for key in keys:
                failed |= readers[key]
            continue
        outcome.runs[run] = stats
        for key, why in stats.failed.items():
            log.warning("result %s could not be read: %s", key, why)
            failed |= readers[key]
    # In event order, each id once (a message listed twice in one event is one SQS message).
    outcome.failures = list(dict.fromkeys(m.message_id for m in messages if m.message_id in failed))
    return outcome


def handle_sqs_event(
    event: dict, storage: Storage, settings: Any = None, logger: Any = None,
    metrics: Callable[[BatchOutcome], Any] | None = None,
) -> dict[str, list[dict[str, str]]]:
    """The Lambda's answer for one SQS batch, in ReportBatchItemFailures form.

    `settings` is accepted so the handler's signature matches the other steps'; nothing in
    Settings tunes the aggregator yet (this module's defaults apply). The batch's numbers are
    logged to `logger` (a `logging.Logger` or a Powertools Logger; this module's by default), and
    given to `metrics` (the Lambda's: `metrics.emit_batch_metrics`, CloudWatch EMF) if any."""
    outcome = process_messages(parse_sqs_event(event), storage)
    totals = AggregateStats(run=",".join(sorted(outcome.runs)))
    for stats in outcome.runs.values():
        totals.add(stats)
    (logger or log).info(
        "aggregated %d messages into %d report(s): %d failed",
        outcome.messages, len(outcome.runs), len(outcome.failures),
        extra={"aggregate": {**totals.as_dict(), "messages": outcome.messages, "poison": outcome.poison,
                             "ignored_keys": outcome.ignored_keys, "failed_messages": len(outcome.failures)}},
    )  # fmt: skip
    if metrics is not None:
        metrics(outcome)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in outcome.failures]}
