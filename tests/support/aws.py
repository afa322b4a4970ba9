"""moto's AWS on 127.0.0.1, in this process (so tests can still reach its internals)."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import requests
from moto.s3.responses import S3Response

from titiler_cmr_compatibility.sample.server import LocalHTTPServer, Request, Response, substring_matcher
from moto.server import ThreadedMotoServer

REGION = "us-west-2"


@contextmanager
def moto_server() -> Iterator[str]:
    """A ThreadedMotoServer; yields its endpoint URL. Any credentials are accepted."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)  # moto's state is per process, not per server
    try:
        yield endpoint
    finally:
        server.stop()


@contextmanager
def moto_process() -> Iterator[str]:
    """moto in a process of its own (S3 and SQS, whose notifications it delivers itself);
    yields its endpoint URL. Its CPU is then not this process's, which measures its own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def atomic_s3_put() -> Iterator[None]:
    """moto checks If-Match/If-None-Match, then writes: two threads can both pass the check.
    Real S3 is atomic; make moto so (in this process, which is where moto_server() runs), so a
    concurrency test exercises our retries and not moto's race. The check and the write both
    live in S3Response.put_object (the backend's put_object only writes), so that is the method
    to serialise."""
    lock = threading.Lock()
    original = S3Response.put_object

    def put_object(self):
        with lock:
            return original(self)

    S3Response.put_object = put_object
    try:
        yield
    finally:
        S3Response.put_object = original


def s3_client(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def upload_tree(endpoint: str, root: Path) -> list[str]:
    """Every file under `root/<bucket>/<key>` into moto as s3://<bucket>/<key> (buckets created)."""
    client = s3_client(endpoint)
    urls = []
    for bucket_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        client.create_bucket(Bucket=bucket_dir.name, CreateBucketConfiguration={"LocationConstraint": REGION})
        for path in sorted(p for p in bucket_dir.rglob("*") if p.is_file()):
            key = path.relative_to(bucket_dir).as_posix()
            client.upload_file(str(path), bucket_dir.name, key)
            urls.append(f"s3://{bucket_dir.name}/{key}")
    return urls


def point_boto3_at(monkeypatch, endpoint: str) -> str:
    """boto3's own configuration chain (and every child process, e.g. Lithops workers) pointed
    at moto, as a Lambda's would be at AWS. Returns the endpoint."""
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return endpoint


def sqs_events(keys: list[str], bucket: str, root: str, batch: int) -> list[dict]:
    """Lambda SQS events of `batch` messages, each the S3 ObjectCreated notification of one key
    (`root` + key in `bucket`), as the stack's event source mapping delivers them."""
    events = []
    for start in range(0, len(keys), batch):
        records = []
        for key in keys[start : start + batch]:
            body = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
                                 "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0",
                                 "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                                 "object": {"key": quote_plus(root + key), "size": 1200}}}]}  # fmt: skip
            records.append({"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": json.dumps(body),
                            "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                            "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:results", "awsRegion": REGION})  # fmt: skip
        events.append({"Records": records})
    return events


class FlakyS3(LocalHTTPServer):
    """moto behind a proxy that fails like S3 on a bad day, in the two ways that matter to a
    writer: `fail_next(status=503)` refuses a request before it reaches S3 (SlowDown), and
    `lose_answer_next` lets the write land and then answers 500, as when the connection breaks
    after S3 has stored the object. Anything else is passed through unchanged."""

    _HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "date", "server", "content-type"}

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self._losses: list[list] = []  # [matcher, remaining]
        self.lost_answers = 0

    def lose_answer_next(self, n: int, path_contains: str) -> None:
        with self._lock:
            self._losses.append([substring_matcher(path_contains), n])

    def handle(self, request: Request) -> Response:
        headers = {name: value for name, value in request.headers.items() if name.lower() not in ("host", "content-length")}
        answer = requests.request(request.method, self.upstream + request.target, headers=headers,
                                  data=request.body, timeout=60)  # fmt: skip
        if request.method == "PUT" and self._take_loss(request):
            return Response(500, b"<Error><Code>InternalError</Code></Error>", {}, "application/xml")
        kept = {name: value for name, value in answer.headers.items() if name.lower() not in self._HOP_BY_HOP}
        return Response(answer.status_code, answer.content, kept, answer.headers.get("Content-Type"))

    def _take_loss(self, request: Request) -> bool:
        with self._lock:
            for loss in self._losses:
                if loss[1] > 0 and loss[0](request):
                    loss[1] -= 1
                    self.lost_answers += 1
                    return True
        return False
