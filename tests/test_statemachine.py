"""The real statemachine/survey.asl.json, executed by moto's Step Functions engine, with the real
Lambda handlers run in-process, moto S3/SQS, the fake CMR and data host, and Lithops localhost
standing in for aws_lambda. The report is built by the aggregator from the SQS messages moto
delivered for each new result.json."""

from __future__ import annotations

import importlib.util
import io
import json
import queue
import time
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import requests
from moto.awslambda.models import LambdaFunction

from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.serverless import launch_step
from titiler_cmr_compatibility.settings import get_settings
from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import RESULT, Survey
from tests.support.aws import REGION, moto_server, point_boto3_at
from tests.support.workers import CRASH_MARK, crash_always, crash_first_attempt

ROOT = Path(__file__).resolve().parents[1]
ASL = ROOT / "statemachine" / "survey.asl.json"
STEPS = ("setup", "launch", "progress", "finalize")
BUCKET, PREFIX = "survey-bucket", "compat"


def load_handler(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_app", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def lambda_context(name: str) -> SimpleNamespace:
    return SimpleNamespace(function_name=name, memory_limit_in_mb=1024, aws_request_id=str(uuid.uuid4()),
                           invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{name}")  # fmt: skip


class AWS:
    """moto's AWS for one test: clients, the survey bucket wired to a queue, the state machine."""

    def __init__(self, endpoint: str, monkeypatch, cmr_url: str):
        self.endpoint = endpoint
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
        self.s3, self.sqs, self.sfn, self.awslambda, self.iam = (
            session.client(name, endpoint_url=endpoint) for name in ("s3", "sqs", "stepfunctions", "lambda", "iam")
        )
        environment = {
            "SURVEY_STORE": f"s3://{BUCKET}/{PREFIX}", "CMR_URL": cmr_url, "ACCESS_TYPE": "external",
            "LITHOPS_BACKEND": "localhost", "CHECK_TIMEOUT": "60", "MAX_ATTEMPTS": "3", "BATCH_SIZE": "1",
        }  # fmt: skip
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        self.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.queue_url = self.sqs.create_queue(QueueName="results")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": "result.json"}]}},
        }]})  # fmt: skip
        self.invocations: queue.Queue = queue.Queue()
        self.handlers = {name: load_handler(name) for name in STEPS}
        self.handlers["aggregate"] = load_handler("aggregate")
        role = self.iam.create_role(RoleName="steps", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]  # fmt: skip
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "def handler(event, context):\n    return event\n")
        arns = {}
        for name in STEPS:
            arns[f"{name.capitalize()}FunctionArn"] = self.awslambda.create_function(
                FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": archive.getvalue()}
            )["FunctionArn"]
        definition = ASL.read_text()
        for key, arn in arns.items():
            definition = definition.replace("${" + key + "}", arn)
        sfn_role = self.iam.create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        self.machine = self.sfn.create_state_machine(name="survey", definition=definition, roleArn=sfn_role)["stateMachineArn"]

    def run(self, execution_input: dict, timeout: float = 600) -> dict:
        name = f"run-{uuid.uuid4().hex[:8]}"
        arn = self.sfn.start_execution(stateMachineArn=self.machine, name=name, input=json.dumps(execution_input))["executionArn"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.serve_invocations()
            description = self.sfn.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING":
                events = self.sfn.get_execution_history(executionArn=arn)["events"]
                description["failures"] = [
                    {key: value for key, value in event.items() if key.endswith("FailedEventDetails")}
                    for event in events if "Failed" in event["type"]
                ]  # fmt: skip
                return description
        raise TimeoutError("the execution did not finish")

    def serve_invocations(self, wait: float = 0.2) -> None:
        """Run the Lambda invocations moto's engine asked for, here in the main thread: Lithops
        installs signal handlers, which Python allows only there (as in a real Lambda)."""
        try:
            handler, payload, reply = self.invocations.get(timeout=wait)
        except queue.Empty:
            return
        try:
            reply.put((json.dumps(handler(payload)), False))
        except Exception as error:
            reply.put((json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}), True))

    def drain_into_aggregator(self) -> int:
        """Feed every message moto delivered to the aggregator, as SQS would (batches of 10)."""
        delivered = 0
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return delivered
            event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                                  "eventSource": "aws:sqs"} for m in messages]}  # fmt: skip
            answer = self.handlers["aggregate"](event, lambda_context("aggregate"))
            assert answer == {"batchItemFailures": []}
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])  # fmt: skip
            delivered += len(messages)


@pytest.fixture
def aws(world, monkeypatch):
    with moto_server() as endpoint:
        port = endpoint.rsplit(":", 1)[1]
        point_boto3_at(monkeypatch, endpoint)
        monkeypatch.setenv("MOTO_PORT", port)  # how moto's Step Functions engine reaches its Lambda
        requests.post(f"{endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=10)
        harness = AWS(endpoint, monkeypatch, world.cmr.search_url)
        launch_worker = {"worker": None}

        def invoke(self, event=None):
            """moto's seam for running a function: the real handler, in this process."""
            name = self.function_name
            payload = event if isinstance(event, dict) else json.loads(event or "{}")
            if name == "launch" and launch_worker["worker"] is not None:
                handler = lambda p: launch_step(p, get_settings(), worker=launch_worker["worker"])  # noqa: E731
            else:
                handler = lambda p: harness.handlers[name](p, lambda_context(name))  # noqa: E731
            reply: queue.Queue = queue.Queue()
            harness.invocations.put((handler, payload, reply))
            body, errored = reply.get(timeout=900)
            return body, errored, ""

        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)
        harness.launch_worker = launch_worker
        yield harness
    get_settings.cache_clear()


