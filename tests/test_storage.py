"""The survey's storage: the same guarantees from a local directory and from S3 (moto)."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import cloudpickle
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from titiler_cmr_compatibility.storage import (
    LOCK_DIR,
    TMP_PREFIX,
    LocalStorage,
    S3Storage,
    Storage,
    etag_of,
    open_storage,
)
from tests.support.aws import REGION, FlakyS3, atomic_s3_put, moto_server, point_boto3_at, s3_client

COUNTER = "2026-11/counter.json"
INCREMENTS = 50
WORKERS = 4


@pytest.fixture(scope="module")
def moto_endpoint():
    """One in-process moto server for the module (each test gets its own bucket)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """boto3's own configuration chain pointed at moto, as Lithops workers would be."""
    return point_boto3_at(monkeypatch, moto_endpoint)


def new_bucket(endpoint: str) -> str:
    bucket = f"survey-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return bucket


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path) -> Storage:
    if request.param == "local":
        return open_storage(tmp_path / "survey")  # not created yet: the first write does it
    endpoint = request.getfixturevalue("aws_env")
    return open_storage(f"s3://{new_bucket(endpoint)}/runs/survey")


def test_round_trip(storage):
    storage.write("2026-11/collections/C1-POCLOUD/result.json", b'{"ok": true}')
    assert storage.read("2026-11/collections/C1-POCLOUD/result.json") == b'{"ok": true}'
    storage.write("2026-11/collections/C1-POCLOUD/result.json", b"{}")
    body, etag = storage.read_versioned("2026-11/collections/C1-POCLOUD/result.json")
    assert (body, etag) == (b"{}", etag_of(b"{}"))  # S3's single-part ETag is the hex MD5 too
    storage.write("empty", b"")
    assert storage.read("empty") == b""


def test_missing_key_reads_as_none(storage):
    assert storage.read("2026-11/nothing.json") is None
    assert storage.read_versioned("2026-11/nothing.json") is None
    storage.write("2026-11/a/b.json", b"1")
    assert storage.read("2026-11/a") is None  # a "directory" is no object
    assert storage.read("2026-11/a/b.json/c") is None


def test_create_only_once(storage):
    assert storage.create("2026-11/collections/C1-POCLOUD/.marker", b"first") is True
    assert storage.create("2026-11/collections/C1-POCLOUD/.marker", b"second") is False
    assert storage.read("2026-11/collections/C1-POCLOUD/.marker") == b"first"


def test_replace_is_a_compare_and_swap(storage):
    storage.write("k.json", b"v1")
    _, etag1 = storage.read_versioned("k.json")
    assert storage.replace("k.json", b"v2", etag1) is True
    _, etag2 = storage.read_versioned("k.json")
    assert storage.replace("k.json", b"v3", etag1) is False  # stale: v2 stays
    assert storage.read("k.json") == b"v2"
    assert storage.replace("k.json", b"v3", f'"{etag2}"') is True  # quoted ETags are fine too
    assert storage.read("k.json") == b"v3"


def test_replace_without_etag_only_creates(storage):
    storage.write("k.json", b"v1")
    assert storage.replace("k.json", b"v2", None) is False
    assert storage.read("k.json") == b"v1"
    assert storage.replace("new.json", b"n", None) is True
    assert storage.read("new.json") == b"n"


def test_replace_of_a_deleted_key_fails(storage):
    storage.write("k.json", b"v1")
    _, etag = storage.read_versioned("k.json")
    storage.delete("k.json")
    assert storage.replace("k.json", b"v2", etag) is False
    assert storage.read("k.json") is None


def test_delete(storage):
    storage.write("a/b.json", b"x")
    storage.delete("a/b.json")
    storage.delete("a/b.json")  # absent is fine
    storage.delete("never/was.json")
    assert storage.read("a/b.json") is None
    assert list(storage.list()) == []


