"""The real statemachine/survey.asl.json, executed by moto's Step Functions engine with the real
steps, moto S3/SQS, the fake CMR and data host, and Lithops' real aws_lambda executor whose
invocations are recorded and run here (tests/support/statemachine.py), with AWS's limits
enforced. The checks are real; the report is built by the aggregator from the SQS messages moto
delivered for each new result.json."""

from __future__ import annotations

import json

import pytest

from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility import survey as survey_module
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.serverless import ConfigurationError, check_worker_budget, lithops_config, lithops_executor
from titiler_cmr_compatibility.settings import Settings, get_settings
from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import RESULT, Survey, worker_settings
from tests.support import statemachine
from tests.support.statemachine import BUCKET, PREFIX, Faults, harness


def survey_of(run: str) -> Survey:
    return Survey(open_storage(f"s3://{BUCKET}/{PREFIX}"), run)


def publish_collections(world, tmp_path, count: int = 3) -> list[str]:
    grid = files.netcdf4_grid(tmp_path, "grid.nc")
    ids = [world.publish(grid) for _ in range(count - 1)]
    ids.append(world.publish(files.text_file(tmp_path, "table.txt"), formats=("ASCII",)))
    return ids


def assert_within_limits(aws) -> None:
    assert aws.violations == [], aws.violations
    assert aws.recorder.refused == []


def test_survey_succeeds_and_the_aggregator_builds_the_report(world, tmp_path, monkeypatch):
    ids = publish_collections(world, tmp_path)
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime()
        description = aws.run({"run": "sfn-1", "poll_seconds": 0})
        assert description["status"] == "SUCCEEDED", description
        assert_within_limits(aws)
        output = json.loads(description["output"])
        assert output["collections"] == output["results"] == 3 and output["terminal"] == 0
        survey = survey_of("sfn-1")
        scan = survey.scan()
        assert scan.markers == scan.results == set(ids)
        assert json.loads(survey.storage.read(survey.key(ids[0], RESULT)))["tiling_compatible"] is True
        # Finalize wrote the page and the compatible datasets with the report.
        page = survey.storage.read("sfn-1/report/report.html")
        assert all(concept_id.encode() in page for concept_id in ids) and b'"collections":3' in page
        assert ids[0] in survey.storage.read("sfn-1/report/compatible_datasets.csv").decode()
        assert aws.drain_into_aggregator() >= 3  # one event per result.json, maybe more (redelivery-safe)
        report = survey.load_report()
        assert set(report["rows"]) == set(ids)
        assert survey.compile_report()[0]["rows"] == report["rows"]  # `survey report` rebuilds the same
        for extension in ("csv", "parquet"):
            assert aws.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/sfn-1/report/report.{extension}")["ContentLength"] > 0


def test_waves_are_bounded_and_faulty_workers_lose_nothing(world, tmp_path, monkeypatch):
    """Workers that never start, die mid-batch or are delivered twice, over waves of at most
    3 calls: every collection ends with exactly one result, none is checked twice in a wave."""
    grid = files.netcdf4_grid(tmp_path, "grid.nc")
    ids = [world.publish(grid) for _ in range(30)]
    faults = Faults(never_start=0.2, die_mid_batch=0.2, delivered_twice=0.3, seed=3)
    monkeypatch.setattr(survey_module, "CALLS_PER_MAP", 2)  # so a wave takes two Invokes
    with harness(monkeypatch, world.cmr, faults=faults, environment={"WORKER_CONCURRENCY": "3"}) as aws:
        aws.deploy_runtime()
        description = aws.run({"run": "sfn-2", "poll_seconds": 0}, timeout=900)
        assert description["status"] == "SUCCEEDED", description
        assert_within_limits(aws)
        launches = [step for step in aws.steps if step.step == "launch"]
        assert len(launches) >= 30 // (3 * 4) + 1  # waves of at most 3 calls of 4 collections
        assert len(aws.recorder.sizes) > len(launches)  # and at most 2 calls an Invoke
        assert max(aws.checked.values()) == 1  # delivered twice, checked once
        survey = survey_of("sfn-2")
        scan = survey.scan()
        assert scan.results == scan.markers == set(ids) and scan.pending == []
        results = {cid: json.loads(survey.storage.read(survey.key(cid, RESULT))) for cid in ids}
        terminal = [r for r in results.values() if r["incompatible_reason"] == Reason.PROCESSING_FAILED]
        assert all(r["tiling_compatible"] for r in results.values() if r not in terminal)
        for record in terminal:
            assert "after 3 attempts" in record["error_message"]
            assert "no worker ever started it" in record["error_message"] or "never finished" in record["error_message"]
        assert json.loads(description["output"])["terminal"] == len(terminal)
        aws.drain_into_aggregator()
        assert set(survey.load_report()["rows"]) == scan.markers


