"""The serverless survey's steps: each is the body of one Lambda handler the state machine calls.

The state machine passes one small state document from step to step, the same size at 100
collections or 60,000 (Step Functions refuses a state over 256 KiB):

    {"run", "max_attempts", "access_type", "retry", "poll_seconds", "collections", "pending",
     "requeued", "waves", "wave", "calls", "launched", "wave_deadline", "done_calls", "wave_done"}

Everything else lives in the survey's storage (S3): the wave's calls are in its record
(`<run>/waves/<wave>.json`), so any step can fail and the execution be started again with the
same run id: setup leaves existing markers alone, and only pending collections are launched.

A wave is at most `worker_concurrency` calls (Lithops' max_workers), so no call waits in a
queue that a 900 s invoker may not outlive, and it is sent as one remote-invoker `map()` per
`survey.CALLS_PER_MAP` calls, so no asynchronous Invoke payload nears Lambda's 256 KB.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .cmr import CMRClient
from .result import Reason
from .settings import Settings
from .storage import open_storage
from .survey import TRANSIENT_REASONS, SetupDeadline, Survey, default_run_id, worker_settings

# How long the state machine waits between two progress polls of a running wave.
POLL_SECONDS = 60
# After a wave's calls have used their whole time, how long to wait for their last writes.
WAVE_GRACE = 120


class ConfigurationError(RuntimeError):
    """The stack's settings cannot work together; the message says which and what to change."""


class RuntimeNotDeployed(RuntimeError):
    """The Lithops runtime the launcher would invoke is not deployed (with this memory)."""


def _survey(settings: Settings, state: dict[str, Any]) -> Survey:
    return Survey(open_storage(settings.survey_store), state["run"])


def lithops_config(settings: Settings) -> dict[str, Any]:
    """Lithops on AWS Lambda, pinned so a launcher with its own role finds the runtime a laptop
    deployed: worker function names derive from user_id, namespace and memory. The stack's
    `LithopsConfig` output is this same configuration, for `lithops runtime build/deploy`."""
    return {
        "lithops": {
            "backend": "aws_lambda",
            "storage": "aws_s3",
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
            "max_workers": settings.worker_concurrency,
            # One invoke that fans out from inside AWS: map() inside a Lambda otherwise returns
            # before its background threads have sent the invocations.
            "remote_invoker": True,
        },
        "aws_s3": {"region": settings.aws_region, "storage_bucket": settings.lithops_storage_bucket},
    }


def check_worker_budget(settings: Settings) -> None:
    """A call checks `batch_size` collections, each within `check_timeout`, inside one worker's
    time (Lithops stops a call 5 s before the function's timeout)."""
    needed = settings.batch_size * settings.check_timeout + settings.worker_overhead
    if needed > settings.lithops_runtime_timeout - 5:
        raise ConfigurationError(
            f"a worker call checks {settings.batch_size} collections of up to {settings.check_timeout:g} s each "
            f"(+{settings.worker_overhead:g} s to start): {needed:g} s, more than the worker's "
            f"{settings.lithops_runtime_timeout - 5} s; lower CheckTimeout to at most "
            f"{(settings.lithops_runtime_timeout - 5 - settings.worker_overhead) // settings.batch_size:g} s"
        )


def runtime_meta_key(executor, settings: Settings, memory: int | None = None) -> str:
    """Where `lithops runtime deploy` leaves the runtime's metadata in the bucket, and where
    Lithops looks for it before invoking: the key holds the worker function's name, which holds
    the runtime's name, memory and Lithops' version."""
    from lithops.constants import RUNTIMES_PREFIX

    backend = executor.compute_handler.backend
    key = backend.get_runtime_key(settings.lithops_runtime, memory or settings.lithops_runtime_memory)
    return f"{RUNTIMES_PREFIX}/{key}.meta.json"


def lithops_executor(settings: Settings):
    """The launcher's FunctionExecutor, once it has checked that the runtime it will invoke is
    deployed: otherwise Lithops would try to deploy one itself (and fail on ECR, from a role
    that must not have those rights). The bucket is asked, not Lithops' caches."""
    import lithops
    from lithops.storage.utils import StorageNoSuchKeyError

    executor = lithops.FunctionExecutor(config=lithops_config(settings), log_level=None)
    key = runtime_meta_key(executor, settings)
    deploy = (f"Deploy it with the stack's LithopsConfig output as lithops.yaml: lithops runtime deploy -c lithops.yaml "
              f"-b aws_lambda -s aws_s3 {settings.lithops_runtime} (README, Deploy to AWS, step 3)")  # fmt: skip
    try:
        meta = json.loads(executor.internal_storage.storage.get_object(settings.lithops_storage_bucket, key))
    except StorageNoSuchKeyError:
        raise RuntimeNotDeployed(
            f"the Lithops runtime {settings.lithops_runtime!r} with {settings.lithops_runtime_memory} MB is not "
            f"deployed: no s3://{settings.lithops_storage_bucket}/{key}. {deploy}"
        ) from None
    if meta.get("runtime_timeout") != settings.lithops_runtime_timeout:
        # Lithops gives each call the deployed function's timeout, which the wave's deadline relies on.
        raise RuntimeNotDeployed(
            f"the Lithops runtime {settings.lithops_runtime!r} was deployed with a {meta.get('runtime_timeout')} s "
            f"timeout; the stack expects {settings.lithops_runtime_timeout} s. {deploy}"
        )
    return executor


