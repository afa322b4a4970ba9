"""The S3-event aggregator, against moto's S3 and SQS: real bucket notifications to a queue,
messages read back with receive_message and handed to the handler as Lambda would."""

from __future__ import annotations

import importlib.util
import json
import queue
import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from titiler_cmr_compatibility import aggregate as aggregate_module
from titiler_cmr_compatibility import metrics
from titiler_cmr_compatibility.aggregate import (
    Message,
    ReportWriteError,
    aggregate,
    handle_sqs_event,
    parse_sqs_event,
    store_key,
)
from titiler_cmr_compatibility.result import CheckResult, Reason
from titiler_cmr_compatibility.settings import get_settings
from titiler_cmr_compatibility.storage import S3Storage, open_storage
from titiler_cmr_compatibility.survey import REPORT, RESULT, Survey
from tests.support.aws import REGION, atomic_s3_put, moto_server, point_boto3_at, s3_client

ROOT = Path(__file__).resolve().parents[1]
RUN = "2026-11"
# quote_plus changes all of these: "/" -> %2F, " " -> "+", "=" -> %3D, "+" -> %2B
PREFIX = "survey store/env=test"


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(moto_endpoint, monkeypatch):
    """boto3's own configuration chain pointed at moto, as the Lambda's would be at AWS."""
    return point_boto3_at(monkeypatch, moto_endpoint)


class Wired:
    """A bucket whose new `*result.json` objects are announced on an SQS queue, and the survey
    store under PREFIX in it."""

    def __init__(self, endpoint: str, prefix: str = PREFIX):
        self.bucket = f"survey-{uuid.uuid4().hex[:12]}"
        self.s3 = s3_client(endpoint)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION,
                                aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.queue_url = self.sqs.create_queue(QueueName=f"results-{self.bucket}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(Bucket=self.bucket, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "result.json"}]}},
        }]})  # fmt: skip
        self.location = f"s3://{self.bucket}/{prefix}"
        self.storage = open_storage(self.location)

    def put_result(self, record: dict, run: str = RUN) -> str:
        key = f"{run}/collections/{record['collection_concept_id']}/{RESULT}"
        self.storage.write(key, json.dumps(record).encode())
        return key

    def receive(self) -> list[dict]:
        """Every message on the queue, taken off it (the test holds them from then on).

        Deleted as soon as received: moto's receive costs time proportional to the messages the
        queue holds (visible or not) for each message it returns."""
        messages = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
        ).get("Messages", []):
            messages += batch
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])  # fmt: skip
        return messages

    def report(self, run: str = RUN) -> dict | None:
        return Survey(self.storage, run).load_report()


def sqs_event(messages: list[dict]) -> dict:
    """A Lambda SQS event holding these receive_message messages."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
        "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:results", "awsRegion": REGION,
    } for m in messages]}  # fmt: skip


def deliver(wired: Wired, messages: list[dict], batch: int = 10, storage=None) -> list[str]:
    """Hand the messages to the handler in batches; the ids it reported as failed."""
    failed = []
    for start in range(0, len(messages), batch):
        answer = handle_sqs_event(sqs_event(messages[start : start + batch]), storage or wired.storage, get_settings())
        failed += [item["itemIdentifier"] for item in answer["batchItemFailures"]]
    return failed


def is_test_event(message: dict) -> bool:
    return json.loads(message["Body"]).get("Event") == "s3:TestEvent"


def result(concept_id: str, checked_at: str = "2026-11-27T00:00:00+00:00", reason: Reason | None = None, **fields) -> dict:
    record = CheckResult(collection_concept_id=concept_id, checked_at=checked_at, data_center="PODAAC",
                         format_family="netCDF-4", **fields)  # fmt: skip
    if reason:
        record.fail(reason, f"{reason.value} at {checked_at}")
    else:
        record.tiling_compatible = True
    return record.to_record()


REASONS = [None, Reason.UNSUPPORTED_FORMAT, Reason.NO_XY_DIMENSIONS, Reason.TIMEOUT, Reason.FORBIDDEN]


def some_results(count: int, first: int = 1000) -> list[dict]:
    return [result(f"C{first + i}-PROV{i % 3}", reason=REASONS[i % len(REASONS)]) for i in range(count)]


def oracle(wired: Wired, run: str = RUN) -> dict:
    """The report compiled from every result.json, by the survey's own rebuild."""
    return Survey(wired.storage, run).compile_report()[0]