def test_a_rerun_retries_transient_reasons_and_keeps_the_rest(world, tmp_path, monkeypatch):
    ids = publish_collections(world, tmp_path)
    flaky = world.publish(files.netcdf4_grid(tmp_path, "flaky.nc"))
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime()
        world.cmr.fail_next(1000, status=503, path_contains=f"collection_concept_id={flaky}")
        assert aws.run({"run": "sfn-3", "poll_seconds": 0})["status"] == "SUCCEEDED"
        survey = survey_of("sfn-3")
        first = survey.storage.read(survey.key(flaky, RESULT))
        assert json.loads(first)["incompatible_reason"] == Reason.CMR_ERROR
        before = {cid: survey.storage.read(survey.key(cid, RESULT)) for cid in ids}
        aws.drain_into_aggregator()
        world.cmr.clear_faults()
        added = world.publish(files.netcdf4_grid(tmp_path, "late.nc"))

        description = aws.run({"run": "sfn-3", "poll_seconds": 0})  # the default retry: transient reasons
        assert description["status"] == "SUCCEEDED", description
        assert_within_limits(aws)
        scan = survey.scan()
        assert scan.results == scan.markers == set(ids) | {flaky, added}
        for concept_id, body in before.items():
            assert survey.storage.read(survey.key(concept_id, RESULT)) == body
            assert scan.attempts[concept_id] == 1
        assert json.loads(survey.storage.read(survey.key(flaky, RESULT)))["tiling_compatible"] is True
        assert survey.storage.read(survey.key(flaky, "history/1.json")) == first  # the earlier result, kept
        assert scan.attempts[flaky] == 1 and scan.last_attempt[flaky] == 2  # fresh attempts, numbered on
        aws.drain_into_aggregator()
        assert survey.load_report()["rows"][flaky]["tiling_compatible"] is True  # the report shows the newest

        untouched = survey.storage.read(survey.key(flaky, RESULT))
        assert aws.run({"run": "sfn-3", "poll_seconds": 0, "retry": []})["status"] == "SUCCEEDED"
        assert survey.storage.read(survey.key(flaky, RESULT)) == untouched


def test_an_unknown_retry_reason_stops_the_execution_with_the_known_ones(world, tmp_path, monkeypatch):
    publish_collections(world, tmp_path)
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime()
        description = aws.run({"run": "sfn-8", "retry": ["timeuot"]})
        assert description["status"] == "FAILED"
        cause = json.dumps(description["failures"])
        assert "retry must be a list of incompatible_reason names" in cause and "cmr_error" in cause
        assert aws.recorder.sizes == []


def test_workers_that_never_start_end_with_terminal_records(world, tmp_path, monkeypatch):
    ids = publish_collections(world, tmp_path)
    with harness(monkeypatch, world.cmr, faults=Faults(never_start=1.0)) as aws:
        aws.deploy_runtime()
        description = aws.run({"run": "sfn-4", "poll_seconds": 0, "max_attempts": 2})
        assert description["status"] == "SUCCEEDED", description
        assert_within_limits(aws)
        assert json.loads(description["output"])["terminal"] == len(ids)
        survey = survey_of("sfn-4")
        terminal = json.loads(survey.storage.read(survey.key(ids[0], RESULT)))
        assert terminal["incompatible_reason"] == Reason.PROCESSING_FAILED
        assert "after 2 attempts" in terminal["error_message"] and "no worker ever started it" in terminal["error_message"]
        aws.drain_into_aggregator()
        assert survey.load_report()["rows"][ids[0]]["incompatible_reason"] == Reason.PROCESSING_FAILED


