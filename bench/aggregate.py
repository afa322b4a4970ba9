"""Benchmark of the S3-event aggregator: S3 requests and bytes written per result, next to a
naive aggregator that re-reads and rewrites the report once per result.

N synthetic results (CheckResult records of ~1.2 kB, default N = 10,047, the earlier survey's
size) are stored under `<run>/collections/<id>/result.json`, then announced to the aggregator
in SQS-like batches of 1,000 messages (S3 event notification bodies, keys URL-encoded with
quote_plus, as S3 sends them), one `handle_sqs_event` call — one Lambda invocation — per batch.

1. The aggregator, against S3 (moto's ThreadedMotoServer in this process), over all N results.
   The results are put straight into moto's backend (setting up is not what is measured);
   every request the aggregator makes goes through HTTP and is counted.
2. The same aggregator and the naive one against a local directory (on /dev/shm when it
   exists), over the first `--naive-results` results (default 2,000) — the naive aggregator
   parses and serialises the whole report once per result (~0.2 s at 10,047 rows here), so
   all N take ~35 minutes; pass `--naive-results 10047` to measure them all. With fewer, its
   totals for N are also projected: requests exactly (3 per result), bytes from the report
   size it measured (affine in the row count), seconds in proportion to bytes.
   moto is not used for the naive case: its cost is the JSON, and moto would only add the
   HTTP transfer of a multi-MB body twice per result.

    .venv/bin/python bench/aggregate.py
    .venv/bin/python bench/aggregate.py --n 2000 --naive-results 500    # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers"))

from titiler_cmr_compatibility.aggregate import handle_sqs_event  # noqa: E402
from titiler_cmr_compatibility.formats import Backend  # noqa: E402
from titiler_cmr_compatibility.report import dump_report, load_report, merge_rows  # noqa: E402
from titiler_cmr_compatibility.result import CheckResult, Reason  # noqa: E402
from titiler_cmr_compatibility.storage import LocalStorage, S3Storage, Storage, open_storage  # noqa: E402
from titiler_cmr_compatibility.survey import REPORT, RESULT  # noqa: E402
from tests.support.aws import REGION, moto_server, s3_client, sqs_events  # noqa: E402

RUN = "2026-11"
BATCH = 1000  # SQS messages per Lambda invocation
BUCKET, PREFIX = "bench-survey", "compat"
REASONS = [Reason.UNSUPPORTED_FORMAT, Reason.NO_XY_DIMENSIONS, Reason.GROUP_STRUCTURE, Reason.TIMEOUT]


def results(n: int) -> dict[str, bytes]:
    """N result.json bodies of ~1.2 kB, shaped like the check's (key -> body)."""
    out = {}
    for i in range(n):
        concept_id = f"C{2_000_000_000 + i}-PROV{i % 13}"
        record = CheckResult(
            collection_concept_id=concept_id,
            collection_short_name_and_version=f"SHORT_NAME_OF_A_COLLECTION_{i}___2.0",
            concept_id=f"G{3_000_000_000 + i}-PROV{i % 13}",
            data_center=f"PROV{i % 13}",
            data_url=f"https://archive.prov{i % 13}.earthdata.nasa.gov/protected/COLLECTION_{i}/2026/001/"
                     f"granule-20260101T000000-{i:06d}.nc",  # fmt: skip
            format="netCDF-4", extension=".nc", format_family="netCDF-4", container="hdf5",
            data_variables=["analysed_sst", "analysis_error", "mask", "sea_ice_fraction", "dt_1km_data"],
            num_granules=1000 + i, processing_level=str(i % 4 + 1), groups=[], access_type="external",
            checked_at=f"2026-11-27T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
            duration_s=3.21, bytes_read=1_234_567, data_requests=12, cmr_requests=2, file_size=400_000_000,
            engine_versions={"titiler-cmr": "1.2.0", "rio-tiler": "9.4.12", "titiler-xarray": "2.4.0",
                             "xarray": "2026.9.0", "h5netcdf": "1.8.2"},
        )  # fmt: skip
        if i % 14 == 0:
            record.tiling_compatible, record.backend, record.variable = True, Backend.XARRAY, "analysed_sst"
            record.tiles_url = (f"https://staging.openveda.cloud/api/titiler-cmr/xarray/tiles/WebMercatorQuad/0/0/0.png"
                                f"?collection_concept_id={concept_id}&temporal=2026-01-01T00:00:00Z&variables=analysed_sst")  # fmt: skip
        else:
            record.fail(REASONS[i % len(REASONS)], "no variable has two dimensions titiler-cmr recognises as X/Y "
                        "(lon/lat, x/y); the data variables have dimensions (time, nj, ni) with 2-D lat/lon")  # fmt: skip
        out[f"{RUN}/collections/{concept_id}/{RESULT}"] = json.dumps(record.to_record()).encode()
    return out