# --- the report built from the events moto delivered --------------------------------------------


def test_report_from_delivered_events_equals_the_compiled_report(aws_env):
    wired = Wired(aws_env)
    records = some_results(23) + [result("C7-POCLOUD", reason=Reason.DECODE_ERROR)]
    for record in records:
        wired.put_result(record)
    for record in some_results(4, first=5000):
        wired.put_result(record, run="2026-12")  # a second run in the same batches: its own report
    wired.storage.write(f"{RUN}/collections/C1000-PROV0/.marker", b"{}")  # not announced (suffix filter)
    open_storage(f"s3://{wired.bucket}/elsewhere").write(f"{RUN}/collections/C1-X/{RESULT}", b"{}")  # not ours
    messages = wired.receive()
    assert is_test_event(messages[0]) and len(messages) == 1 + 24 + 4 + 1
    assert "survey+store%2Fenv%3Dtest%2F" in messages[1]["Body"]  # URL-encoded by S3 (moto)

    wired.storage.write(f"{RUN}/setup.json", json.dumps({"collections": 30}).encode())  # as setup writes it
    assert deliver(wired, messages) == []

    for run, count in ((RUN, 24), ("2026-12", 4)):
        report = wired.report(run)
        # The page of the report the aggregator wrote, beside it (before the oracle rewrites both).
        page = wired.storage.read(f"{run}/report/report.html").decode()
        assert all(f'"{concept_id}"' in page for concept_id in report["rows"])
        assert ('"pending":6' in page) == (run == RUN)
        expected = oracle(wired, run)  # (rewrites report.json: read ours first)
        assert len(report["rows"]) == count
        assert report["rows"] == expected["rows"]
        assert report["summary"] == expected["summary"]
        assert report["run"] == run
    assert "C7-POCLOUD" in wired.report()["rows"]


def test_the_test_event_is_skipped(aws_env):
    wired = Wired(aws_env)
    messages = wired.receive()
    assert len(messages) == 1 and is_test_event(messages[0])
    assert parse_sqs_event(sqs_event(messages)) == [Message(messages[0]["MessageId"])]
    assert deliver(wired, messages) == []
    assert wired.storage.stats.as_dict() == {"gets": 0, "puts": 0, "lists": 0, "deletes": 0}  # nothing to merge
    assert wired.storage.read(f"{RUN}/{REPORT}") is None


def test_keys_are_decoded_and_mapped_to_the_store():
    body = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {
        "key": "survey+store%2Fenv%3Dtest%2F2026-11%2Fcollections%2FC1%2Bx-P%2Fresult.json"}}}]}  # fmt: skip
    others = {"Records": [
        {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "2026-11%2Fsurvey.json"}}},
        {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "a%2Fresult.json"}}},
    ]}  # fmt: skip
    event = {"Records": [{"messageId": "m1", "body": json.dumps(body)}, {"messageId": "m2", "body": json.dumps(others)}]}
    assert parse_sqs_event(event) == [
        Message("m1", ("survey store/env=test/2026-11/collections/C1+x-P/result.json",), "b"),
        Message("m2"),  # not a result, and a removal: nothing to do, not a failure
    ]
    storage = S3Storage("b", PREFIX, client=object())
    key = "survey store/env=test/2026-11/collections/C1+x-P/result.json"
    assert store_key(storage, "b", key) == "2026-11/collections/C1+x-P/result.json"
    assert store_key(storage, "other-bucket", key) is None
    assert store_key(storage, "b", "survey store/2026-11/collections/C1/result.json") is None  # another prefix
    assert store_key(storage, "b", f"{PREFIX}/2026-11/collections/C1/attempts/result.json") is None
    assert store_key(storage, "b", f"{PREFIX}/2026-11/report/result.json") is None


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", json.dumps({"Service": "Amazon S3"}), json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
     json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": 7}}}]}),
     None],
    ids=["text", "list", "no-records", "no-s3", "key-not-str", "no-body"],
)  # fmt: skip
def test_poison_bodies(body):
    [message] = parse_sqs_event({"Records": [{"messageId": "m", "body": body}]})
    assert message.poison and message.keys == ()


