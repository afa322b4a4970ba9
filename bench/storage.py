"""Benchmark of the survey's storage: what `Storage.create` costs next to a bare write.

The survey writes one small JSON object per collection (~10,000) from a pool of threads, then
lists them all. For a local directory and for S3 (moto's ThreadedMotoServer, in this process),
this writes N objects of ~400 bytes from 32 threads: (a) with `Storage.create` (a conditional
put / a link(2) that refuses to overwrite), (b) with the bare call — boto3 `put_object` with the
same client settings, or `Path.write_bytes` after a `mkdir` — and prints objects per second and
the ratio ours/bare. For reference it also times `Storage.write` (unconditional), which
separates the wrapper's cost from the cost of the condition. Then it lists every key: requests
and seconds, next to the bare listing (boto3's paginator, or `Path.rglob`). Each write method
gets its own directory/bucket; a short warm-up goes first so no method pays for a cold start.

moto is slow and single-process (~100 PUTs/s here), so S3 numbers measure moto more than our
code; the ratio is what says whether the wrapper costs anything.

    .venv/bin/python bench/storage.py             # N = 10,047, the earlier survey's size
    .venv/bin/python bench/storage.py --n 1000    # quicker
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "layers"))

from titiler_cmr_compatibility.storage import LocalStorage, Storage, _s3_client, open_storage  # noqa: E402
from tests.support.aws import REGION, moto_server, s3_client  # noqa: E402

THREADS = 32
PREFIX = "2026-11/collections"


def objects(n: int) -> list[tuple[str, bytes]]:
    """N (key, body) pairs shaped like the survey's per-collection results (~400 bytes)."""
    out = []
    for i in range(n):
        concept = f"C{1_000_000_000 + i}-PROV{i % 13}"
        body = json.dumps(
            {
                "collection_concept_id": concept,
                "collection_short_name_and_version": f"SHORT_NAME_{i}___1",
                "concept_id": f"G{3_000_000_000 + i}-PROV{i % 13}",
                "data_center": f"PROV{i % 13}",
                "backend": "xarray",
                "format": "netCDF-4",
                "tiling_compatible": False,
                "incompatible_reason": "no_xy_dimensions",
                "error_message": "no variable has two dimensions titiler-cmr recognises as X/Y",
                "checked_at": "2026-11-27T12:00:00Z",
                "duration_s": 3.21,
            }
        ).encode()
        out.append((f"{PREFIX}/{concept}/result.json", body))
    return out


def timed(label: str, write: Callable[[tuple[str, bytes]], object], items: list[tuple[str, bytes]]) -> float:
    """Objects per second of `write` over `items` from THREADS threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(write, items))
    seconds = time.perf_counter() - start
    if any(outcome is False for outcome in outcomes):
        raise SystemExit(f"{label}: a create found its key already there")
    rate = len(items) / seconds
    print(f"  {label:<34} {len(items):>7,} objects {seconds:8.2f} s {rate:9,.0f} objects/s")
    return rate


def listing(label: str, storage: Storage, expected: int) -> None:
    before = storage.stats.lists
    start = time.perf_counter()
    count = sum(1 for _ in storage.list())
    seconds = time.perf_counter() - start
    assert count == expected, (count, expected)
    print(f"  {label:<34} {count:>7,} keys    {seconds:8.2f} s {storage.stats.lists - before:>5} list requests")


def bare_listing(label: str, list_keys: Callable[[], tuple[int, int]], expected: int) -> None:
    start = time.perf_counter()
    count, requests = list_keys()
    seconds = time.perf_counter() - start
    assert count == expected, (count, expected)
    print(f"  {label:<34} {count:>7,} keys    {seconds:8.2f} s {requests:>5} list requests")


def bench_local(items: list[tuple[str, bytes]], workdir: Path) -> None:
    print(f"local directory ({workdir}), {THREADS} threads")
    bare_root = workdir / "bare"

    def bare(item: tuple[str, bytes]) -> None:
        path = bare_root / item[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item[1])

    warm = LocalStorage(workdir / "warm-up")
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda item: warm.write(*item), items[:200]))
    storage = LocalStorage(workdir / "ours")
    plain = LocalStorage(workdir / "plain")
    bare_rate = timed("bare Path.write_bytes", bare, items)
    ours_rate = timed("LocalStorage.create", lambda item: storage.create(*item), items)
    print(f"  ratio ours/bare: {ours_rate / bare_rate:.2f}")
    timed("(reference) LocalStorage.write", lambda item: plain.write(*item), items)
    listing("LocalStorage.list", storage, len(items))

    def rglob() -> tuple[int, int]:
        return sum(1 for path in bare_root.rglob("*") if path.is_file()), 1

    bare_listing("bare Path.rglob + is_file", rglob, len(items))


def bench_s3(items: list[tuple[str, bytes]]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    with moto_server() as endpoint:
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION=REGION,
        )
        admin = s3_client(endpoint)
        for bucket in ("bench-ours", "bench-bare", "bench-plain", "bench-warm-up"):
            admin.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        print(f"S3 (moto ThreadedMotoServer in this process, {endpoint}), {THREADS} threads")
        client = _s3_client()  # the same pool and retry settings as ours: only the wrapper differs

        def bare(item: tuple[str, bytes]) -> None:
            client.put_object(Bucket="bench-bare", Key=f"survey/{item[0]}", Body=item[1])

        warm = open_storage("s3://bench-warm-up/survey")
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda item: warm.write(*item), items[:200]))
        storage = open_storage("s3://bench-ours/survey")
        plain = open_storage("s3://bench-plain/survey")
        bare_rate = timed("bare boto3 put_object", bare, items)
        ours_rate = timed("S3Storage.create (IfNoneMatch)", lambda item: storage.create(*item), items)
        print(f"  ratio ours/bare: {ours_rate / bare_rate:.2f}")
        timed("(reference) S3Storage.write", lambda item: plain.write(*item), items)
        listing("S3Storage.list", storage, len(items))

        def paginate() -> tuple[int, int]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket="bench-bare", Prefix="survey/")
            count = requests = 0
            for page in pages:
                requests += 1
                count += len(page.get("Contents", ()))
            return count, requests

        bare_listing("bare boto3 paginator", paginate, len(items))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_047, help="objects to write (default 10,047)")
    parser.add_argument("--skip-s3", action="store_true", help="only the local directory")
    parser.add_argument("--skip-local", action="store_true", help="only S3 (moto)")
    args = parser.parse_args()
    items = objects(args.n)
    size = sum(len(body) for _, body in items) / len(items)
    print(f"N = {args.n:,} objects, {size:.0f} bytes each on average, one directory/prefix per object")
    if not args.skip_local:
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as workdir:
            bench_local(items, Path(workdir))
    if not args.skip_s3:
        bench_s3(items)


if __name__ == "__main__":
    main()
