"""The compiled report: newest check wins, idempotent, order-independent; summaries; exports."""

from __future__ import annotations

import csv
import io
import json
import random

import pyarrow.parquet as pq
import pytest

from titiler_cmr_compatibility.report import TABLE_KEYS, dump_report, export_bytes, export_file, merge_rows, new_report, summarize
from titiler_cmr_compatibility.result import REPORT_KEYS, CheckResult, Reason


def result(concept_id: str, checked_at: str, reason: Reason | None = None, **fields) -> dict:
    record = CheckResult(collection_concept_id=concept_id, checked_at=checked_at, **fields)
    if reason:
        record.fail(reason, f"{reason.value} at {checked_at}")
    else:
        record.tiling_compatible = True
    return record.to_record()


def history() -> list[dict]:
    """Three collections checked several times; the last check of each is the one that counts."""
    return [
        result("C1-A", "2026-11-01T00:00:00+00:00", Reason.TIMEOUT, data_center="PODAAC"),
        result("C1-A", "2026-11-03T00:00:00+00:00", backend="xarray", data_center="PODAAC", format_family="netCDF-4"),
        result("C2-B", "2026-11-02T00:00:00+00:00", Reason.UNSUPPORTED_FORMAT, data_center="GES_DISC", format_family="ASCII"),
        result("C3-C", "2026-11-01T00:00:00+00:00", Reason.CMR_ERROR),
        result("C3-C", "2026-11-05T00:00:00+00:00", Reason.FORBIDDEN, processing_level="2"),
    ]


def test_newest_check_wins():
    rows: dict = {}
    merge_rows(rows, history())
    assert rows["C1-A"]["tiling_compatible"] is True
    assert rows["C3-C"]["incompatible_reason"] == "forbidden"


def test_merge_is_independent_of_order_and_idempotent():
    expected: dict = {}
    merge_rows(expected, history())
    for seed in range(10):
        shuffled = history()
        random.Random(seed).shuffle(shuffled)
        rows: dict = {}
        merge_rows(rows, shuffled)
        assert rows == expected
        assert merge_rows(rows, shuffled) == 0  # duplicates change nothing


def test_equal_timestamps_resolve_the_same_way_whatever_the_order():
    a = result("C9-Z", "2026-11-01T00:00:00+00:00", Reason.TIMEOUT)
    b = result("C9-Z", "2026-11-01T00:00:00+00:00", Reason.FORBIDDEN)
    first, second = {}, {}
    merge_rows(first, [a, b])
    merge_rows(second, [b, a])
    assert first == second


def test_summary_counts():
    rows: dict = {}
    merge_rows(rows, history())
    summary = summarize(rows)
    assert summary["collections"] == 3 and summary["compatible"] == 1
    assert summary["by_reason"] == {
        "compatible": {"collections": 1, "compatible": 1},
        "unsupported_format": {"collections": 1, "compatible": 0},
        "forbidden": {"collections": 1, "compatible": 0},
    }
    assert summary["by_daac"]["PODAAC"] == {"collections": 1, "compatible": 1}
    assert summary["by_format"]["ASCII"]["collections"] == 1
    assert summary["by_processing_level"]["2"]["collections"] == 1
    assert summary["by_backend"]["xarray"] == {"collections": 1, "compatible": 1}


def test_dumped_report_is_stable_bytes():
    report = new_report("2026-11")
    merge_rows(report["rows"], history())
    one = json.loads(dump_report(report))
    again = new_report("2026-11")
    merge_rows(again["rows"], list(reversed(history())))
    two = json.loads(dump_report(again))
    one.pop("updated_at"), two.pop("updated_at")
    assert one == two and one["summary"]["collections"] == 3


@pytest.mark.parametrize("extension", [".json", ".csv", ".parquet"])
def test_exports_hold_every_row_and_column(tmp_path, extension):
    rows: dict = {}
    merge_rows(rows, history())
    rows["C1-A"]["data_variables"] = ["sst", "mask"]
    path = tmp_path / f"report{extension}"
    size = export_file(rows, path)
    assert size == path.stat().st_size > 0
    if extension == ".json":
        records = json.loads(path.read_text())
    elif extension == ".csv":
        records = list(csv.DictReader(io.StringIO(path.read_text())))
    else:
        table = pq.read_table(path)
        assert table.column_names == TABLE_KEYS == [key for key in REPORT_KEYS if key != "thumbnail"]
        records = table.to_pylist()
    assert [r["collection_concept_id"] for r in records] == ["C1-A", "C2-B", "C3-C"]
    first = records[0]["data_variables"]
    assert (first if isinstance(first, list) else json.loads(first)) == ["sst", "mask"]


def test_empty_report_exports_and_unknown_format_is_refused():
    assert pq.read_table(io.BytesIO(export_bytes({}, ".parquet"))).num_rows == 0
    with pytest.raises(ValueError, match="unknown export format"):
        export_bytes({}, ".xlsx")


def test_the_summary_counts_what_each_titiler_cmr_fix_would_unlock():
    rows = {
        f"C{number}-TEST": {"collection_concept_id": f"C{number}-TEST", "tiling_compatible": False,
                            "incompatible_reason": "unsupported_format", "titiler_cmr_blocker": blocker}
        for number, blocker in enumerate(["the extension '.TIF'", "the extension '.TIF'", "sel without temporal", None])
    }
    by_blocker = summarize(rows)["by_titiler_cmr_blocker"]
    assert by_blocker["the extension '.TIF'"] == {"collections": 2, "compatible": 0}
    assert by_blocker["sel without temporal"]["collections"] == 1