def test_list_under_a_prefix(storage):
    keys = [
        "2026-11/collections/C2-LPCLOUD/.marker",
        "2026-11/collections/C1-POCLOUD/result.json",
        "2026-11/collections/C1-POCLOUD/.marker",
        "2026-11/collections-extra.json",
        "2026-11/summary.json",
        "2026-10/collections/C1-POCLOUD/.marker",
        "top.json",
    ]
    for key in keys:
        storage.write(key, b"{}")
    # The lock and temporary files of a local storage exist now; none may be listed.
    _, etag = storage.read_versioned("top.json")
    assert storage.replace("top.json", b"[]", etag)
    assert storage.list() is not None
    assert list(storage.list()) == sorted(keys)
    assert list(storage.list("2026-11/collections/")) == [
        "2026-11/collections/C1-POCLOUD/.marker",
        "2026-11/collections/C1-POCLOUD/result.json",
        "2026-11/collections/C2-LPCLOUD/.marker",
    ]
    # A string prefix, as on S3, not a directory.
    assert list(storage.list("2026-11/coll")) == [
        "2026-11/collections-extra.json",
        "2026-11/collections/C1-POCLOUD/.marker",
        "2026-11/collections/C1-POCLOUD/result.json",
        "2026-11/collections/C2-LPCLOUD/.marker",
    ]
    assert list(storage.list("2026-11/collections/C1-POCLOUD/.marker")) == ["2026-11/collections/C1-POCLOUD/.marker"]
    assert list(storage.list("2027")) == []
    assert list(storage.list("top.json/")) == []


def test_local_list_skips_locks_and_temporary_files(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.write("a/b.json", b"1")
    _, etag = storage.read_versioned("a/b.json")
    assert storage.replace("a/b.json", b"2", etag)
    assert (tmp_path / LOCK_DIR).is_dir()
    (tmp_path / "a" / f"{TMP_PREFIX}abandoned").write_bytes(b"half")  # a writer that died
    (tmp_path / f"{TMP_PREFIX}other").write_bytes(b"half")
    assert list(storage.list()) == ["a/b.json"]
    assert list(storage.list("a/")) == ["a/b.json"]
    # Writes leave no temporary files behind.
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{TMP_PREFIX}abandoned", "b.json"]


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "..", "../x", "a/../../x", "a/..", "./a", "a//b", "a/", "a\\..\\b",
     f"{LOCK_DIR}/000.lock", f"a/{TMP_PREFIX}x"],
)
def test_keys_that_could_escape_or_clash_are_refused(storage, key):
    for call in (
        lambda: storage.read(key),
        lambda: storage.read_versioned(key),
        lambda: storage.write(key, b"x"),
        lambda: storage.create(key, b"x"),
        lambda: storage.replace(key, b"x", None),
        lambda: storage.replace(key, b"x", "0" * 32),
        lambda: storage.delete(key),
    ):
        with pytest.raises(ValueError):
            call()
    if key not in ("", "a/"):  # "" and "a/" are fine list prefixes
        with pytest.raises(ValueError):
            list(storage.list(key))
    assert storage.stats.as_dict() == {"gets": 0, "puts": 0, "lists": 0, "deletes": 0}


def test_reopened_from_its_location(storage):
    storage.write("2026-11/x.json", b"42")
    again = open_storage(storage.location)
    assert type(again) is type(storage) and again.location == storage.location
    assert again.read("2026-11/x.json") == b"42"
    again.write("2026-11/y.json", b"43")
    assert storage.read("2026-11/y.json") == b"43"


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_pickles_as_its_location(storage, dumps):
    storage.write("x.json", b"1")
    blob = dumps(storage)
    assert len(blob) < 300  # the location string, not a client or a lock
    copy = pickle.loads(blob)
    assert type(copy) is type(storage) and copy.location == storage.location
    assert copy.read("x.json") == b"1"


def test_counters(storage):
    storage.write("a/1", b"1")  # puts 1
    storage.create("a/2", b"2")  # puts 2
    storage.create("a/2", b"2")  # puts 3 (lost, still a request)
    _, etag = storage.read_versioned("a/1")  # gets 1
    storage.replace("a/1", b"x", etag)  # puts 4
    storage.replace("a/1", b"y", etag)  # puts 5 (stale)
    storage.read("a/3")  # gets 2
    storage.delete("a/2")  # deletes 1
    assert list(storage.list("a/")) == ["a/1"]  # lists 1 (one page)
    assert storage.stats.as_dict() == {"gets": 2, "puts": 5, "lists": 1, "deletes": 1}