def setup_step(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Markers for the run (this month's unless a run id is given); on a re-run, the results
    whose reason is in `retry` (default: the transient ones) are set aside to be checked again.
    Listing and markers stop at `setup_timeout`, inside the function's own timeout; records
    that cannot be markers are counted in `skipped`, by reason."""
    retry = _retry_reasons(event.get("retry"))
    state = {
        "run": event.get("run") or default_run_id(),
        "max_attempts": int(event.get("max_attempts") or settings.max_attempts),
        "access_type": event.get("access_type") or settings.access_type,
        "retry": retry,
        "poll_seconds": int(event.get("poll_seconds", POLL_SECONDS)),
        "waves": 0,
    }
    survey = _survey(settings, state)
    deadline = SetupDeadline(settings.setup_timeout)
    cmr = CMRClient(settings, deadline)
    providers = cmr.eosdis_providers()
    limit = event.get("total_collections")
    stats = survey.setup(
        cmr.search_collections(providers=providers, limit=int(limit) if limit else None),
        manifest={"cmr_url": settings.cmr_url, "limit": limit, "providers": len(providers)},
        deadline=deadline,
    )
    requeued = survey.requeue(state["retry"])
    return {**state, "collections": stats.listed, "created": stats.created, "skipped": dict(stats.skipped),
            "requeued": len(requeued)}  # fmt: skip


def _retry_reasons(value: Any) -> list[str]:
    """The execution input's `retry`: the transient reasons when absent, else reason names."""
    if value is None:
        return [str(reason) for reason in TRANSIENT_REASONS]
    reasons = [value] if isinstance(value, str) else value
    known = {str(reason) for reason in Reason}
    if not isinstance(reasons, list) or not all(isinstance(r, str) and r in known for r in reasons):
        raise ValueError(f"retry must be a list of incompatible_reason names ({', '.join(sorted(known))}), not {value!r}")
    return reasons


def launch_step(event: dict[str, Any], settings: Settings, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """One wave over the pending collections that have attempts left: at most
    `worker_concurrency` calls. Returns once every invocation is sent (remote invokers), with
    the wave's deadline; `launched` is 0 when nothing is left to launch."""
    check_worker_budget(settings)
    survey = _survey(settings, event)
    scan = survey.scan()
    launchable = scan.launchable(event["max_attempts"])
    work = launchable[: settings.worker_concurrency * settings.batch_size]
    state = {**event, "collections": len(scan.markers), "pending": len(scan.pending), "launched": len(work),
             "wave": None, "calls": 0, "done_calls": 0, "wave_done": True}  # fmt: skip
    if not work:
        return state
    # Leaving the executor stops its monitor and waits for the invocations in flight: the
    # calls are not waited for (the survey's storage tells progress), only sent.
    with lithops_executor(settings) as executor:
        wave = survey.launch_wave(
            work, executor, worker_settings(settings, event["access_type"]),
            batch_size=settings.batch_size,
            # The wave is over when every call is done, or once a call's whole budget has passed
            # (a worker that died leaves nothing behind).
            deadline_seconds=settings.lithops_runtime_timeout + WAVE_GRACE, now=clock(),
        )  # fmt: skip
    return {**state, "waves": event.get("waves", 0) + 1, "wave": wave.id, "calls": len(wave.calls),
            "wave_deadline": wave.deadline, "wave_done": False}  # fmt: skip


def progress_step(event: dict[str, Any], settings: Settings, clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """Is the wave over (every call done, or the deadline passed)? One listing per 1,000 calls."""
    done = _survey(settings, event).wave_progress(event["wave"])
    return {**event, "done_calls": done, "wave_done": done >= event["calls"] or clock() >= event["wave_deadline"]}


def finalize_step(event: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Terminal results for what is still pending, merged into the report, which is then
    written with its views (CSV, Parquet, the page, compatible datasets) beside report.json."""
    from .aggregate import aggregate
    from .survey import RESULT

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
    if report is None:
        # Seen only with moto, whose replace of a key can briefly read as missing while the
        # aggregator writes it: rebuild the report (and its views) from the results.
        report, _ = survey.compile_report()
    else:
        survey.write_views(report, collections=len(scan.markers))
    summary = report["summary"]
    return {
        "run": survey.run,
        "collections": len(scan.markers),
        "results": len(scan.results),
        "terminal": terminal,
        "compatible": summary["compatible"],
        "report": f"{survey.storage.location}/{survey.run}/report/report.json",
    }
