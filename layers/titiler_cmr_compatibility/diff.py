"""What changed between two surveys: collections that became compatible, regressed, changed
reason or variable, appeared or disappeared.

Either side is a run of a store (its report.json) or a report table on disk: this tool's
report.json/.csv/.parquet, or the earlier survey's published parquet, which has the same 17
columns. Only the predecessor's columns are compared, so the two tools' tables compare too.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .report import EXPORT_FORMATS

KINDS = ("became_compatible", "regressed", "reason_changed", "variable_changed", "appeared", "disappeared")
# Entries a comparison keeps for the page (counts always cover everything).
MAX_ENTRIES = 5000


@dataclass
class Change:
    kind: str
    concept_id: str
    name: str | None
    before: str
    now: str
    why: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.concept_id, "name": self.name, "before": self.before,
                "now": self.now, "why": self.why}  # fmt: skip


@dataclass
class Comparison:
    """`before` → `now`: counts of each kind of change, and the changes themselves."""

    against: str  # what `now` is compared with: a run id or a file name
    both: int = 0  # collections in both
    counts: Counter = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)

    def as_dict(self, limit: int = MAX_ENTRIES) -> dict[str, Any]:
        entries = [change.as_dict() for change in self.changes[:limit]]
        return {"against": self.against, "both": self.both, "counts": {kind: self.counts[kind] for kind in KINDS},
                "entries": entries, "truncated": len(self.changes) if len(self.changes) > limit else None}  # fmt: skip


def verdict(row: dict[str, Any]) -> str:
    """One phrase: 'compatible (xarray, sst)' or the reason."""
    if row.get("tiling_compatible"):
        detail = ", ".join(str(part) for part in (row.get("backend"), row.get("variable")) if part)
        return f"compatible ({detail})" if detail else "compatible"
    return str(row.get("incompatible_reason") or "not compatible (no reason given)")


def _why(before: dict[str, Any], now: dict[str, Any]) -> str | None:
    """The clearest statement of the difference: what this survey says, or what the other said."""
    if now.get("tiling_compatible") and before.get("tiling_compatible"):
        return f"variable {before.get('variable')!r} then, {now.get('variable')!r} now"
    if now.get("tiling_compatible"):
        tried = f"variable {before.get('variable')!r} was tried" if before.get("variable") else None
        then = "; ".join(part for part in (tried, before.get("error_message")) if part)
        return f"then: {then}; now {now.get('variable')!r} renders" if then else None
    return now.get("error_message")


def compare(before: dict[str, dict], now: dict[str, dict], against: str) -> Comparison:
    """Compare two sets of rows (concept id → row), `now` being the newer survey."""
    comparison = Comparison(against=against)
    for concept_id in sorted(before.keys() | now.keys()):
        old, new = before.get(concept_id), now.get(concept_id)
        if old is None or new is None:
            kind = "appeared" if old is None else "disappeared"
            row = new or old
            assert row is not None
            comparison.counts[kind] += 1
            comparison.changes.append(Change(kind, concept_id, row.get("collection_short_name_and_version"),
                                             verdict(old) if old else "", verdict(new) if new else "", None))  # fmt: skip
            continue
        comparison.both += 1
        was, is_ = bool(old.get("tiling_compatible")), bool(new.get("tiling_compatible"))
        if was != is_:
            kind = "became_compatible" if is_ else "regressed"
        elif not is_ and old.get("incompatible_reason") != new.get("incompatible_reason"):
            kind = "reason_changed"
        elif is_ and old.get("variable") != new.get("variable"):
            kind = "variable_changed"
        else:
            continue
        comparison.counts[kind] += 1
        comparison.changes.append(Change(kind, concept_id, new.get("collection_short_name_and_version"),
                                         verdict(old), verdict(new), _why(old, new)))  # fmt: skip
    # The page lists what matters most first: verdicts that flipped, then reasons, then the rest.
    comparison.changes.sort(key=lambda change: KINDS.index(change.kind))
    return comparison


def read_table(path: Path) -> dict[str, dict]:
    """Rows of a report file (this tool's .json/.csv/.parquet export or report.json, or the
    earlier survey's parquet), by collection concept id."""
    extension = path.suffix.lower()
    if extension not in EXPORT_FORMATS:
        raise ValueError(f"{path}: a report table must end in {', '.join(EXPORT_FORMATS)}")
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    if extension == ".json":
        data = json.loads(path.read_bytes())
        records = list(data["rows"].values()) if isinstance(data, dict) and "rows" in data else data
    elif extension == ".csv":
        import csv

        with path.open(newline="") as file:
            records = [_typed(row) for row in csv.DictReader(file)]
    else:
        import pyarrow.parquet as pq

        records = pq.read_table(path).to_pylist()
    if not isinstance(records, list) or not all(isinstance(r, dict) and r.get("collection_concept_id") for r in records):
        raise ValueError(f"{path}: not a report table (rows with a collection_concept_id)")
    return {record["collection_concept_id"]: record for record in records}


def _typed(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row with its empty cells as None and the verdict as a bool."""
    typed: dict[str, Any] = {key: (value if value != "" else None) for key, value in row.items()}
    typed["tiling_compatible"] = str(row.get("tiling_compatible")).lower() == "true"
    return typed


def summary_lines(comparison: Comparison, listed: int = 20) -> list[str]:
    """The comparison as lines for a terminal: counts, then the first changes."""
    lines = [f"against {comparison.against}: {comparison.both:,} collections in both"]
    lines += [f"  {kind.replace('_', ' '):<20} {comparison.counts[kind]:>7,}" for kind in KINDS]
    shown = [change for change in comparison.changes if change.kind not in ("appeared", "disappeared")][:listed]
    for change in shown:
        lines.append(f"  {change.kind:<18} {change.concept_id:<24} {change.before} -> {change.now}")
    return lines


def write_changes(comparison: Comparison, path: Path) -> None:
    """Every change, as .csv or .json (by the extension)."""
    entries = [change.as_dict() for change in comparison.changes]
    if path.suffix.lower() == ".json":
        body = json.dumps({**comparison.as_dict(limit=len(entries)), "entries": entries}, indent=1).encode()
    elif path.suffix.lower() == ".csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["kind", "id", "name", "before", "now", "why"])
        writer.writeheader()
        writer.writerows(entries)
        body = buffer.getvalue().encode()
    else:
        raise ValueError(f"{path}: the changes are written as .csv or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
