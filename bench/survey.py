"""Benchmark of the local survey at the earlier survey's scale (numbers, not a test).

1. setup: a fake CMR holding one collection per row of the published 2025-11-24 table (10,047
   real concept ids, providers, formats, granule counts); CMR requests (target ceil(N/2000)),
   wall time, and marker writes per second next to a bare write loop of the same N objects in
   the same run (same 32 threads), on a local directory and on moto S3;
2. the pending scan of 10,047 markers with half the results present: list requests, seconds;
3. compiling 10,047 results into the report (JSON, CSV, Parquet): seconds, bytes written;
4. a local survey of 200 collections through Lithops localhost: collections per minute;
5. with --latency DATA,CMR (repeatable): the same survey with every data and CMR request
   answered that many seconds late, today's path (4 collections a call, one check at a time)
   and the new one (--batch-size, --concurrency checks at once) in the same run: collections per
   minute, CPU seconds per check, peak RSS, waves, whether verdicts and bytes read are the same,
   and each path's Lambda GB-seconds per collection modelled from the measured check durations.

    .venv/bin/python bench/survey.py               # everything (moto makes S3 slow: ~5 min)
    .venv/bin/python bench/survey.py --skip-s3     # local directory only
    .venv/bin/python bench/survey.py --throughput 96 --latency 0,0 --latency 0.5,1.5
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
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


KINDS = [
    lambda d, i: (files.netcdf4_grid(d, f"grid{i}.nc"), ("netCDF-4",)),
    lambda d, i: (files.cog(d, f"cog{i}.tif", size=512), ("COG",)),
    lambda d, i: (files.netcdf4_grid(d, f"group{i}.nc", group="g"), ("netCDF-4",)),
    lambda d, i: (files.netcdf4_swath(d, f"swath{i}.nc"), ("netCDF-4",)),
    lambda d, i: (files.text_file(d, f"table{i}.txt"), ("ASCII",)),
    lambda d, i: (files.zip_archive(d, f"archive{i}.zip"), ("ZIP",)),
    lambda d, i: (files.hdfeos5_grid(d, f"eos{i}.he5"), ("HDF-EOS5",)),
    lambda d, i: (files.netcdf4_grid(d, f"packed{i}.nc", packed=True), ("netCDF-4",)),
]


class ProcessWatch:
    """This process's descendants (the Lithops runners and the checks they fork), sampled every
    0.3 s: the largest single process (RSS), the most memory all held at one moment (the sum of
    their PSS, which counts pages the forked checks share with their runner once), and the CPU
    seconds they used (each runner's own and its reaped checks')."""

    def __init__(self):
        import threading

        self.largest_mb = self.total_mb = 0.0
        self._cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values())

    def _watch(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.3):
            largest = total = 0
            for process in me.children(recursive=True):
                try:
                    with process.oneshot():
                        memory = process.memory_full_info()
                        times = process.cpu_times()
                except psutil.Error:
                    continue
                largest, total = max(largest, memory.rss), total + memory.pss
                self._cpu[process.pid] = times.user + times.system + times.children_user + times.children_system
            self.largest_mb = max(self.largest_mb, largest / 2**20)
            self.total_mb = max(self.total_mb, total / 2**20)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def bench_throughput(count: int, workdir: Path, data_latency: float = 0.0, cmr_latency: float = 0.0,
                     batch_size: int = 4, concurrency: int = 1, label: str = "today") -> dict:
    """A real local survey: Lithops localhost, real checks of generated files over HTTP, with
    every data and CMR request answered after the given latency."""
    templates = [make(workdir, index) for index, make in enumerate(KINDS)]
    with FakeCMR([], {}, strict=False) as cmr, DataServer() as data:
        world = World(cmr, data)
        for index in range(count):
            path, formats = templates[index % len(templates)]
            world.publish(path, name=f"{index}-{path.name}", formats=formats)
        store = workdir / f"throughput-store-{label}-{data_latency}"
        survey = Survey(open_storage(store), RUN)
        client = CMRClient(world.settings())
        survey.setup(client.search_collections(providers=client.eosdis_providers()))
        data.add_latency(data_latency)
        cmr.add_latency(cmr_latency)
        data.reset_stats()
        values = {**worker_settings(world.settings()), "check_concurrency": concurrency}
        with lithops_executor("localhost") as executor, ProcessWatch() as watch:
            started = time.monotonic()
            waves = survey.run_loop(executor, values, batch_size=batch_size)
            seconds = time.monotonic() - started
        report, _ = survey.compile_report()
        rows = report["rows"]
        outcome = {
            "label": label, "per_minute": count / seconds * 60, "seconds": seconds, "waves": len(waves),
            "cpu_per_check": watch.cpu_seconds / count, "largest_mb": watch.largest_mb, "total_mb": watch.total_mb,
            # By file name: each world numbers its concept ids on from the last one's.
            "verdicts": {row["data_url"].rsplit("/", 1)[-1]: (row["tiling_compatible"], row["incompatible_reason"],
                                                             row["bytes_read"]) for row in rows.values()},
            "check_seconds": sum(row["duration_s"] for row in rows.values()) / len(rows),
        }  # fmt: skip
        print(f"[{label}: batch {batch_size}, {concurrency} at once; latency data {data_latency:g} s, CMR {cmr_latency:g} s] "
              f"{count} collections in {seconds:.1f} s: {outcome['per_minute']:,.0f} collections/min, "
              f"{len(waves)} wave(s), {outcome['cpu_per_check']:.2f} CPU s per check (workers and their checks), "
              f"peak: largest process {outcome['largest_mb']:,.0f} MB RSS, all at once {outcome['total_mb']:,.0f} MB PSS; "
              f"outcomes {dict(Counter(row['incompatible_reason'] or 'compatible' for row in rows.values()))}")  # fmt: skip
        return outcome


def import_seconds() -> float:
    """What a fresh worker process pays before its first check: importing the check's engines."""
    import subprocess

    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import titiler_cmr_compatibility.check"], check=True)
    return time.monotonic() - started


