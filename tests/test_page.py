"""report.html: built from a real survey (the demo's), opened in a real headless Chromium with the
network off, and used as a reader would: charts, filters, sorting, thumbnails, links."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from titiler_cmr_compatibility.demo import DEMO_RUN, run_demo
from titiler_cmr_compatibility.page import COLUMNS, MESSAGE_CHARS, PageContext, build_page, timeline
from titiler_cmr_compatibility.report import dump_report, merge_rows, new_report
from titiler_cmr_compatibility.survey import PAGE
from tests.support.browser import open_page, require_chromium

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _embedded(page: bytes) -> dict:
    match = re.search(rb'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert match, "the page embeds its data"
    return json.loads(match.group(1))


def _report(rows: list[dict]) -> dict:
    report = new_report("2026-12")
    merge_rows(report["rows"], rows)
    return json.loads(dump_report(report))


def _row(concept_id: str, **fields) -> dict:
    return {"collection_concept_id": concept_id, "collection_short_name_and_version": f"{concept_id}.1",
            "data_center": "PODAAC", "tiling_compatible": False, "checked_at": "2026-12-01T00:00:00+00:00", **fields}


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory) -> Path:
    """The demo's survey (real files, sample CMR on 127.0.0.1, Lithops localhost) and its page."""
    directory = tmp_path_factory.mktemp("demo")
    assert run_demo(directory) == 0
    return directory / "survey-output" / DEMO_RUN / PAGE


def test_what_a_file_says_cannot_break_out_of_the_page():
    hostile = "</script><script>alert(1)</script><!--"
    page = build_page(_report([_row("C1-A", variable=hostile, error_message=hostile, incompatible_reason="decode_error")]))
    assert page.count(b"</script>") == 2  # the data's and the code's own
    assert b"<script>alert" not in page
    row = _embedded(page)["rows"][0]
    assert row[list(COLUMNS).index("variable")] == hostile  # the reader still sees the text as it is


def test_long_messages_are_shortened_for_the_page_only():
    report = _report([_row("C1-A", error_message="x" * 5000, incompatible_reason="cant_open_file")])
    message = _embedded(build_page(report))["rows"][0][list(COLUMNS).index("message")]
    assert len(message) == MESSAGE_CHARS and message.endswith("…")


def test_headline_counts_pending_against_the_survey_size():
    report = _report([_row("C1-A", tiling_compatible=True, backend="xarray"), _row("C2-A", incompatible_reason="timeout")])
    meta = _embedded(build_page(report, PageContext(collections=10, cmr_url="https://cmr.example")))["meta"]
    assert (meta["collections"], meta["checked"], meta["compatible"], meta["pending"]) == (10, 2, 1, 8)
    assert meta["by_backend"] == {"xarray": 1} and meta["cmr_url"] == "https://cmr.example"


def test_timeline_is_cumulative_and_ends_at_the_total():
    rows = {f"C{n}-A": {"checked_at": f"2026-12-01T00:{n % 60:02d}:00+00:00"} for n in range(1, 1001)}
    points = timeline(rows, points=50)
    assert points[0][1] == 1 and points[-1][1] == 1000 and len(points) <= 51
    assert [count for _, count in points] == sorted(count for _, count in points)
    assert [time for time, _ in points] == sorted(time for time, _ in points)


def test_the_page_in_a_browser_offline(demo_page):
    require_chromium()
    report = json.loads((demo_page.parent / "report.json").read_bytes())
    rows = report["rows"]
    with open_page(demo_page, height=1800) as opened:
        page = opened.page
        assert opened.errors == [] and opened.requests == []  # self-contained: it asked for nothing
        # The headline and the charts are drawn from the report.
        assert page.inner_text("[data-card=collections] b") == str(len(rows))
        assert page.inner_text("[data-card=compatible] b") == str(report["summary"]["compatible"])
        assert page.locator(".chart svg").count() >= 5
        assert page.locator(".chart rect.compatible").count() >= 4
        assert page.locator("path.progress").count() == 1
        # Every row, then exactly the rows of one reason.
        assert page.locator("#body tr").count() == len(rows)
        reason = "unsupported_format"
        page.select_option("#reason", reason)
        shown = page.eval_on_selector_all("#body tr", "rows => rows.map(r => r.dataset.id)")
        assert sorted(shown) == sorted(cid for cid, row in rows.items() if row["incompatible_reason"] == reason)
        assert len(shown) >= 2
        page.select_option("#reason", "")
        # Text filter and sorting.
        page.fill("#q", "chlor_a")
        assert page.eval_on_selector_all("#body tr", "rows => rows.map(r => r.dataset.id)") == [
            cid for cid, row in rows.items() if row.get("variable") == "chlor_a"]
        page.fill("#q", "")
        page.click("th[data-key=name]")
        page.click("th[data-key=name]")
        names = page.eval_on_selector_all("#body tr td:nth-child(2) div", "cells => cells.map(c => c.textContent)")
        assert names == sorted(names, key=str.lower, reverse=True)
        # A compatible row shows its proof tile and links to its tile; every row to Earthdata Search.
        page.select_option("#compatible", "yes")
        compatible = [cid for cid, row in rows.items() if row["tiling_compatible"]]
        assert page.locator("#body tr").count() == len(compatible)
        first = page.locator(f"#body tr[data-id='{compatible[0]}']")
        thumbnail = first.locator("img.thumb")
        assert thumbnail.count() == 1
        assert page.evaluate("img => img.complete && img.naturalWidth > 0", thumbnail.element_handle())
        assert first.locator("a.tile-link").get_attribute("href") == rows[compatible[0]]["tiles_url"]
        assert compatible[0] in first.locator("a", has_text="Earthdata Search").get_attribute("href")
        ARTIFACTS.mkdir(exist_ok=True)
        page.select_option("#compatible", "")
        page.screenshot(path=str(ARTIFACTS / "report-page.png"), full_page=True)
    assert (ARTIFACTS / "report-page.png").stat().st_size > 10_000


def test_thumbnails_are_the_checks_own_tiles(demo_page):
    report = json.loads((demo_page.parent / "report.json").read_bytes())
    for concept_id, row in report["rows"].items():
        tile = demo_page.parent.parent / "collections" / concept_id / "tile.png"
        if row["tiling_compatible"]:
            assert row["thumbnail"].startswith("data:image/png;base64,")
            assert base64.b64decode(row["thumbnail"].split(",", 1)[1]).startswith(b"\x89PNG")
            assert tile.read_bytes().startswith(b"\x89PNG")
        else:
            assert row.get("thumbnail") is None and not tile.exists()
