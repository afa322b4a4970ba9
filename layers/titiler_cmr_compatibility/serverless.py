"""The serverless survey's steps: each is the body of one Lambda handler the state machine calls.

The state machine passes one small state document from step to step:

    {"run", "max_attempts", "access_type", "attempt", "collections", "pending",
     "launched", "wave_deadline", "wave_done", "poll_seconds"}

Everything else lives in the survey's storage (S3), so any step can fail and the execution be
started again with the same run id: setup leaves existing markers alone, and only pending
collections are launched.
"""

from __future__ import annotations

import time
from typing import Any

from .cmr import CMRClient
from .settings import Settings
from .storage import open_storage
from .survey import RESULT, Survey, default_run_id, lithops_executor

# How long the state machine waits between two progress polls of a running wave.
POLL_SECONDS = 30


def _survey(settings: Settings, state: dict[str, Any]) -> Survey:
    return Survey(open_storage(settings.survey_store), state["run"])


def worker_settings(settings: Settings, access_type: str) -> dict[str, Any]:
    """What workers need to know, and nothing secret: they read credentials themselves (SSM)."""
    values: dict[str, Any] = {
        "cmr_url": settings.cmr_url,
        "access_type": access_type,
        "check_timeout": settings.check_timeout,
        "titiler_endpoint": settings.titiler_endpoint,
        "data_request_timeout": settings.data_request_timeout,
    }
    for name in ("earthdata_token_parameter", "earthdata_username_parameter", "earthdata_password_parameter"):
        if getattr(settings, name):
            values[name] = getattr(settings, name)  # a parameter's name, never its value
    return values


def lithops_config(settings: Settings) -> dict[str, Any]:
    """Lithops on AWS Lambda, pinned so a launcher with its own role finds the runtime a laptop
    deployed: worker function names derive from user_id and namespace."""
    return {
        "lithops": {
            "backend": "aws_lambda",
            "storage": "aws_s3",
            "storage_bucket": settings.lithops_storage_bucket,
            "log_level": "WARNING",
            # Lithops' own cleaner runs in a process a frozen Lambda never finishes; the bucket's
            # lifecycle rule expires lithops.jobs/ instead.
            "data_cleaner": False,
        },
        "aws": {"region": settings.aws_region},
        "aws_lambda": {
            "execution_role": settings.lithops_execution_role,
            "region": settings.aws_region,
            "runtime": settings.lithops_runtime,
            "runtime_memory": settings.lithops_runtime_memory,
            "runtime_timeout": settings.lithops_runtime_timeout,
            "user_id": settings.lithops_user_id,
            "namespace": settings.lithops_namespace,
            # One invoke that fans out from inside AWS: map() inside a Lambda otherwise returns
            # before its background threads have sent the invocations.
            "remote_invoker": True,
        },
        "aws_s3": {"region": settings.aws_region, "storage_bucket": settings.lithops_storage_bucket},
    }


def _executor(settings: Settings):
    if settings.lithops_backend == "localhost":
        return lithops_executor("localhost")
    import lithops

    return lithops.FunctionExecutor(config=lithops_config(settings), log_level=None)


def setup_step(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Markers for the run (a new run id unless one is given); the state for the loop."""
    state = {
        "run": event.get("run") or default_run_id(),
        "max_attempts": int(event.get("max_attempts") or settings.max_attempts),
        "access_type": event.get("access_type") or settings.access_type,
        "attempt": 0,
        "poll_seconds": int(event.get("poll_seconds", POLL_SECONDS)),
    }
    survey = _survey(settings, state)
    cmr = CMRClient(settings)
    providers = cmr.eosdis_providers()
    limit = event.get("total_collections")
    survey.setup(
        cmr.search_collections(providers=providers, limit=int(limit) if limit else None),
        manifest={"cmr_url": settings.cmr_url, "limit": limit, "providers": len(providers)},
    )
    return {**state, **_counts(survey, state)}


def _counts(survey: Survey, state: dict[str, Any]) -> dict[str, Any]:
    scan = survey.scan()
    launchable = [cid for cid in scan.pending if scan.attempts[cid] < state["max_attempts"]]
    return {"collections": len(scan.markers), "pending": len(scan.pending), "launchable": len(launchable)}


def launch_step(event: dict[str, Any], settings: Settings, executor=None, worker=None) -> dict[str, Any]:
    """One wave of Lithops calls over the pending collections that have attempts left. Returns
    once every invocation is dispatched (remote invoker), with the wave's deadline."""
    survey = _survey(settings, event)
    scan = survey.scan()
    work = [(cid, scan.attempts[cid] + 1) for cid in scan.pending if scan.attempts[cid] < event["max_attempts"]]
    executor = executor or _executor(settings)
    values = worker_settings(settings, event["access_type"])
    if settings.lithops_backend == "localhost":
        survey.process(work, executor, values, settings.batch_size, worker)  # localhost waits for its calls
        deadline = time.time()  # so the wave is already over
    else:
        survey.dispatch(work, executor, values, settings.batch_size, worker)
        # The wave is over when every launched collection has a result, or at this deadline (a
        # worker that died leaves nothing behind): a call's whole budget, with a margin.
        deadline = time.time() + settings.lithops_runtime_timeout + 120
    return {**event, "attempt": event["attempt"] + 1, "launched": [cid for cid, _ in work],
            "wave_deadline": deadline, "wave_done": False}  # fmt: skip


def progress_step(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Is the wave over (every launched collection has a result, or the deadline passed)?"""
    survey = _survey(settings, event)
    launched = event.get("launched") or []
    waiting = [cid for cid in launched if survey.storage.read(survey.key(cid, RESULT)) is None]
    done = not waiting or time.time() >= event.get("wave_deadline", 0)
    state = {**event, "wave_done": done, "waiting": len(waiting)}
    if done:
        state.update(_counts(survey, event))
        state["launched"] = []  # the next wave's list replaces it; keep the state small
    return state


def finalize_step(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Terminal results for what is still pending, merged into the report, which is then
    written as CSV and Parquet beside report.json."""
    from .aggregate import aggregate
    from .report import export_bytes

    survey = _survey(settings, event)
    terminal = survey.finalize(event["max_attempts"])
    scan = survey.scan()
    # Every result once more, so the report is complete now, whatever the aggregator's queue
    # still holds (the merge is idempotent: those events change nothing when they arrive).
    stats = aggregate(survey.storage, survey.run, [survey.key(cid, RESULT) for cid in sorted(scan.results)])
    if stats.failed:
        # Fail the step (the execution can be started again) rather than publish a report that
        # silently lacks collections.
        key, why = next(iter(stats.failed.items()))
        raise RuntimeError(f"{len(stats.failed)} results could not be read into the report, e.g. {key}: {why}")
    report = survey.load_report()
    for extension in (".csv", ".parquet"):
        survey.storage.write(f"{survey.run}/report/report{extension}", export_bytes(report["rows"], extension))
    summary = report["summary"]
    return {
        "run": survey.run,
        "collections": len(scan.markers),
        "results": len(scan.results),
        "terminal": terminal,
        "compatible": summary["compatible"],
        "report": f"{survey.storage.location}/{survey.run}/report/report.json",
    }
