"""The compiled report: one row per collection, the newest check winning, and its summary.

`merge_rows` is the only way rows enter a report, for the local survey and for the S3-event
aggregator alike: it is idempotent (merging a result twice changes nothing) and independent of
order (results may arrive late, twice, or out of order), because a row is replaced only by a
strictly newer one (`checked_at`, then the record's canonical JSON as a tie-break).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .result import REPORT_KEYS

SCHEMA_VERSION = 1
SUMMARY_DIMENSIONS = {
    "incompatible_reason": "by_reason",
    "backend": "by_backend",
    "data_center": "by_daac",
    "format_family": "by_format",
    "processing_level": "by_processing_level",
    "titiler_cmr_blocker": "by_titiler_cmr_blocker",
}
EXPORT_FORMATS = (".json", ".csv", ".parquet")
# The tables' columns: every field but the thumbnail, which is for the page (report.html).
TABLE_KEYS = [key for key in REPORT_KEYS if key != "thumbnail"]
# compatible_datasets.csv: what a titiler-cmr user needs to show each compatible collection.
COMPATIBLE_KEYS = ["collection_concept_id", "collection_short_name_and_version", "data_center", "backend",
                   "variable", "group", "sel", "rescale", "tiles_url"]  # fmt: skip


def _order(record: dict[str, Any]) -> tuple[str, str]:
    return (record.get("checked_at") or "", json.dumps(record, sort_keys=True, default=str))


def merge_rows(rows: dict[str, dict], results: Iterable[dict]) -> int:
    """Merge results into `rows` (concept id → record) in place; returns how many rows changed."""
    changed = 0
    for result in results:
        concept_id = result["collection_concept_id"]
        current = rows.get(concept_id)
        if current is None or _order(result) > _order(current):
            rows[concept_id] = result
            changed += 1
    return changed


def summarize(rows: dict[str, dict]) -> dict[str, Any]:
    """Totals, and counts (with how many are compatible) by reason, backend, DAAC, format and level."""
    summary: dict[str, Any] = {
        "collections": len(rows),
        "compatible": sum(1 for row in rows.values() if row.get("tiling_compatible")),
    }
    for column, name in SUMMARY_DIMENSIONS.items():
        totals: Counter = Counter()
        compatible: Counter = Counter()
        for row in rows.values():
            value = row.get(column)
            key = "compatible" if column == "incompatible_reason" and row.get("tiling_compatible") else str(value)
            totals[key] += 1
            compatible[key] += bool(row.get("tiling_compatible"))
        summary[name] = {
            key: {"collections": count, "compatible": compatible[key]} for key, count in totals.most_common()
        }
    return summary


def new_report(run: str) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "run": run, "updated_at": None, "summary": summarize({}), "rows": {}}


def load_report(body: bytes | None, run: str) -> dict[str, Any]:
    return json.loads(body) if body else new_report(run)


def dump_report(report: dict[str, Any]) -> bytes:
    """Refresh the summary and serialise (rows sorted, so equal reports are equal bytes)."""
    report["summary"] = summarize(report["rows"])
    report["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["rows"] = dict(sorted(report["rows"].items()))
    return json.dumps(report, separators=(",", ":"), default=str).encode()


def _flat(row: dict[str, Any], keys: list[str] = TABLE_KEYS) -> dict[str, Any]:
    """A row for a table: lists and mappings as JSON text (as the predecessor's table had)."""
    return {key: json.dumps(row[key]) if isinstance(row.get(key), list | dict) else row.get(key) for key in keys}


def _csv(records: Iterable[dict[str, Any]], keys: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    writer.writerows(_flat(record, keys) for record in records)
    return buffer.getvalue().encode()


def compatible_datasets(rows: dict[str, dict]) -> bytes:
    """compatible_datasets.csv: one row per compatible collection, by concept id."""
    return _csv((rows[key] for key in sorted(rows) if rows[key].get("tiling_compatible")), COMPATIBLE_KEYS)


def export_bytes(rows: dict[str, dict], extension: str) -> bytes:
    """The rows as `.json` (a list of records), `.csv` or `.parquet`."""
    ordered = [rows[key] for key in sorted(rows)]
    if extension == ".json":
        return json.dumps([{key: row.get(key) for key in TABLE_KEYS} for row in ordered], indent=1, default=str).encode()
    if extension == ".csv":
        return _csv(ordered, TABLE_KEYS)
    if extension == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, list] = defaultdict(list)
        for row in ordered:
            for key, value in _flat(row).items():
                columns[key].append(value)
        table = pa.table({key: columns[key] for key in TABLE_KEYS})
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        return sink.getvalue()
    raise ValueError(f"unknown export format {extension!r}: use one of {', '.join(EXPORT_FORMATS)}")


def export_file(rows: dict[str, dict], path: Path) -> int:
    """Write the rows to `path` in the format its extension names; returns the bytes written."""
    body = export_bytes(rows, path.suffix.lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return len(body)
