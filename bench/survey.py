"""Benchmark of the local survey at the earlier survey's scale (numbers, not a test).

1. setup: a fake CMR holding one collection per row of the published 2025-11-24 table (10,047
   real concept ids, providers, formats, granule counts); CMR requests (target ceil(N/2000)),
   wall time, and marker writes per second next to a bare write loop of the same N objects in
   the same run (same 32 threads), on a local directory and on moto S3;
2. the pending scan of 10,047 markers with half the results present: list requests, seconds;
3. compiling 10,047 results into the report (JSON, CSV, Parquet): seconds, bytes written;
4. a local survey of 200 collections through Lithops localhost: collections per minute.

    .venv/bin/python bench/survey.py               # everything (moto makes S3 slow: ~5 min)
    .venv/bin/python bench/survey.py --skip-s3     # local directory only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from titiler_cmr_compatibility.cmr import MAX_PAGE_SIZE, CMRClient  # noqa: E402
from titiler_cmr_compatibility.formats import Backend  # noqa: E402
from titiler_cmr_compatibility.result import CheckResult, Reason  # noqa: E402
from titiler_cmr_compatibility.sample import files  # noqa: E402
from titiler_cmr_compatibility.sample.cmr import FakeCMR, make_collection  # noqa: E402
from titiler_cmr_compatibility.sample.data import DataServer  # noqa: E402
from titiler_cmr_compatibility.settings import Settings  # noqa: E402
from titiler_cmr_compatibility.storage import Storage, open_storage  # noqa: E402
from titiler_cmr_compatibility.survey import MARKER, RESULT, Survey, lithops_executor, worker_settings  # noqa: E402
from titiler_cmr_compatibility.umm import CollectionInfo  # noqa: E402
from tests.support.aws import REGION, moto_server, s3_client  # noqa: E402
from tests.support.fixtures import fixtures_dir  # noqa: E402
from tests.support.world import World  # noqa: E402

RUN = "2025-11"
THREADS = 32


def survey_scale_records() -> list[dict]:
    """One synthetic UMM-C item per row of the published survey table."""
    table = pq.read_table(fixtures_dir() / "survey" / "tiling_results-11-24-2025.parquet").to_pylist()
    records = []
    for row in table:
        concept_id = row["collection_concept_id"]
        name, _, version = (row["collection_short_name_and_version"] or f"{concept_id}.1").rpartition(".")
        fmt = (row["format"] or "").strip()
        records.append(make_collection(
            concept_id, name or concept_id, version=version or "1", provider=concept_id.rsplit("-", 1)[1],
            formats=(fmt,) if fmt else (), granule_count=int(row["num_granules"] or 1),
            processing_level=row["processing_level"],
        ))  # fmt: skip
    return records


def bare_writes(storage: Storage, markers: dict[str, CollectionInfo]) -> float:
    """The same markers written without the survey: serialise and put, 32 threads."""
    started = time.monotonic()
    if storage.location.startswith("s3://"):
        bucket, _, prefix = storage.location[5:].partition("/")
        client = storage.client  # the same client settings, so only the survey's code differs

        def put(item):
            body = json.dumps(item[1].to_marker()).encode()
            client.put_object(Bucket=bucket, Key=f"{prefix}/bare/{item[0]}".lstrip("/"), Body=body)
    else:
        root = Path(storage.location) / "bare"

        def put(item):
            path = root / item[0]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(json.dumps(item[1].to_marker()).encode())

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(put, markers.items()))
    return time.monotonic() - started


def bench_setup_scan_compile(label: str, storage: Storage, cmr_url: str, records: list[dict]) -> None:
    n = len(records)
    survey = Survey(storage, RUN)
    client = CMRClient(Settings(_env_file=None, cmr_url=cmr_url))
    providers = client.eosdis_providers()
    before = client.requests_made
    stats = survey.setup(client.search_collections(providers=providers))
    searches = client.requests_made - before
    bare = bare_writes(storage, {survey.key(r["meta"]["concept-id"], MARKER): CollectionInfo.from_umm(r) for r in records})
    print(f"[{label}] setup of {n:,} collections: {searches} CMR search requests (target ceil(N/2000) = "
          f"{math.ceil(n / MAX_PAGE_SIZE)}; the predecessor made {math.ceil(n / 100)}); {stats.seconds:.1f} s in all "
          f"({stats.listing_seconds:.1f} s listing); marker writes {stats.created / stats.writing_seconds:,.0f}/s, "
          f"bare write loop {n / bare:,.0f}/s: ours take {stats.writing_seconds / bare:.2f}x the bare time")  # fmt: skip

    results = {}
    for index, concept_id in enumerate(sorted(r["meta"]["concept-id"] for r in records)):
        result = CheckResult(collection_concept_id=concept_id, checked_at="2026-11-27T00:00:00+00:00",
                             data_center="PODAAC", format_family="netCDF-4", processing_level="3")  # fmt: skip
        if index % 7:
            result.fail(Reason.UNSUPPORTED_FORMAT, "text/ASCII file; metadata format: 'ASCII'")
        else:
            result.tiling_compatible, result.backend, result.variable = True, Backend.XARRAY, "sst"
        results[survey.key(concept_id, RESULT)] = json.dumps(result.to_record()).encode()
    keys = list(results)

    def write_results(selected: list[str]) -> None:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda key: storage.write(key, results[key]), selected))

    write_results(keys[::2])
    lists_before = storage.stats.lists
    started = time.monotonic()
    scan = survey.scan()
    print(f"[{label}] pending scan: {len(scan.markers):,} markers, {len(scan.results):,} results, "
          f"{len(scan.pending):,} pending in {storage.stats.lists - lists_before} list requests, "
          f"{time.monotonic() - started:.2f} s")  # fmt: skip

    write_results(keys[1::2])
    started = time.monotonic()
    report, written = survey.compile_report()
    print(f"[{label}] compile of {len(report['rows']):,} results: {time.monotonic() - started:.1f} s, "
          f"{written:,} bytes written (report.json + .csv + .parquet)")  # fmt: skip


def bench_throughput(count: int, workdir: Path) -> None:
    """A real local survey: Lithops localhost, real checks of generated files over HTTP."""
    kinds = [
        lambda d, i: (files.netcdf4_grid(d, f"grid{i}.nc"), ("netCDF-4",)),
        lambda d, i: (files.cog(d, f"cog{i}.tif", size=512), ("COG",)),
        lambda d, i: (files.netcdf4_grid(d, f"group{i}.nc", group="g"), ("netCDF-4",)),
        lambda d, i: (files.netcdf4_swath(d, f"swath{i}.nc"), ("netCDF-4",)),
        lambda d, i: (files.text_file(d, f"table{i}.txt"), ("ASCII",)),
        lambda d, i: (files.zip_archive(d, f"archive{i}.zip"), ("ZIP",)),
        lambda d, i: (files.hdfeos5_grid(d, f"eos{i}.he5"), ("HDF-EOS5",)),
        lambda d, i: (files.netcdf4_grid(d, f"packed{i}.nc", packed=True), ("netCDF-4",)),
    ]
    templates = [make(workdir, index) for index, make in enumerate(kinds)]
    with FakeCMR([], {}, strict=False) as cmr, DataServer() as data:
        world = World(cmr, data)
        for index in range(count):
            path, formats = templates[index % len(templates)]
            world.publish(path, name=f"{index}-{path.name}", formats=formats)
        survey = Survey(open_storage(workdir / "throughput-store"), RUN)
        client = CMRClient(world.settings())
        survey.setup(client.search_collections(providers=client.eosdis_providers()))
        executor = lithops_executor("localhost")
        started = time.monotonic()
        waves = survey.run_loop(executor, worker_settings(world.settings()), batch_size=4)
        seconds = time.monotonic() - started
        report, _ = survey.compile_report()
        compatible = report["summary"]["compatible"]
        print(f"[local survey] {count} collections through Lithops localhost in {seconds:.1f} s: "
              f"{count / seconds * 60:,.0f} collections/min ({len(waves)} wave(s), {compatible} compatible)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--throughput", type=int, default=200, help="collections in the local survey")
    args = parser.parse_args()
    records = survey_scale_records()
    with tempfile.TemporaryDirectory() as tmp, FakeCMR(records, {}, strict=False) as cmr:
        bench_setup_scan_compile("local directory", open_storage(Path(tmp) / "store"), cmr.search_url, records)
        if not args.skip_s3:
            import os

            with moto_server() as endpoint:
                os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                                   "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION})  # fmt: skip
                s3_client(endpoint).create_bucket(Bucket="survey", CreateBucketConfiguration={"LocationConstraint": REGION})
                bench_setup_scan_compile("moto S3", open_storage("s3://survey/compat"), cmr.search_url, records)
        bench_throughput(args.throughput, Path(tmp))


if __name__ == "__main__":
    main()