def survey_of(aws, run: str) -> Survey:
    return Survey(open_storage(f"s3://{BUCKET}/{PREFIX}"), run)


def publish_collections(world, tmp_path, count: int = 3, crash: bool = False) -> list[str]:
    ids = [world.publish(files.netcdf4_grid(tmp_path, f"grid{i}.nc")) for i in range(count - 1)]
    ids.append(world.publish(files.text_file(tmp_path, f"table{count}.txt"), formats=("ASCII",)))
    if crash:
        ids.append(world.publish(files.netcdf4_grid(tmp_path, "crash.nc"), provider="TEST" + CRASH_MARK))
    return ids


def test_survey_succeeds_and_the_aggregator_builds_the_report(aws, world, tmp_path):
    ids = publish_collections(world, tmp_path)
    description = aws.run({"run": "sfn-1", "poll_seconds": 0})
    assert description["status"] == "SUCCEEDED", description
    output = json.loads(description["output"])
    assert output["collections"] == output["results"] == 3 and output["terminal"] == 0
    survey = survey_of(aws, "sfn-1")
    scan = survey.scan()
    assert scan.markers == scan.results == set(ids)
    assert aws.drain_into_aggregator() >= 3  # one event per result.json, maybe more (redelivery-safe)
    report = survey.load_report()
    assert set(report["rows"]) == set(ids)
    rebuilt = survey.compile_report()[0]
    assert rebuilt["rows"] == report["rows"]  # `survey report --rebuild` gives the same report
    for extension in ("csv", "parquet"):
        assert aws.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/sfn-1/report/report.{extension}")["ContentLength"] > 0


def test_a_worker_failing_once_is_taken_by_the_reprocess_loop(aws, world, tmp_path):
    ids = publish_collections(world, tmp_path, crash=True)
    aws.launch_worker["worker"] = crash_first_attempt
    description = aws.run({"run": "sfn-2", "poll_seconds": 0})
    assert description["status"] == "SUCCEEDED", description
    survey = survey_of(aws, "sfn-2")
    crashing = ids[-1]
    assert json.loads(survey.storage.read(survey.key(crashing, RESULT)))["tiling_compatible"] is True
    assert survey.scan().attempts[crashing] == 2


def test_a_rerun_with_the_same_run_id_processes_only_what_is_pending(aws, world, tmp_path):
    first_ids = publish_collections(world, tmp_path)
    assert aws.run({"run": "sfn-3", "poll_seconds": 0})["status"] == "SUCCEEDED"
    survey = survey_of(aws, "sfn-3")
    before = {cid: survey.storage.read(survey.key(cid, RESULT)) for cid in first_ids}
    added = world.publish(files.netcdf4_grid(tmp_path, "late.nc"))
    description = aws.run({"run": "sfn-3", "poll_seconds": 0})
    assert description["status"] == "SUCCEEDED"
    scan = survey.scan()
    assert scan.results == set(first_ids) | {added}
    for concept_id, body in before.items():
        assert survey.storage.read(survey.key(concept_id, RESULT)) == body
        assert scan.attempts[concept_id] == 1
    assert scan.attempts[added] == 1


def test_a_worker_failing_every_time_ends_with_terminal_records(aws, world, tmp_path):
    ids = publish_collections(world, tmp_path, crash=True)
    aws.launch_worker["worker"] = crash_always
    description = aws.run({"run": "sfn-4", "poll_seconds": 0, "max_attempts": 2})
    assert description["status"] == "SUCCEEDED", description
    output = json.loads(description["output"])
    assert output["terminal"] == 1 and output["results"] == len(ids)
    survey = survey_of(aws, "sfn-4")
    terminal = json.loads(survey.storage.read(survey.key(ids[-1], RESULT)))
    assert terminal["incompatible_reason"] == Reason.PROCESSING_FAILED
    assert "after 2 attempts" in terminal["error_message"]
    aws.drain_into_aggregator()
    assert survey.load_report()["rows"][ids[-1]]["incompatible_reason"] == Reason.PROCESSING_FAILED


def test_no_credential_travels_to_the_workers():
    """Workers get parameter names and settings, never a token, password or key."""
    from titiler_cmr_compatibility.serverless import lithops_config, worker_settings
    from titiler_cmr_compatibility.settings import Settings

    settings = Settings(_env_file=None, earthdata_token="tok-secret-1", earthdata_password="pw-secret-2",
                        earthdata_username="alice", earthdata_token_parameter="/compat/token")  # fmt: skip
    payload = json.dumps([worker_settings(settings, "direct"), lithops_config(settings)])
    assert "tok-secret-1" not in payload and "pw-secret-2" not in payload
    assert worker_settings(settings, "direct")["earthdata_token_parameter"] == "/compat/token"
    assert lithops_config(settings)["aws_lambda"]["remote_invoker"] is True