class StatsLog:
    """A logger for handle_sqs_event that keeps each invocation's numbers."""

    def __init__(self):
        self.batches: list[dict] = []
        self.lock = threading.Lock()

    def info(self, *args, extra=None, **kwargs):
        with self.lock:
            self.batches.append(extra["aggregate"])

    def warning(self, *args, **kwargs):
        pass

    error = warning


def run_aggregator(label: str, storage: Storage, keys: list[str]) -> int:
    """Feed the keys to handle_sqs_event in batches of BATCH; print the numbers; the report size."""
    bucket = storage.bucket if isinstance(storage, S3Storage) else "local"
    root = f"{storage.prefix}/" if isinstance(storage, S3Storage) and storage.prefix else ""
    events = sqs_events(keys, bucket, root, BATCH)
    log = StatsLog()
    before = storage.stats.as_dict()
    started = time.perf_counter()
    for event in events:
        answer = handle_sqs_event(event, storage, None, logger=log)
        assert answer == {"batchItemFailures": []}, answer
    seconds = time.perf_counter() - started
    after = storage.stats.as_dict()
    n = len(keys)
    result_reads = sum(b["results_read"] for b in log.batches)
    report_reads = sum(b["report_reads"] for b in log.batches)
    report_writes = sum(b["report_writes"] for b in log.batches)
    written = sum(b["bytes_written"] for b in log.batches)
    final = log.batches[-1]["report_bytes"]
    # Each written report is followed by its page: two small reads (the run's size, its stored
    # comparisons) and one write.
    pages = sum(1 for b in log.batches if b["page_bytes"])
    page_bytes = sum(b["page_bytes"] for b in log.batches)
    assert after["gets"] - before["gets"] == result_reads + report_reads + 2 * pages  # the storage saw the same
    assert after["puts"] - before["puts"] == report_writes + pages
    assert log.batches[-1]["rows"] == n
    event_mb = max(len(json.dumps(event)) for event in events) / 1e6
    print(f"[{label}] aggregator: {n:,} results in {len(events)} invocations of <= {BATCH:,} messages "
          f"(largest event {event_mb:.1f} MB), {seconds:.1f} s ({seconds / len(events):.1f} s per invocation)")  # fmt: skip
    print(f"    S3 requests: {result_reads:,} result GETs ({result_reads / n:.3f} per result, one per result by nature); "
          f"report: {report_reads} GETs + {report_writes} PUTs = {(report_reads + report_writes) / n:.4f} per result "
          f"(target <= 0.05); all: {(result_reads + report_reads + report_writes) / n:.4f} per result")  # fmt: skip
    print(f"    bytes written: {written:,} = {written / final:.1f}x the final report (target <= 50x); "
          f"retries {sum(b['retries'] for b in log.batches)}")  # fmt: skip
    print(f"    final report: {final:,} bytes ({final / 1e6:.1f} MB), {n:,} rows")
    print(f"    report.html: {pages} pages written, {page_bytes:,} bytes ({page_bytes / max(1, written):.2f}x the "
          f"report bytes written), last {log.batches[-1]['page_bytes']:,} bytes")
    return final