def test_an_event_without_message_ids_is_refused():
    with pytest.raises(ValueError):
        parse_sqs_event({"Records": [{"body": "{}"}]})
    with pytest.raises(ValueError):
        parse_sqs_event({"detail": {}})


# --- duplicates, order, failures ----------------------------------------------------------------


def test_duplicate_and_out_of_order_delivery_change_nothing(aws_env):
    wired = Wired(aws_env)
    wired.put_result(result("C1-A", "2026-11-01T00:00:00+00:00", Reason.TIMEOUT))
    first = wired.receive()
    wired.put_result(result("C1-A", "2026-11-03T00:00:00+00:00"))  # a newer check of the same collection
    for record in some_results(12):
        wired.put_result(record)
    messages = first + wired.receive()
    expected_rows = None

    for seed in range(3):
        shuffled = messages + random.Random(seed).sample(messages, 6)  # some delivered twice in one batch
        random.Random(seed).shuffle(shuffled)
        assert deliver(wired, shuffled, batch=5) == []
        report = wired.report()
        if expected_rows is None:
            expected_rows = report["rows"]
            assert report["rows"]["C1-A"]["tiling_compatible"] is True  # the newest check won
        assert report["rows"] == expected_rows

    # A whole batch delivered again: one report read, no write.
    body, etag = wired.storage.read_versioned(f"{RUN}/{REPORT}")
    stats = aggregate(wired.storage, RUN, [f"{RUN}/collections/C1-A/{RESULT}"])
    assert (stats.report_reads, stats.report_writes, stats.bytes_written) == (1, 0, 0)
    assert wired.storage.read_versioned(f"{RUN}/{REPORT}") == (body, etag)
    assert expected_rows == oracle(wired)["rows"]


def test_a_poison_message_is_reported_alone(aws_env):
    wired = Wired(aws_env)
    good = [wired.put_result(record) for record in some_results(5)]
    wired.storage.write(f"{RUN}/collections/C666-BAD/{RESULT}", b"\x00 not json")  # announced, unreadable
    wired.put_result(result("C777-GONE"))
    wired.storage.delete(f"{RUN}/collections/C777-GONE/{RESULT}")  # vanished since its event
    messages = wired.receive()
    poison = [
        {"MessageId": "poison-text", "ReceiptHandle": "r1", "Body": "garbage", "MD5OfBody": ""},
        {"MessageId": "poison-shape", "ReceiptHandle": "r2", "Body": json.dumps({"Records": [{"s3": {}}]}), "MD5OfBody": ""},
    ]  # fmt: skip
    bad = next(m["MessageId"] for m in messages if "C666-BAD" in m["Body"])
    batch = messages[:3] + poison[:1] + messages[3:] + poison[1:]

    assert sorted(deliver(wired, batch, batch=len(batch))) == sorted(["poison-text", "poison-shape", bad])
    report = wired.report()
    assert sorted(report["rows"]) == sorted(key.split("/")[2] for key in good)  # the rest merged