def lambda_gb_seconds(memory_mb: int, batch_size: int, concurrency: int, check_seconds: float, start: float) -> float:
    """A worker call's billed GB-seconds per collection: its memory for its start and its checks,
    `concurrency` at a time, each taking what the same checks took here."""
    return memory_mb / 1024 * (start + math.ceil(batch_size / concurrency) * check_seconds) / batch_size


def compare_paths(count: int, workdir: Path, latencies: list[tuple[float, float]], batch_size: int, concurrency: int,
                  check_memory_mb: int) -> None:
    """Today's path (batch 4, one check at a time) and the new one, at each latency, same run;
    and what each would cost in Lambda, modelled from the checks' measured durations."""
    from titiler_cmr_compatibility.serverless import WORKER_BASE_MB

    start = import_seconds()
    today_memory = Settings.model_fields["lithops_runtime_memory"].default
    new_memory = WORKER_BASE_MB + concurrency * check_memory_mb
    print(f"a fresh worker imports the engines in {start:.1f} s (paid by every Lithops localhost call, and by a "
          f"Lambda worker's cold start)")  # fmt: skip
    for data_latency, cmr_latency in latencies:
        today = bench_throughput(count, workdir, data_latency, cmr_latency)
        new = bench_throughput(count, workdir, data_latency, cmr_latency, batch_size, concurrency, label="new")
        same = today["verdicts"] == new["verdicts"]
        print(f"    new / today: x{new['per_minute'] / today['per_minute']:.2f} collections per minute; "
              f"same verdicts and bytes read: {same}")  # fmt: skip
        old_cost = lambda_gb_seconds(today_memory, 4, 1, today["check_seconds"], start)
        new_cost = lambda_gb_seconds(new_memory, batch_size, concurrency, new["check_seconds"], start)
        print(f"    Lambda (modelled): today {today_memory} MB, batch 4, one at a time, {today['check_seconds']:.2f} s a check: "
              f"{old_cost:.2f} GB-s per collection; new {new_memory} MB ({WORKER_BASE_MB} + {concurrency} x {check_memory_mb}), "
              f"batch {batch_size}, {concurrency} at a time, {new['check_seconds']:.2f} s a check: {new_cost:.2f} GB-s "
              f"per collection: x{new_cost / old_cost:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--throughput", type=int, default=200, help="collections in the local survey")
    parser.add_argument("--latency", action="append", default=[], metavar="DATA,CMR",
                        help="seconds per data and per CMR request for a today/new comparison (repeatable), "
                             "e.g. 0,0 0.1,0.3 0.5,1.5")
    parser.add_argument("--batch-size", type=int, default=16, help="the new path's collections per call")
    parser.add_argument("--concurrency", type=int, default=8, help="the new path's checks at once per call")
    parser.add_argument("--check-memory", type=int, default=320, help="MB per check for the new path's Lambda model")
    args = parser.parse_args()
    if args.latency:
        with tempfile.TemporaryDirectory() as tmp:
            latencies = [tuple(float(part) for part in pair.split(",")) for pair in args.latency]
            compare_paths(args.throughput, Path(tmp), latencies, args.batch_size, args.concurrency, args.check_memory)
        return
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
