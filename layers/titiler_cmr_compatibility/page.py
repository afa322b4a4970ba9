"""report.html: the compiled report as one self-contained page a person opens, scans and shares.

The page is `page.html` (its styles and script inline, no network) with the report's rows and
summary embedded as JSON; it draws its charts and its sortable, filterable table itself. It is a
pure function of the report and a little context, so the local survey, the serverless finalize
step and the aggregator all write the same page.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

# The table's columns, in the order each embedded row lists them.
COLUMNS = {
    "id": "collection_concept_id",
    "name": "collection_short_name_and_version",
    "daac": "data_center",
    "format": "format",
    "container": "container",
    "backend": "backend",
    "variable": "variable",
    "group": "group",
    "compatible": "tiling_compatible",
    "reason": "incompatible_reason",
    "message": "error_message",
    "tiles": "tiles_url",
    "thumb": "thumbnail",
}
# An error message may be 2,000 characters; the page shows this many (the report keeps all).
MESSAGE_CHARS = 400
TIMELINE_POINTS = 200


@dataclass
class PageContext:
    """What the rows do not say: the survey's size, where it ran, and what it is compared with."""

    collections: int | None = None  # markers: every collection the survey covers
    cmr_url: str | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)  # diff.Comparison.as_dict()s


@cache
def _template() -> str:
    return files(__package__).joinpath("page.html").read_text()


def _cell(row: dict[str, Any], key: str) -> Any:
    value = row.get(key)
    if key == "error_message" and isinstance(value, str) and len(value) > MESSAGE_CHARS:
        return value[: MESSAGE_CHARS - 1] + "…"
    if key == "tiling_compatible":
        return 1 if value else 0
    return value


def timeline(rows: dict[str, dict], points: int = TIMELINE_POINTS) -> list[tuple[str, int]]:
    """Collections checked by each moment (the cumulative count of `checked_at`), at most
    `points` steps, the last one being the total."""
    times = sorted(row["checked_at"] for row in rows.values() if row.get("checked_at"))
    if not times:
        return []
    marks = sorted({max(1, round(len(times) * step / points)) for step in range(points + 1)})
    return [(times[mark - 1], mark) for mark in marks]


def page_data(report: dict[str, Any], context: PageContext) -> dict[str, Any]:
    rows = report["rows"]
    summary = report["summary"]
    checked = len(rows)
    compatible_by_backend = {
        backend: counts["compatible"] for backend, counts in summary["by_backend"].items() if backend != "None"
    }
    return {
        "meta": {
            "run": report["run"],
            "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "report_updated_at": report.get("updated_at"),
            "cmr_url": context.cmr_url,
            "collections": context.collections if context.collections is not None else checked,
            "checked": checked,
            "compatible": summary["compatible"],
            "pending": max(0, context.collections - checked) if context.collections is not None else None,
            "by_backend": compatible_by_backend,
        },
        "summary": summary,
        "timeline": timeline(rows),
        "columns": list(COLUMNS),
        "rows": [[_cell(row, key) for key in COLUMNS.values()] for _, row in sorted(rows.items())],
        "changes": context.changes,
    }


def build_page(report: dict[str, Any], context: PageContext | None = None) -> bytes:
    """The page for a report (as `report.load_report`/`dump_report` make it)."""
    data = json.dumps(page_data(report, context or PageContext()), separators=(",", ":"), default=str)
    # Inside <script>, "</" could close the element and "<!--" open a comment: neither can
    # appear once every "<" is the JSON escape \u003c (the same character to JSON.parse).
    data = data.replace("<", "\\u003c")
    head, tail = _template().split("__DATA__")
    title = html.escape(f"run {report['run']}")
    return (head.replace("__TITLE__", title) + data + tail).encode()