def test_when_the_report_cannot_be_written_every_message_fails(aws_env, monkeypatch):
    monkeypatch.setattr(aggregate_module, "BACKOFF_BASE", 0.0)
    wired = Wired(aws_env)
    for record in some_results(4):
        wired.put_result(record)
    messages = wired.receive()
    attempts = []

    def always_lost(key, body, etag):  # another writer always got there first
        attempts.append(key)
        return False

    storage = open_storage(wired.location)
    storage.replace = always_lost
    ids = [m["MessageId"] for m in messages if not is_test_event(m)]
    assert deliver(wired, messages, batch=len(messages), storage=storage) == ids  # all 4; not the TestEvent
    assert len(attempts) == aggregate_module.DEFAULT_MAX_ATTEMPTS
    with pytest.raises(ReportWriteError) as raised:
        aggregate(storage, RUN, [f"{RUN}/collections/C1000-PROV0/{RESULT}"], max_attempts=3)
    assert (raised.value.stats.report_reads, raised.value.stats.report_writes, raised.value.stats.retries) == (3, 3, 2)
    # Delivered again once S3 behaves, they all merge.
    assert deliver(wired, messages, batch=len(messages)) == []
    assert len(wired.report()["rows"]) == 4


def test_aggregate_refuses_keys_of_another_run(aws_env):
    wired = Wired(aws_env)
    with pytest.raises(ValueError):
        aggregate(wired.storage, RUN, [f"2026-12/collections/C1/{RESULT}"])


