"""The serverless survey under AWS's limits: the real statemachine/survey.asl.json executed by
moto's Step Functions engine, the real steps run in-process, moto S3/SQS with real bucket
notifications, and Lithops' real aws_lambda executor whose Lambda Invoke is recorded instead of
sent. moto enforces none of AWS's limits; this harness does, and records every breach:

- an asynchronous Invoke payload over 256 KB is refused as Lambda refuses it (Lithops gets a
  413; the newer 1 MB limit is not relied on);
- a state document over 256 KiB entering or leaving a step fails that step with
  `States.DataLimitExceeded`;
- each step's modelled duration (its S3 and CMR requests at the latencies below, plus the CPU
  this process spent meanwhile, moto's share included) must stay within the function's timeout
  in template.yaml;
- the execution history must stay under 25,000 events;
- the aggregator's SQS batches stay within a synchronous Invoke's 6 MB, and its modelled
  duration within its timeout.

The recorded invocations are remote invokers (one per `map()`): the harness expands each into
its calls and runs them with the real worker (`survey.check_call`), optionally with a stub check
and with faults: calls that never start, workers that die mid-batch, and calls delivered twice
(Lambda's asynchronous retries).
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import logging
import queue
import random
import sys
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import cloudpickle
import requests
import yaml
from moto.awslambda.models import LambdaFunction

from titiler_cmr_compatibility import serverless
from titiler_cmr_compatibility.settings import get_settings
from titiler_cmr_compatibility.storage import open_storage

from .aws import REGION, moto_process, moto_server, point_boto3_at, sqs_events
from .world import loopback_environment

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "survey.asl.json"
TEMPLATE = ROOT / "template.yaml"
STEPS = {"setup": "SetupFunction", "launch": "LaunchFunction", "progress": "ProgressFunction",
         "finalize": "FinalizeFunction"}  # fmt: skip
FUNCTIONS = {**STEPS, "aggregate": "AggregateFunction"}
BUCKET, PREFIX = "survey-bucket", "compat"

log = logging.getLogger(__name__)

INVOKE_PAYLOAD_LIMIT = 256 * 1024  # bytes, asynchronous Invoke (the long-standing limit)
STATE_LIMIT = 256 * 1024  # bytes, Step Functions input/output of a state
SYNC_INVOKE_LIMIT = 6 * 1024 * 1024  # bytes, a synchronous Invoke (the aggregator's SQS batch)
HISTORY_LIMIT = 25_000  # events of a standard execution
S3_LATENCY = 0.05  # seconds per GET/PUT/DELETE (small objects, same region)
S3_LIST_LATENCY = 0.15  # seconds per LIST page of 1,000 keys
CMR_LATENCY = 3.0  # seconds per CMR search page (2,000 collections with granule counts)
POOL = 32  # the library's I/O threads: requests made off the step's thread overlap this much
POLL_CLOCK_STEP = 60.0  # simulated seconds between two progress polls


def load_handler(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def lambda_context(name: str) -> SimpleNamespace:
    return SimpleNamespace(function_name=name, memory_limit_in_mb=1024, aws_request_id=str(uuid.uuid4()),
                           invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}")  # fmt: skip


def function_timeouts() -> dict[str, int]:
    """Each function's Timeout in template.yaml (the function's own, else the Globals')."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load(TEMPLATE.read_text(), Loader=Loader)
    default = template["Globals"]["Function"]["Timeout"]
    return {name: template["Resources"][logical]["Properties"].get("Timeout", default) for name, logical in FUNCTIONS.items()}


