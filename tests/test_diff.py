"""What changed between two surveys (diff.py): each kind of change, and tables of both tools."""

from __future__ import annotations

import json

import pytest

from titiler_cmr_compatibility.diff import KINDS, compare, read_table, write_changes
from titiler_cmr_compatibility.report import export_file
from tests.support.fixtures import fixtures_dir

PREDECESSOR = fixtures_dir() / "survey" / "tiling_results-11-24-2025.parquet"


def _row(concept_id: str, compatible: bool = False, reason: str | None = None, variable: str | None = None, **more) -> dict:
    return {"collection_concept_id": concept_id, "collection_short_name_and_version": f"{concept_id}.1",
            "tiling_compatible": compatible, "incompatible_reason": reason, "variable": variable, **more}


BEFORE = {row["collection_concept_id"]: row for row in [
    _row("C1-A", reason="no_xy_dimensions", variable="crs", error_message="Couldn't find X/Y dimensions in ()"),
    _row("C2-A", compatible=True, variable="sst"),
    _row("C3-A", reason="timeout"),
    _row("C4-A", compatible=True, variable="crs"),
    _row("C5-A", reason="forbidden"),
    _row("C6-A", reason="unsupported_format"),
]}
NOW = {row["collection_concept_id"]: row for row in [
    _row("C1-A", compatible=True, variable="analysed_sst", backend="xarray"),
    _row("C2-A", reason="data_unavailable", error_message="HTTP 503 from the data host"),
    _row("C3-A", reason="cant_open_file"),
    _row("C4-A", compatible=True, variable="sst"),
    _row("C6-A", reason="unsupported_format"),
    _row("C7-A", compatible=True, variable="chlor_a"),
]}


def test_every_kind_of_change_is_found_once():
    comparison = compare(BEFORE, NOW, "run 2026-11")
    kinds = {change.concept_id: change.kind for change in comparison.changes}
    assert kinds == {"C1-A": "became_compatible", "C2-A": "regressed", "C3-A": "reason_changed",
                     "C4-A": "variable_changed", "C5-A": "disappeared", "C7-A": "appeared"}
    assert comparison.both == 5 and sum(comparison.counts.values()) == 6
    assert [change.kind for change in comparison.changes] == sorted(kinds.values(), key=KINDS.index)


def test_the_why_says_what_the_earlier_survey_tried():
    changes = {change.concept_id: change for change in compare(BEFORE, NOW, "x").changes}
    assert changes["C1-A"].why == ("then: variable 'crs' was tried; Couldn't find X/Y dimensions in (); "
                                   "now 'analysed_sst' renders")
    assert changes["C1-A"].now == "compatible (xarray, analysed_sst)"
    assert changes["C2-A"].why == "HTTP 503 from the data host"
    assert changes["C4-A"].why == "variable 'crs' then, 'sst' now"


def test_a_survey_compared_with_itself_has_no_change():
    rows = read_table(PREDECESSOR)
    comparison = compare(rows, rows, "itself")
    assert comparison.both == 10_047 and not comparison.changes


@pytest.mark.parametrize("extension", [".json", ".csv", ".parquet"])
def test_this_tools_tables_read_back_as_they_were_written(tmp_path, extension):
    rows = {cid: {**row, "data_variables": ["a", "b"]} for cid, row in NOW.items()}
    export_file(rows, tmp_path / f"report{extension}")
    read = read_table(tmp_path / f"report{extension}")
    assert compare(rows, read, "written").changes == []
    assert read["C1-A"]["tiling_compatible"] is True and read["C2-A"]["tiling_compatible"] is False


def test_the_predecessors_table_reads_with_its_verdicts():
    rows = read_table(PREDECESSOR)
    assert len(rows) == 10_047 and sum(bool(row["tiling_compatible"]) for row in rows.values()) == 719
    assert rows["C2036881735-POCLOUD"]["variable"] == "crs"


def test_what_is_not_a_report_table_is_a_clear_error(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps([{"name": 1}]))
    with pytest.raises(ValueError, match="not a report table"):
        read_table(tmp_path / "list.json")
    with pytest.raises(ValueError, match="must end in"):
        read_table(tmp_path / "table.xlsx")
    with pytest.raises(ValueError, match="no such file"):
        read_table(tmp_path / "missing.parquet")


def test_changes_written_as_csv_and_json(tmp_path):
    comparison = compare(BEFORE, NOW, "x")
    write_changes(comparison, tmp_path / "changes.csv")
    write_changes(comparison, tmp_path / "changes.json")
    assert (tmp_path / "changes.csv").read_text().splitlines()[0] == "kind,id,name,before,now,why"
    assert len((tmp_path / "changes.csv").read_text().splitlines()) == 1 + 6
    assert json.loads((tmp_path / "changes.json").read_text())["counts"]["appeared"] == 1