def naive(storage: Storage, keys: list[str]) -> dict:
    """One result at a time: read it, read the report, merge, rewrite the report."""
    report_key = f"{RUN}/{REPORT}"
    written, sizes = 0, []
    started = time.perf_counter()
    for key in keys:
        record = json.loads(storage.read(key))
        found = storage.read_versioned(report_key)
        body, etag = found if found is not None else (None, None)
        report = load_report(body, RUN)
        merge_rows(report["rows"], [record])
        new_body = dump_report(report)
        assert storage.replace(report_key, new_body, etag)
        written += len(new_body)
        sizes.append(len(new_body))
    return {"seconds": time.perf_counter() - started, "written": written, "sizes": sizes}


def bench_s3(bodies: dict[str, bytes]) -> None:
    with moto_server() as endpoint:
        os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                          AWS_DEFAULT_REGION=REGION)  # fmt: skip
        s3_client(endpoint).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        started = time.perf_counter()
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, body in bodies.items():  # setup, not measured: straight into moto's backend
            backend.put_object(BUCKET, f"{PREFIX}/{key}", body)
        print(f"[moto S3] {len(bodies):,} results put into moto's backend in {time.perf_counter() - started:.1f} s (setup)")
        storage = open_storage(f"s3://{BUCKET}/{PREFIX}")
        run_aggregator("moto S3", storage, list(bodies))


def bench_local(bodies: dict[str, bytes], naive_count: int) -> None:
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="bench-aggregate-", dir=base) as workdir:
        keys = list(bodies)[:naive_count]
        ours, plain = LocalStorage(Path(workdir) / "ours"), LocalStorage(Path(workdir) / "naive")
        for storage in (ours, plain):
            for key in keys:
                storage.write(key, bodies[key])
        where = f"local directory on {'tmpfs ' if base else ''}{workdir}"
        print(f"[local] {where}, the first {len(keys):,} results")
        run_aggregator("local", ours, keys)
        before = plain.stats.as_dict()
        measured = naive(plain, keys)
        after = plain.stats.as_dict()
        n, written, final = len(keys), measured["written"], measured["sizes"][-1]
        gets, puts = after["gets"] - before["gets"], after["puts"] - before["puts"]
        print(f"[local] naive: {n:,} results, {measured['seconds']:.1f} s")
        print(f"    S3-equivalent requests: {n:,} result GETs; report: {gets - n:,} GETs + {puts:,} PUTs = "
              f"{(gets - n + puts) / n:.2f} per result; all: {(gets + puts) / n:.2f} per result")  # fmt: skip
        print(f"    bytes written: {written:,} = {written / final:.0f}x the final report ({final:,} bytes)")
        total = len(bodies)
        if n < total and n >= 2:
            # The report grows by a fixed size per row (uniform records): size(k) = a + b*k.
            half = n // 2  # past the first rows, whose summary still grows new categories
            slope = (measured["sizes"][-1] - measured["sizes"][half - 1]) / (n - half)
            intercept = measured["sizes"][-1] - slope * n
            projected = sum(intercept + slope * k for k in range(1, total + 1))
            final_projected = intercept + slope * total
            seconds = measured["seconds"] * projected / written
            print(f"    projected to all {total:,} results: {3 * total:,} requests ({2 * total:,} on the report), "
                  f"~{projected / 1e9:.1f} GB written = ~{projected / final_projected:,.0f}x the final report "
                  f"(~{final_projected / 1e6:.1f} MB), ~{seconds / 60:.0f} min")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_047, help="results (default 10,047)")
    parser.add_argument("--naive-results", type=int, default=2000, help="results for the local comparison (default 2,000)")
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    args = parser.parse_args()
    bodies = results(args.n)
    size = sum(map(len, bodies.values())) / len(bodies)
    print(f"N = {args.n:,} results, {size:,.0f} bytes each on average; batches of {BATCH:,} messages")
    if not args.skip_s3:
        bench_s3(bodies)
    if not args.skip_local:
        bench_local(bodies, min(args.naive_results, args.n))


if __name__ == "__main__":
    main()