class S3RequestCounter:
    """Counts S3 requests made in this process, split into those made by the step's own thread
    (sequential) and those made from pools (overlapping)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts: Counter = Counter()
        self.step_thread: int | None = None
        self._original = botocore.endpoint.Endpoint._send

    def __enter__(self) -> S3RequestCounter:
        counter = self

        def send(endpoint, request):
            if endpoint._endpoint_prefix == "s3":
                kind = "list" if request.method == "GET" and "list-type=" in request.url else "object"
                lane = "serial" if threading.get_ident() == counter.step_thread else "pooled"
                with counter.lock:
                    counter.counts[(lane, kind)] += 1
            return counter._original(endpoint, request)

        botocore.endpoint.Endpoint._send = send
        return self

    def __exit__(self, *exc: object) -> None:
        botocore.endpoint.Endpoint._send = self._original

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.counts)


@dataclass
class StepRecord:
    """One step invocation: its sizes, requests and modelled duration."""

    step: str
    input_bytes: int
    output_bytes: int = 0
    s3_requests: Counter = field(default_factory=Counter)
    cmr_requests: int = 0
    cpu_seconds: float = 0.0
    errored: bool = False

    @property
    def modelled_seconds(self) -> float:
        r = self.s3_requests
        serial = r[("serial", "object")] * S3_LATENCY + r[("serial", "list")] * S3_LIST_LATENCY
        pooled = (r[("pooled", "object")] * S3_LATENCY + r[("pooled", "list")] * S3_LIST_LATENCY) / POOL
        return serial + pooled + self.cmr_requests * CMR_LATENCY + self.cpu_seconds

    @property
    def total_s3_requests(self) -> int:
        return sum(self.s3_requests.values())


@dataclass
class Faults:
    """What goes wrong with worker calls, each with its probability (per call, per delivery)."""

    never_start: float = 0.0
    die_mid_batch: float = 0.0
    delivered_twice: float = 0.0
    seed: int = 7


class WorkerKilled(BaseException):
    """A worker that dies mid-batch (out of memory, timeout): nothing after it runs."""


@dataclass
class Invocation:
    payload_bytes: int
    calls: list[tuple[Callable, dict]]


class InvokeRecorder:
    """In place of Lithops' AWSLambdaBackend.invoke: measures each payload as Lambda would
    receive it, refuses it over the limit (HTTP 413, which Lithops raises), records the rest."""

    def __init__(self, bucket: str, limit: int = INVOKE_PAYLOAD_LIMIT):
        self.bucket = bucket
        self.limit = limit
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.sizes: list[int] = []
        self.refused: list[int] = []

    def install(self, monkeypatch) -> None:
        from lithops.serverless.backends.aws_lambda.aws_lambda import AWSLambdaBackend

        recorder = self

        def invoke(backend, runtime_name, runtime_memory, payload):
            body = json.dumps(payload, default=str)  # exactly what Lithops sends
            size = len(body.encode())
            if size > recorder.limit:
                recorder.refused.append(size)
                raise Exception(f"Error 413: {{\"Type\":\"User\",\"message\":\"Request must be smaller than "
                                f"{recorder.limit} bytes for the InvokeFunction operation\"}}")  # fmt: skip
            recorder.sizes.append(size)
            recorder.pending.put(Invocation(size, recorder.expand(json.loads(body))))
            return f"recorded-{uuid.uuid4()}"

        monkeypatch.setattr(AWSLambdaBackend, "invoke", invoke)

    def expand(self, payload: dict) -> list[tuple[Callable, dict]]:
        """The calls a remote invoker would start: the job's function (from storage, where
        Lithops put it) and each call's data (inline in the payload, as Lithops sent it)."""
        job = payload["job"]
        s3 = boto3.client("s3")
        stored = cloudpickle.loads(s3.get_object(Bucket=self.bucket, Key=job["func_key"])["Body"].read())
        assert not stored["module_data"], "modules travel with the job: workers must import the library instead"
        function = cloudpickle.loads(stored["func"])
        strings = job.get("data_byte_strs")
        assert strings is not None, "call data went to storage: the payload holds no call data"
        return [(function, cloudpickle.loads(ast.literal_eval(text))) for text in strings]


