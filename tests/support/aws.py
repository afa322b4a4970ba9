"""moto's AWS on 127.0.0.1, in this process (so tests can still reach its internals)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import logging

import boto3
import requests
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