def test_counters_are_thread_safe(storage):
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: storage.read(f"missing/{i}"), range(200)))
    assert storage.stats.gets == 200


def test_open_storage_parses_locations(tmp_path, monkeypatch, aws_env):
    bucket_only = open_storage("s3://bucket")
    assert isinstance(bucket_only, S3Storage)
    assert (bucket_only.bucket, bucket_only.prefix, bucket_only.location) == ("bucket", "", "s3://bucket")
    prefixed = open_storage("s3://bucket/some/prefix/")
    assert (prefixed.bucket, prefixed.prefix, prefixed.location) == ("bucket", "some/prefix", "s3://bucket/some/prefix")

    monkeypatch.chdir(tmp_path)
    local = open_storage("relative/dir")
    assert isinstance(local, LocalStorage) and local.location == str(tmp_path / "relative" / "dir")
    assert not (tmp_path / "relative").exists()  # created on the first write, not on open
    local.write("k", b"v")
    assert (tmp_path / "relative" / "dir" / "k").read_bytes() == b"v"
    assert open_storage(f"file://{tmp_path}/relative/dir").read("k") == b"v"
    assert open_storage(Path("relative/dir")).location == local.location
    with pytest.raises(ValueError):
        open_storage("gs://bucket/prefix")
    with pytest.raises(ValueError):
        open_storage("s3:///prefix")
    with pytest.raises(ValueError):
        open_storage("s3://bucket/../x")


def test_s3_keys_live_under_the_prefix(aws_env):
    bucket = new_bucket(aws_env)
    client = s3_client(aws_env)
    open_storage(f"s3://{bucket}/runs/a").write("2026-11/x.json", b"1")
    open_storage(f"s3://{bucket}").write("top.json", b"2")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["runs/a/2026-11/x.json", "top.json"]
    assert list(open_storage(f"s3://{bucket}").list()) == ["runs/a/2026-11/x.json", "top.json"]
    assert list(open_storage(f"s3://{bucket}/runs").list()) == ["a/2026-11/x.json"]
    client.put_object(Bucket=bucket, Key="runs/a/folder/", Body=b"")  # a console's "folder"
    assert list(open_storage(f"s3://{bucket}/runs/a").list()) == ["2026-11/x.json"]


# --- S3 answers that moto does not give, through botocore's Stubber ---------------------------


def stubbed() -> tuple[S3Storage, Stubber]:
    client = boto3.client(
        "s3", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
        endpoint_url="http://127.0.0.1:9",  # never reached: the stubber answers
    )
    return S3Storage("bucket", "p", client=client), Stubber(client)


@pytest.mark.parametrize(
    ("code", "status"), [("PreconditionFailed", 412), ("ConditionalRequestConflict", 409)]
)
def test_s3_lost_races_are_false(code, status):
    storage, stub = stubbed()
    with stub:
        stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
        assert storage.create("k", b"x") is False
        stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
        assert storage.replace("k", b"x", "abc") is False
        stub.add_client_error("put_object", service_error_code="NoSuchKey", http_status_code=404)
        assert storage.replace("k", b"x", "abc") is False
    assert storage.stats.puts == 3


@pytest.mark.parametrize(
    ("code", "status"), [("AccessDenied", 403), ("NoSuchBucket", 404), ("InternalError", 500)]
)
def test_s3_other_errors_propagate(code, status):
    storage, stub = stubbed()
    with stub:
        for call in (lambda: storage.create("k", b"x"), lambda: storage.replace("k", b"x", "abc")):
            stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
            with pytest.raises(ClientError):
                call()


def test_s3_list_counts_pages_and_strips_the_prefix():
    storage, stub = stubbed()
    with stub:
        stub.add_response(
            "list_objects_v2",
            {"IsTruncated": True, "NextContinuationToken": "t1", "Contents": [{"Key": "p/a/1"}, {"Key": "p/a/2"}]},
            {"Bucket": "bucket", "Prefix": "p/a/", "MaxKeys": 1000},
        )
        stub.add_response(
            "list_objects_v2",
            {"IsTruncated": False, "Contents": [{"Key": "p/a/3"}]},
            {"Bucket": "bucket", "Prefix": "p/a/", "MaxKeys": 1000, "ContinuationToken": "t1"},
        )
        assert list(storage.list("a/")) == ["a/1", "a/2", "a/3"]
    assert storage.stats.lists == 2