def test_a_runtime_deployed_with_other_memory_fails_the_launch_with_the_fix(world, tmp_path, monkeypatch):
    publish_collections(world, tmp_path)
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime(memory=1769)  # the stack says 1024
        description = aws.run({"run": "sfn-5", "poll_seconds": 0})
        assert description["status"] == "FAILED"
        cause = json.dumps(description["failures"])
        assert "RuntimeNotDeployed" in cause and "1024 MB" in cause and "lithops runtime deploy" in cause
        assert aws.recorder.sizes == []  # nothing was invoked


# --- the harness enforces AWS's limits --------------------------------------------------------


def echo(text: str) -> str:
    return text


def test_an_invoke_payload_over_256_kb_is_refused(world, monkeypatch):
    """Lithops' own payload for 300 calls of ~900 bytes each (the earlier design's call data)
    is refused as Lambda refuses it."""
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime()
        executor = lithops_executor(get_settings())
        with pytest.raises(Exception, match="Error 413"):
            executor.map(echo, ["x" * 900 for _ in range(300)], include_modules=None)
        assert aws.recorder.refused and min(aws.recorder.refused) > statemachine.INVOKE_PAYLOAD_LIMIT


def test_a_state_over_256_kib_fails_the_execution(world, monkeypatch):
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime()
        description = aws.run({"run": "sfn-6", "padding": "x" * (257 * 1024)})
        assert description["status"] == "FAILED"
        assert aws.violations == [f"setup: input state of {257 * 1024 + len(json.dumps({'run': 'sfn-6', 'padding': ''})):,} bytes"]


def test_a_step_over_its_timeout_and_a_long_history_are_reported(world, tmp_path, monkeypatch):
    publish_collections(world, tmp_path)
    monkeypatch.setattr(statemachine, "HISTORY_LIMIT", 10)
    with harness(monkeypatch, world.cmr) as aws:
        aws.deploy_runtime()
        aws.timeouts["setup"] = 0.001
        aws.run({"run": "sfn-7", "poll_seconds": 0})
        assert any(v.startswith("setup: modelled") for v in aws.violations)
        assert any(v.startswith("execution history of") for v in aws.violations)


def test_no_credential_travels_to_the_workers():
    """Workers get parameter names and settings, never a token, password or key."""
    settings = Settings(_env_file=None, earthdata_token="tok-secret-1", earthdata_password="pw-secret-2",
                        earthdata_username="alice", earthdata_token_parameter="/compat/token")  # fmt: skip
    payload = json.dumps([worker_settings(settings, "direct"), lithops_config(settings)])
    assert "tok-secret-1" not in payload and "pw-secret-2" not in payload
    assert worker_settings(settings, "direct")["earthdata_token_parameter"] == "/compat/token"
    assert lithops_config(settings)["aws_lambda"]["remote_invoker"] is True


def test_a_call_must_fit_its_collections_checks_in_a_worker():
    check_worker_budget(Settings(_env_file=None, check_timeout=200, batch_size=4))  # 860 s of 895
    with pytest.raises(ConfigurationError, match="lower CheckTimeout to at most 208 s"):
        check_worker_budget(Settings(_env_file=None, check_timeout=840, batch_size=4))


def test_a_namespace_too_long_for_lambda_function_names_is_refused():
    Settings(_env_file=None, lithops_namespace="n" * 29)
    with pytest.raises(ValueError, match="at most 29 characters"):
        Settings(_env_file=None, lithops_namespace="n" * 30)


@pytest.mark.scale
def test_sixty_thousand_collections_within_aws_limits():
    """bench/scale.py's run at 60,000 collections with faulty workers (about an hour or more:
    moto writes ~140 objects/s): within every limit, nothing lost or doubled."""
    from bench.scale import run

    numbers = run(60_000, Faults(never_start=0.02, die_mid_batch=0.02, delivered_twice=0.02))
    assert numbers["status"] == numbers["rerun_status"] == "SUCCEEDED"
    assert numbers["violations"] == [] and numbers["refused_invokes"] == 0
    assert numbers["markers"] == numbers["results"] == 60_000
    assert numbers["checked_twice_in_a_wave"] == 0 and numbers["report_rows_equal_markers"]
