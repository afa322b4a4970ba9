"""Benchmark of the report page at full size: build time, file size, and what a browser does
with it (first paint, the table ready, a filter), against report.json built in the same process.

The rows are real: the earlier survey's 10,047 published rows, plus copies under new concept
ids up to --rows (default 10,800, CMR's size today); --compatible of them (default 2,000, ~2.8x
the earlier survey's 719) carry a thumbnail, taken from the tiles the demo survey renders.

    .venv/bin/python bench/report.py
    .venv/bin/python bench/report.py --rows 60000 --compatible 10000    # tomorrow's CMR
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers"))

from titiler_cmr_compatibility.demo import DEMO_RUN, run_demo  # noqa: E402
from titiler_cmr_compatibility.diff import compare, read_table  # noqa: E402
from titiler_cmr_compatibility.page import PageContext, build_page  # noqa: E402
from titiler_cmr_compatibility.report import dump_report, new_report  # noqa: E402
from tests.support.browser import open_page  # noqa: E402
from tests.support.fixtures import fixtures_dir  # noqa: E402

PREDECESSOR = fixtures_dir() / "survey" / "tiling_results-11-24-2025.parquet"


def demo_thumbnails(directory: Path) -> list[str]:
    """The thumbnails of the demo survey's compatible collections (real renders)."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        run_demo(directory)
    report = json.loads((directory / "survey-output" / DEMO_RUN / "report" / "report.json").read_bytes())
    thumbnails = [row["thumbnail"] for row in report["rows"].values() if row.get("thumbnail")]
    if not thumbnails:
        raise SystemExit("the demo's results carry no thumbnail")
    return thumbnails


def rows_at(size: int, compatible: int, thumbnails: list[str]) -> dict[str, dict]:
    published = list(read_table(PREDECESSOR).values())
    rows: dict[str, dict] = {}
    for index in range(size):
        row = dict(published[index % len(published)])
        if index >= len(published):
            row["collection_concept_id"] = f"C{9_000_000_000 + index}-COPY"
        row["checked_at"] = f"2026-12-01T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}+00:00"
        rows[row["collection_concept_id"]] = row
    ids = sorted(rows)
    for number, concept_id in enumerate(ids[:: max(1, len(ids) // compatible)][:compatible]):
        rows[concept_id].update(tiling_compatible=True, incompatible_reason=None, error_message=None,
                                thumbnail=thumbnails[number % len(thumbnails)])  # fmt: skip
    return rows


def timed(function, repeat: int = 5) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_800)
    parser.add_argument("--compatible", type=int, default=2_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        thumbnails = demo_thumbnails(Path(folder) / "demo")
        rows = rows_at(args.rows, args.compatible, thumbnails)
        report = new_report("2026-12")
        report["rows"] = rows
        report = json.loads(dump_report(report))
        earlier = read_table(PREDECESSOR)
        changes = [compare(earlier, rows, PREDECESSOR.name).as_dict()]
        context = PageContext(collections=args.rows + 50, cmr_url="https://cmr.earthdata.nasa.gov", changes=changes)

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        json_seconds, body = timed(lambda: dump_report(dict(report)))
        page_seconds, page = timed(lambda: build_page(report, context))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        path = Path(folder) / "report.html"
        path.write_bytes(page)

        thumbs = sum(len(row.get("thumbnail") or "") for row in rows.values())
        print(f"rows {len(rows):,}, compatible with a thumbnail {args.compatible:,}, changes listed "
              f"{len(changes[0]['entries']):,}")
        print(f"report.json  {len(body):>12,} bytes  built in {json_seconds * 1000:7.0f} ms (median of 5)")
        print(f"report.html  {len(page):>12,} bytes  built in {page_seconds * 1000:7.0f} ms (median of 5); "
              f"{len(gzip.compress(page)):,} gzipped; thumbnails {thumbs:,} bytes "
              f"({thumbs / max(1, args.compatible):,.0f} per row)")
        print(f"page / json: size x{len(page) / len(body):.2f}, build time x{page_seconds / json_seconds:.2f}; "
              f"peak RSS {rss_after:,.0f} MB (was {rss_before:,.0f} MB before building)")

        loads = []
        for _ in range(3):
            with open_page(path) as opened:
                timings = opened.page.evaluate("""() => {
                    const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
                    const select = document.getElementById('reason');
                    select.value = 'no_xy_dimensions';
                    const started = performance.now();
                    select.dispatchEvent(new Event('input'));
                    return {fcp: paint['first-contentful-paint'], ready: window.readyMs, filter: performance.now() - started,
                            shown: document.getElementById('count').textContent,
                            heap: performance.memory ? performance.memory.usedJSHeapSize : null};
                }""")
                loads.append((timings["fcp"], timings["ready"], timings["filter"], timings["shown"], timings["heap"]))
                assert not opened.errors and not opened.requests, (opened.errors, opened.requests)
        for fcp, ready, filtered, shown, heap in loads:
            print(f"chromium: first contentful paint {fcp:6.0f} ms, table ready {ready:6.0f} ms, "
                  f"filter by a reason {filtered:5.0f} ms ({shown}), JS heap {heap / 2**20 if heap else 0:,.0f} MB")


if __name__ == "__main__":
    main()