# --- read-modify-replace under real concurrency -------------------------------------------------


def increment(storage: Storage, key: str, times: int, start: threading.Event | None = None) -> int:
    """Add 1 to a JSON counter `times` times, retrying each lost race; returns the attempts."""
    if start is not None:
        start.wait(60)
    attempts = 0
    for _ in range(times):
        while True:
            attempts += 1
            found = storage.read_versioned(key)
            value, etag = (json.loads(found[0])["n"], found[1]) if found else (0, None)
            if storage.replace(key, json.dumps({"n": value + 1}).encode(), etag):
                break
    return attempts


def _increment_in_a_process(storage: Storage, key: str, times: int, start) -> None:
    increment(storage, key, times, start)


def test_local_counter_across_processes(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.write(COUNTER, b'{"n": 0}')
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [
        context.Process(target=_increment_in_a_process, args=(storage, COUNTER, INCREMENTS, start))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    start.set()  # every process is up: they contend from the first increment
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * WORKERS
    assert json.loads(storage.read(COUNTER)) == {"n": WORKERS * INCREMENTS}


@pytest.fixture
def atomic_moto_put():
    with atomic_s3_put():
        yield


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_counter_across_threads(backend, tmp_path, request):
    if backend == "s3":
        request.getfixturevalue("atomic_moto_put")
        endpoint = request.getfixturevalue("aws_env")
        storage = open_storage(f"s3://{new_bucket(endpoint)}/runs")
    else:
        storage = LocalStorage(tmp_path)
    storage.write(COUNTER, b'{"n": 0}')
    start = threading.Event()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(increment, storage, COUNTER, INCREMENTS, start) for _ in range(WORKERS)]
        start.set()
        attempts = sum(future.result() for future in futures)
    assert json.loads(storage.read(COUNTER)) == {"n": WORKERS * INCREMENTS}
    assert attempts >= WORKERS * INCREMENTS
    assert storage.stats.puts == attempts + 1


@pytest.fixture
def flaky_s3(moto_endpoint):
    """An S3 storage whose requests pass a proxy that can refuse them or lose their answers."""
    bucket = new_bucket(moto_endpoint)
    with FlakyS3(moto_endpoint) as proxy:
        client = boto3.client("s3", endpoint_url=proxy.url, region_name=REGION, aws_access_key_id="test",
                              aws_secret_access_key="test",
                              config=Config(retries={"mode": "standard", "max_attempts": 5}))  # fmt: skip
        yield S3Storage(bucket, "runs", client=client), proxy, s3_client(moto_endpoint), bucket


def _objects(client, bucket: str) -> dict[str, bytes]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in listed}


def test_writes_land_exactly_once_through_slowdowns_and_lost_answers(flaky_s3):
    storage, proxy, direct, bucket = flaky_s3
    proxy.fail_next(2, status=503, path_contains="marker")
    assert storage.create("C1-P/marker.json", b"m1") is True
    proxy.lose_answer_next(1, "result")
    assert storage.create("C1-P/result.json", b"r1") is True  # its own first try landed
    proxy.lose_answer_next(1, "result")
    assert storage.create("C1-P/result.json", b"another") is False  # somebody else's result stays
    storage.write("report/report.csv", b"v0")
    _, etag = storage.read_versioned("report/report.json") or (None, None)
    proxy.lose_answer_next(1, "report.json")
    assert storage.replace("report/report.json", b"v1", etag) is True
    _, etag = storage.read_versioned("report/report.json")
    proxy.fail_next(1, status=500, path_contains="report.json")
    assert storage.replace("report/report.json", b"v2", etag) is True
    assert storage.replace("report/report.json", b"v3", etag) is False  # a stale etag still loses
    assert proxy.lost_answers == 3
    assert _objects(direct, bucket) == {
        "runs/C1-P/marker.json": b"m1", "runs/C1-P/result.json": b"r1",
        "runs/report/report.csv": b"v0", "runs/report/report.json": b"v2",
    }  # fmt: skip