class SurveyHarness:
    """moto's AWS for one test or benchmark, wired like the stack, with the limits enforced."""

    def __init__(self, endpoint: str, storage_endpoint: str, monkeypatch, cmr, faults: Faults | None = None,
                 check: Callable | None = None, environment: dict[str, str] | None = None,
                 notifications: bool = True):  # fmt: skip
        self.endpoint = endpoint
        self.cmr = cmr
        self.faults = faults or Faults()
        self.random = random.Random(self.faults.seed)
        self.check = check
        self.now = time.time()
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        self.s3, self.sqs = (session.client(name, endpoint_url=storage_endpoint) for name in ("s3", "sqs"))
        self.sfn, self.awslambda, self.iam = (
            session.client(name, endpoint_url=endpoint) for name in ("stepfunctions", "lambda", "iam")
        )
        settings = {
            "SURVEY_STORE": f"s3://{BUCKET}/{PREFIX}", "CMR_URL": cmr.search_url, "ACCESS_TYPE": "external",
            **loopback_environment(),
            "CHECK_TIMEOUT": "60", "MAX_ATTEMPTS": "3", "BATCH_SIZE": "4",
            "LITHOPS_STORAGE_BUCKET": BUCKET, "LITHOPS_EXECUTION_ROLE": "arn:aws:iam::123456789012:role/workers",
            **(environment or {}),
        }  # fmt: skip
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        self.timeouts = function_timeouts()
        self.steps: list[StepRecord] = []
        self.violations: list[str] = []
        self.checked: Counter = Counter()  # (wave, concept id) -> checks started
        self.recorder = InvokeRecorder(BUCKET)
        self.recorder.install(monkeypatch)
        self.counter = S3RequestCounter().__enter__()
        self._wire_bucket(notifications)
        self._create_state_machine()
        self.invocations: queue.Queue = queue.Queue()
        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", self._invoke_seam())

    # ------------------------------------------------------------------ wiring

    def _wire_bucket(self, notifications: bool) -> None:
        """The bucket, and (unless `notifications` is False: moto's notifications make each
        result.json PUT ~7x slower, too slow at 60,000) its result.json events into a queue."""
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.aggregate = load_handler("aggregate")
        if not notifications:
            return
        # The stack's visibility timeout: a batch being gathered is not delivered again meanwhile.
        self.queue_url = self.sqs.create_queue(QueueName="results", Attributes={"VisibilityTimeout": "780"})["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "result.json"}]}},
        }]})  # fmt: skip

    def _create_state_machine(self) -> None:
        role = self.iam.create_role(RoleName="steps", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]  # fmt: skip
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "def handler(event, context):\n    return event\n")
        definition = ASL.read_text()
        for step, logical in STEPS.items():
            arn = self.awslambda.create_function(FunctionName=step, Runtime="python3.12", Role=role, Handler="app.handler",
                                                 Code={"ZipFile": archive.getvalue()})["FunctionArn"]  # fmt: skip
            definition = definition.replace("${" + logical + "Arn}", arn)
        sfn_role = self.iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.machine = self.sfn.create_state_machine(name="survey", definition=definition, roleArn=sfn_role)["stateMachineArn"]
        self.handlers = {step: load_handler(step) for step in STEPS}

    def deploy_runtime(self, memory: int | None = None, timeout: int | None = None) -> str:
        """What `lithops runtime deploy` leaves where the launcher looks: the runtime's metadata
        in the bucket, under the key Lithops derives from the runtime's name and memory."""
        import lithops
        from lithops.version import __version__

        settings = get_settings()
        executor = lithops.FunctionExecutor(config=serverless.lithops_config(settings), log_level=None)
        key = serverless.runtime_meta_key(executor, settings, memory)
        meta = {"lithops_version": __version__, "python_version": f"{sys.version_info.major}.{sys.version_info.minor}",
                "preinstalls": [], "runtime_timeout": timeout or settings.lithops_runtime_timeout}  # fmt: skip
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(meta).encode())
        return key

    # ------------------------------------------------------------------ the steps

    def clock(self) -> float:
        return self.now

    def _step_function(self, step: str) -> Callable[[dict], dict]:
        settings = get_settings()
        if step == "launch":
            return lambda event: serverless.launch_step(event, settings, clock=self.clock)
        if step == "progress":
            def poll(event: dict) -> dict:
                self.now += POLL_CLOCK_STEP
                return serverless.progress_step(event, settings, clock=self.clock)
            return poll
        return lambda event: self.handlers[step](event, lambda_context(step))

    def _invoke_seam(self):
        harness = self

        def invoke(function, event=None):
            """moto's seam for running a function: the step, in the harness's main thread
            (Lithops installs signal handlers, which Python allows only there, as in Lambda)."""
            payload = event if isinstance(event, dict) else json.loads(event or "{}")
            reply: queue.Queue = queue.Queue()
            harness.invocations.put((function.function_name, payload, reply))
            body, errored = reply.get(timeout=3600)
            return body, errored, ""

        return invoke

    def _serve(self, wait: float = 0.2) -> None:
        try:
            step, payload, reply = self.invocations.get(timeout=wait)
        except queue.Empty:
            return
        record = StepRecord(step, len(json.dumps(payload).encode()))
        self.steps.append(record)
        if record.input_bytes > STATE_LIMIT:
            self.violations.append(f"{step}: input state of {record.input_bytes:,} bytes")
            reply.put((json.dumps({"errorType": "States.DataLimitExceeded", "errorMessage": "state too large"}), True))
            return
        body, errored = self._measured(record, lambda: self._step_function(step)(payload))
        if record.output_bytes > STATE_LIMIT:
            self.violations.append(f"{step}: output state of {record.output_bytes:,} bytes")
            body, errored = json.dumps({"errorType": "States.DataLimitExceeded", "errorMessage": "state too large"}), True
        reply.put((body, errored))
        if step == "launch" and not errored:
            self.run_workers()

    def _measured(self, record: StepRecord, call: Callable[[], Any]) -> tuple[str, bool]:
        """Run one function invocation in this thread, recording its requests and CPU, and its
        modelled duration against the function's timeout."""
        before, cmr_before, cpu_before = self.counter.snapshot(), self.cmr.count(), time.process_time()
        self.counter.step_thread = threading.get_ident()
        try:
            body, errored = json.dumps(call()), False
        except Exception as error:
            log.exception("step %s failed", record.step)  # the traceback, which moto's history drops
            body, errored = json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}), True
        record.cpu_seconds = time.process_time() - cpu_before
        record.s3_requests = self.counter.snapshot() - before
        record.cmr_requests = self.cmr.count() - cmr_before
        record.output_bytes, record.errored = len(body.encode()), errored
        if record.modelled_seconds > self.timeouts[record.step]:
            self.violations.append(f"{record.step}: modelled {record.modelled_seconds:.0f} s against its "
                                   f"{self.timeouts[record.step]} s timeout")  # fmt: skip
        return body, errored

    # ------------------------------------------------------------------ the workers

    def run_workers(self, threads: int = 16) -> None:
        """Every call the recorded invocations carry, through the real worker, with faults."""
        calls = []
        while not self.recorder.pending.empty():
            calls += self.recorder.pending.get().calls
        deliveries = []
        for function, data in calls:
            roll = self.random.random()
            if roll < self.faults.never_start:
                continue
            roll -= self.faults.never_start
            dies_after = self.random.randrange(4) if roll < self.faults.die_mid_batch else None
            deliveries.append((function, data, dies_after))
            if self.random.random() < self.faults.delivered_twice:
                deliveries.append((function, data, None))
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda delivery: self._deliver(*delivery), deliveries))

    def _deliver(self, function, data: dict, dies_after: int | None) -> None:
        _location, _run, wave = function.args
        started = 0

        def check(concept_id: str, **kwargs):
            nonlocal started
            if dies_after is not None and started >= dies_after:
                raise WorkerKilled(concept_id)
            started += 1
            with self.counter.lock:
                self.checked[(wave, concept_id)] += 1
            if self.check is not None:
                return self.check(concept_id, **kwargs)
            from titiler_cmr_compatibility.check import check_collection

            return check_collection(concept_id, **kwargs)

        try:
            function(**data, check=check)
        except WorkerKilled:
            pass

    # ------------------------------------------------------------------ running

    def run(self, execution_input: dict, timeout: float = 600) -> dict:
        name = f"run-{uuid.uuid4().hex[:8]}"
        arn = self.sfn.start_execution(stateMachineArn=self.machine, name=name, input=json.dumps(execution_input))["executionArn"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._serve()
            description = self.sfn.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING":
                events = self._history(arn)
                description["events"] = len(events)
                if len(events) > HISTORY_LIMIT:
                    self.violations.append(f"execution history of {len(events):,} events")
                description["failures"] = [
                    {key: value for key, value in event.items() if key.endswith("FailedEventDetails")}
                    for event in events if "Failed" in event["type"]
                ]  # fmt: skip
                return description
        raise TimeoutError("the execution did not finish")

    def _history(self, arn: str) -> list[dict]:
        events, token = [], None
        while True:
            page = self.sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
            events += page["events"]
            token = page.get("nextToken")
            if not token:
                return events

    def drain_into_aggregator(self, batch: int = 1000) -> int:
        """Feed every message moto delivered to the aggregator in batches of up to `batch`, as
        the stack's event source mapping does (BatchSize 1000)."""
        delivered = 0
        while True:
            messages: list[dict] = []
            while len(messages) < batch:
                received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                if not received.get("Messages"):
                    break
                messages += received["Messages"]
            if not messages:
                return delivered
            event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                                  "eventSource": "aws:sqs"} for m in messages]}  # fmt: skip
            self._aggregate(event)
            for first in range(0, len(messages), 10):
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages[first:first + 10])])  # fmt: skip
            delivered += len(messages)

    def aggregate_every_result(self, run: str, batch: int = 1000) -> int:
        """Without notifications: the events S3 would have sent for every result.json of the run,
        fed to the aggregator in the event source mapping's batches."""
        keys = [k for k in open_storage(f"s3://{BUCKET}/{PREFIX}").list(f"{run}/collections/") if k.endswith("/result.json")]
        for event in sqs_events(keys, BUCKET, f"{PREFIX}/", batch):
            self._aggregate(event)
        return len(keys)

    def _aggregate(self, event: dict) -> None:
        record = StepRecord("aggregate", len(json.dumps(event).encode()))
        self.steps.append(record)
        if record.input_bytes > SYNC_INVOKE_LIMIT:
            self.violations.append(f"aggregate: a batch of {record.input_bytes:,} bytes")
        answer, errored = self._measured(record, lambda: self.aggregate(event, lambda_context("aggregate")))
        assert not errored and json.loads(answer) == {"batchItemFailures": []}, answer

    def close(self) -> None:
        self.counter.__exit__()

    # ------------------------------------------------------------------ numbers

    def largest(self, step: str | None = None) -> dict[str, Any]:
        steps = [s for s in self.steps if step is None or s.step == step]
        return {
            "invoke_payload": max(self.recorder.sizes, default=0),
            "state": max((max(s.input_bytes, s.output_bytes) for s in steps), default=0),
            "slowest": max(steps, key=lambda s: s.modelled_seconds / self.timeouts[s.step], default=None),
        }


def harness(monkeypatch, cmr, **options):
    """A context manager: moto on 127.0.0.1, boto3 (and child processes) pointed at it, and a
    SurveyHarness over it."""
    from contextlib import contextmanager

    @contextmanager
    def running():
        with moto_server() as endpoint, moto_process() as storage_endpoint:
            point_boto3_at(monkeypatch, endpoint)
            # S3 and SQS (whose messages S3's notifications deliver) in moto's own process, so
            # the CPU this process spends during a step is the step's (and its AWS clients').
            monkeypatch.setenv("AWS_ENDPOINT_URL_S3", storage_endpoint)
            monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", storage_endpoint)
            monkeypatch.setenv("MOTO_PORT", endpoint.rsplit(":", 1)[1])  # how moto's engine reaches its Lambda
            requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
            survey_harness = SurveyHarness(endpoint, storage_endpoint, monkeypatch, cmr, **options)
            try:
                yield survey_harness
            finally:
                survey_harness.close()
                get_settings.cache_clear()

    return running()