CONTEXT = SimpleNamespace(function_name="aggregate", memory_limit_in_mb=1024, aws_request_id="r-1",
                          invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:aggregate")  # fmt: skip


@pytest.fixture
def lambda_app(monkeypatch):
    """functions/aggregate/app.py as Lambda loads it; set SURVEY_STORE (and the rest) first."""
    get_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("aggregate_app", ROOT / "functions" / "aggregate" / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    yield app
    get_settings.cache_clear()


def test_the_lambda_handler(aws_env, monkeypatch, lambda_app):
    wired = Wired(aws_env)
    for record in some_results(3):
        wired.put_result(record)
    monkeypatch.setenv("SURVEY_STORE", wired.location)
    assert lambda_app.handler(sqs_event(wired.receive()), CONTEXT) == {"batchItemFailures": []}
    assert len(wired.report()["rows"]) == 3


# --- the metrics the Lambda prints (CloudWatch EMF) ---------------------------------------------

NAMESPACE, SERVICE = "titiler-cmr-compat/test-stack", "titiler-cmr-compatibility"


def emf_documents(printed: str) -> list[dict]:
    """The EMF documents among the lines printed (the Logger's lines are JSON too)."""
    documents = []
    for line in printed.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    return documents


def metric_values(documents: list[dict]) -> dict[tuple[str, tuple], float]:
    """(metric name, ((dimension, value), ...) of the document's first dimension set) -> the
    values summed, checking each document's shape on the way."""
    values: dict[tuple[str, tuple], float] = {}
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE and document["service"] == SERVICE
        dimensions = directive["Dimensions"]
        # the document's dimensions, and the same without the run (all runs together)
        assert dimensions[0][-1] == "service" and all(set(s) <= set(dimensions[0]) for s in dimensions)
        if metrics.RUN in dimensions[0]:
            assert sorted(map(sorted, dimensions)) == sorted([sorted(dimensions[0]), sorted(set(dimensions[0]) - {metrics.RUN})])
        else:
            assert dimensions == [["service"]]
        key = tuple((name, document[name]) for name in dimensions[0] if name != "service")
        for metric in directive["Metrics"]:
            assert metric["Unit"] == "Count"
            (value,) = document[metric["Name"]]
            values[metric["Name"], key] = values.get((metric["Name"], key), 0) + value
    return values


def run_key(run: str, reason: str | None = None) -> tuple:
    return ((metrics.RUN, run),) + (((metrics.REASON, reason),) if reason else ())


@pytest.fixture
def emf_env(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
    for name in ("POWERTOOLS_DEV", "POWERTOOLS_METRICS_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def test_the_handler_prints_what_each_batch_merged_as_metrics(aws_env, monkeypatch, emf_env, lambda_app, capsys):
    wired = Wired(aws_env)
    monkeypatch.setenv("SURVEY_STORE", wired.location)
    records = some_results(10) + [result("C9-POCLOUD", reason=Reason.PROCESSING_FAILED)]
    for record in records:
        wired.put_result(record)
    for record in some_results(2, first=5000):  # another run in the same batch
        wired.put_result(record, run="2026-12")
    wired.storage.write(f"{RUN}/collections/C666-BAD/{RESULT}", b"\x00 not json")  # announced, unreadable
    poison = {"MessageId": "poison", "ReceiptHandle": "r", "Body": "garbage", "MD5OfBody": ""}
    first = wired.receive() + [poison]
    printed = []

    def deliver_to_lambda(messages: list[dict]) -> dict:
        capsys.readouterr()
        answer = lambda_app.handler(sqs_event(messages), CONTEXT)
        printed.append(metric_values(emf_documents(capsys.readouterr().out)))
        return answer

    answer = deliver_to_lambda(first)
    assert len(answer["batchItemFailures"]) == 2  # the poison message and the unreadable result
    reasons = Counter(r["incompatible_reason"] for r in records if not r["tiling_compatible"])
    assert reasons == {"unsupported_format": 2, "no_xy_dimensions": 2, "timeout": 2, "forbidden": 2, "processing_failed": 1}
    assert printed[0] == {
        (metrics.CHECKED, run_key(RUN)): 11, (metrics.RECHECKED, run_key(RUN)): 0,
        (metrics.COMPATIBLE, run_key(RUN)): 2, (metrics.INCOMPATIBLE, run_key(RUN)): 9,
        (metrics.FAILED_CHECKS, run_key(RUN)): 3,  # the two timeouts, processing_failed
        **{(metrics.REASON_METRIC, run_key(RUN, reason)): count for reason, count in reasons.items()},
        (metrics.CHECKED, run_key("2026-12")): 2, (metrics.RECHECKED, run_key("2026-12")): 0,
        (metrics.COMPATIBLE, run_key("2026-12")): 1, (metrics.INCOMPATIBLE, run_key("2026-12")): 1,
        (metrics.FAILED_CHECKS, run_key("2026-12")): 0,
        (metrics.REASON_METRIC, run_key("2026-12", "unsupported_format")): 1,
        (metrics.FAILED_MESSAGES, ()): 2,
    }  # fmt: skip

    # Delivered again: nothing enters the reports, so nothing is counted; the failures fail again.
    deliver_to_lambda(first)
    assert {key: value for key, value in printed[1].items() if value} == {(metrics.FAILED_MESSAGES, ()): 2}
    assert not [key for key in printed[1] if len(key[1]) == 2]  # no document by reason

    # Newer checks of two collections (a re-run's retries), and an older one, which loses.
    by_id = {record["collection_concept_id"]: record for record in records}
    assert by_id["C1003-PROV0"]["incompatible_reason"] == "timeout"
    assert by_id["C1001-PROV1"]["incompatible_reason"] == "unsupported_format"
    wired.put_result(result("C1003-PROV0", "2026-11-28T00:00:00+00:00"))
    wired.put_result(result("C1001-PROV1", "2026-11-28T00:00:00+00:00", Reason.FORBIDDEN))
    wired.put_result(result("C1002-PROV2", "2026-11-01T00:00:00+00:00"))
    assert deliver_to_lambda(wired.receive()) == {"batchItemFailures": []}
    assert {key: value for key, value in printed[2].items() if value} == {
        (metrics.RECHECKED, run_key(RUN)): 2, (metrics.COMPATIBLE, run_key(RUN)): 1,
        (metrics.INCOMPATIBLE, run_key(RUN)): -1, (metrics.REASON_METRIC, run_key(RUN, "timeout")): -1,
        (metrics.REASON_METRIC, run_key(RUN, "unsupported_format")): -1,
        (metrics.REASON_METRIC, run_key(RUN, "forbidden")): 1,
    }  # fmt: skip

    # Summed over the batches, the metrics are each run's report.
    total: Counter = Counter()
    for batch in printed:
        total.update(batch)  # (a mapping: negative counts are added too)
    for run in (RUN, "2026-12"):
        summary = wired.report(run)["summary"]
        assert total[metrics.CHECKED, run_key(run)] == summary["collections"] == len(wired.report(run)["rows"])
        assert total[metrics.COMPATIBLE, run_key(run)] == summary["compatible"]
        assert total[metrics.INCOMPATIBLE, run_key(run)] == summary["collections"] - summary["compatible"]
        by_reason = {dimensions[1][1]: value for (name, dimensions), value in total.items()
                     if len(dimensions) == 2 and dimensions[0] == (metrics.RUN, run) and value}  # fmt: skip
        assert by_reason == {reason: counts["collections"] for reason, counts in summary["by_reason"].items()
                             if reason != "compatible"}  # fmt: skip


def test_without_a_namespace_the_batch_is_merged_and_no_metric_printed(aws_env, monkeypatch, lambda_app, capsys, caplog):
    wired = Wired(aws_env)
    monkeypatch.setenv("SURVEY_STORE", wired.location)
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    for record in some_results(3):
        wired.put_result(record)
    assert lambda_app.handler(sqs_event(wired.receive()), CONTEXT) == {"batchItemFailures": []}
    assert len(wired.report()["rows"]) == 3
    assert emf_documents(capsys.readouterr().out) == []
    assert "metrics were not emitted" in caplog.text


# --- concurrency --------------------------------------------------------------------------------

RESULTS = 1000
AGGREGATORS = 4
BATCH = 25


class StatsLog:
    """A logger for handle_sqs_event that keeps each batch's numbers."""

    def __init__(self):
        self.batches: list[dict] = []
        self.lock = threading.Lock()

    def info(self, *args, extra=None, **kwargs):
        with self.lock:
            self.batches.append(extra["aggregate"])


def test_concurrent_aggregators_lose_nothing(aws_env):
    wired = Wired(aws_env)
    records = {r["collection_concept_id"]: r for r in some_results(RESULTS)}
    messages = []
    with ThreadPoolExecutor(16) as pool:
        for start in range(0, RESULTS, 100):  # drained as they come: moto's queue slows as it grows
            list(pool.map(wired.put_result, list(records.values())[start : start + 100]))
            messages += wired.receive()
    assert len(messages) == RESULTS + 1  # and the TestEvent
    random.Random(7).shuffle(messages)
    batches: queue.Queue = queue.Queue()
    for start in range(0, len(messages), BATCH):
        batches.put(messages[start : start + BATCH])
    count = batches.qsize()
    # Each aggregator's first report read waits for the others': the four first rounds race for
    # the same (absent) report, whatever the threads' timing. Later rounds race as they come.
    first_reads = threading.Barrier(AGGREGATORS, timeout=60)
    log = StatsLog()
    redelivered: list[int] = []

    def aggregator() -> None:
        storage = open_storage(wired.location)  # its own client, as another Lambda would have
        read_versioned = storage.read_versioned
        waited = []

        def gated(key):
            if not waited:
                waited.append(first_reads.wait())
            return read_versioned(key)

        storage.read_versioned = gated
        while True:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                return
            answer = handle_sqs_event(sqs_event(batch), storage, None, logger=log)
            failed = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
            if failed:  # every write of the report lost a race (a loaded machine): SQS redelivers
                redelivered.append(len(failed))
                batches.put([message for message in batch if message["MessageId"] in failed])

    with atomic_s3_put(), ThreadPoolExecutor(AGGREGATORS) as pool:
        for future in [pool.submit(aggregator) for _ in range(AGGREGATORS)]:
            future.result()

    report = wired.report()
    assert len(report["rows"]) == RESULTS
    assert report["rows"] == {cid: records[cid] for cid in sorted(records)}
    assert report["summary"]["collections"] == RESULTS
    assert len(log.batches) == count
    retries = sum(b["retries"] for b in log.batches)
    assert retries >= AGGREGATORS - 1  # the race was exercised (at least the first round's)
    merging = sum(1 for b in log.batches if b["results_read"])  # all but a batch holding only the TestEvent
    assert sum(b["report_writes"] for b in log.batches) == merging + retries  # one winning write per batch
    assert sum(b["results_read"] for b in log.batches) == RESULTS  # each result read once
