"""The serverless survey at full CMR scale, under AWS's limits (numbers, not a test).

The real state machine, executed by moto's Step Functions engine with the real steps, moto
S3/SQS, a fake CMR listing N synthetic collections, and Lithops' real aws_lambda executor whose
Invokes are recorded, measured and refused over 256 KB (tests/support/statemachine.py). Only
the checks are a stub (a result from the marker in microseconds), and the workers are faulty:
some calls never start, some workers die mid-batch, some calls are delivered twice.

Per size, one execution, then the users' retry (the same run again, default `retry`). Prints the
largest Invoke payload and state document, S3 requests per progress poll, each function's
largest modelled duration (S3 and CMR requests at the harness's stated latencies, plus measured
CPU) against its timeout, the events in the execution history, and checks that every collection
ended with exactly one result, none checked twice in a wave, and the report's rows equal the
markers.

    .venv/bin/python bench/scale.py                       # 10,800 then 60,000 (about an hour or more)
    .venv/bin/python bench/scale.py --collections 2000    # one size
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from titiler_cmr_compatibility.result import CheckResult, Reason  # noqa: E402
from titiler_cmr_compatibility.sample.cmr import FakeCMR, make_collection  # noqa: E402
from titiler_cmr_compatibility.storage import open_storage  # noqa: E402
from titiler_cmr_compatibility.survey import RESULT, Survey  # noqa: E402
from tests.support import statemachine  # noqa: E402
from tests.support.statemachine import BUCKET, PREFIX, Faults, harness  # noqa: E402

PROVIDERS = ["POCLOUD", "LPCLOUD", "GES_DISC", "NSIDC_CPRD", "ORNL_CLOUD", "ASF", "LAADS", "OB_CLOUD", "GHRC_DAAC",
             "LARC_CLOUD", "SEDAC", "CDDIS", "NSIDC_ECS", "LANCEMODIS", "ASDC_PROVIDER_LONG_NAME"]  # fmt: skip
OUTCOMES = [(True, None), (False, Reason.UNSUPPORTED_FORMAT), (False, Reason.NO_XY_DIMENSIONS),
            (False, Reason.GROUP_STRUCTURE), (False, Reason.TIMEOUT)]  # fmt: skip


def collections(count: int) -> list[dict]:
    """Synthetic UMM-C items with long, real-looking provider names (longer ids, bigger state)."""
    items = []
    for number in range(count):
        provider = PROVIDERS[number % len(PROVIDERS)]
        concept_id = f"C{3_000_000_000 + number}-{provider}"
        items.append(make_collection(concept_id, f"SCALE_PRODUCT_{number:06d}_L3_GRIDDED", version="2.0",
                                     provider=provider, formats=("netCDF-4",), granule_count=1 + number % 5000))  # fmt: skip
    return items


def stub_check(concept_id: str, *, collection=None, settings=None, auth=None) -> CheckResult:
    """A result in microseconds: the outcome is a function of the concept id."""
    compatible, reason = OUTCOMES[int(hashlib.sha1(concept_id.encode()).hexdigest(), 16) % len(OUTCOMES)]
    result = CheckResult(collection_concept_id=concept_id, collection_short_name_and_version=collection.short_name_and_version,
                         tiling_compatible=compatible, backend="xarray" if compatible else None,
                         format=collection.format, num_granules=collection.granule_count, duration_s=0.0)  # fmt: skip
    if reason:
        result = result.fail(reason, f"stub: {reason}")
    result.checked_at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return result


def run(count: int, faults: Faults, rerun: bool = True, notifications: bool = True) -> dict:
    """One survey of `count` collections (and the users' retry, unless `rerun` is False), then
    the aggregator over every result event: delivered by moto's bucket notifications, or (with
    `notifications` False: they make moto's result writes ~7x slower) the same events built
    from a listing of the results."""
    started = time.monotonic()
    monkeypatch = pytest.MonkeyPatch()
    try:
        with FakeCMR(collections(count), {}, strict=False) as cmr, harness(monkeypatch, cmr, faults=faults, check=stub_check,
                                                                           notifications=notifications) as aws:
            aws.deploy_runtime()
            description = aws.run({"run": "scale", "poll_seconds": 0}, timeout=6 * 3600)
            aggregate = aws.drain_into_aggregator if notifications else lambda: aws.aggregate_every_result("scale")
            aggregated = aggregate()
            survey_seconds = time.monotonic() - started
            first_steps = len(aws.steps)
            # The users' retry: the same run again, with the default retry (the transient reasons).
            again = aws.run({"run": "scale", "poll_seconds": 0}, timeout=6 * 3600) if rerun else {"status": "not run"}
            aggregated += aggregate() if rerun else 0
            survey = Survey(open_storage(f"s3://{BUCKET}/{PREFIX}"), "scale")
            scan = survey.scan()
            report = survey.load_report() or {"rows": {}}
            output = json.loads(description.get("output") or "{}")
            polls = [step for step in aws.steps[:first_steps] if step.step == "progress"]
            states = [s for s in aws.steps if s.step in statemachine.STEPS]
            return {
                "rerun_status": again["status"],
                "rerun_events": again.get("events"),
                "rerun_setup": next((s for s in aws.steps[first_steps:] if s.step == "setup"), None),
                "requeued": len(scan.set_aside),
                "rerun_seconds": time.monotonic() - started - survey_seconds,
                "collections": count,
                "status": description["status"],
                "violations": list(aws.violations),  # after the aggregator's batches too
                "refused_invokes": len(aws.recorder.refused),
                "invokes": len(aws.recorder.sizes),
                "largest_invoke": max(aws.recorder.sizes, default=0),
                "largest_state": max(max(s.input_bytes, s.output_bytes) for s in states),
                "waves": sum(1 for s in aws.steps[:first_steps] if s.step == "launch") - 1,
                "polls": len(polls),
                "poll_requests_max": max((p.total_s3_requests for p in polls), default=0),
                "poll_requests_median": statistics.median(p.total_s3_requests for p in polls) if polls else 0,
                "steps": {name: max((s for s in aws.steps if s.step == name), key=lambda s: s.modelled_seconds)
                          for name in statemachine.FUNCTIONS if any(s.step == name for s in aws.steps)},  # fmt: skip
                "timeouts": aws.timeouts,
                "events": description.get("events"),
                "markers": len(scan.markers),
                "results": len(scan.results),
                "terminal": output.get("terminal"),
                "checked_twice_in_a_wave": sum(1 for n in aws.checked.values() if n > 1),
                "report_rows": len(report["rows"]),
                "report_rows_equal_markers": set(report["rows"]) == scan.markers,
                "aggregated_messages": aggregated,
                "seconds": survey_seconds,
            }
    finally:
        monkeypatch.undo()


def show(numbers: dict) -> None:
    n = numbers["collections"]
    print(f"\n[{n:,} collections] {numbers['status']} in {numbers['seconds'] / 60:.1f} min here "
          f"({numbers['waves']} waves, {numbers['polls']} progress polls)")  # fmt: skip
    print(f"  largest Invoke payload   {numbers['largest_invoke']:>10,} bytes  (limit {statemachine.INVOKE_PAYLOAD_LIMIT:,}; "
          f"{numbers['invokes']} invokes, {numbers['refused_invokes']} refused)")  # fmt: skip
    print(f"  largest state            {numbers['largest_state']:>10,} bytes  (limit {statemachine.STATE_LIMIT:,})")
    print(f"  S3 requests per poll     {numbers['poll_requests_max']:>10,} max, {numbers['poll_requests_median']:g} median")
    for name, step in numbers["steps"].items():
        r = step.s3_requests
        print(f"  {name:<9} slowest       {step.modelled_seconds:>10.1f} s modelled of its {numbers['timeouts'][name]} s timeout "
              f"({sum(r.values()):,} S3 requests: {r[('serial', 'list')]:,} listings, {r[('serial', 'object')]:,} serial, "
              f"{r[('pooled', 'object')] + r[('pooled', 'list')]:,} pooled; {step.cmr_requests} CMR; {step.cpu_seconds:.1f} s CPU)")  # fmt: skip
    print(f"  execution history        {numbers['events']:>10,} events  (limit {statemachine.HISTORY_LIMIT:,})")
    setup = numbers["rerun_setup"]
    if setup is None:
        print("  re-run                   not run")
        return
    print(f"  re-run (default retry)   {numbers['rerun_status']}: {numbers['requeued']:,} results set aside and checked again "
          f"in {numbers['rerun_seconds'] / 60:.1f} min here; its setup {setup.modelled_seconds:.1f} s modelled "
          f"({setup.total_s3_requests:,} S3 requests, {setup.cpu_seconds:.1f} s CPU); {numbers['rerun_events']:,} events")  # fmt: skip
    print(f"  markers {numbers['markers']:,}, results {numbers['results']:,} ({numbers['terminal']} terminal), "
          f"report rows {numbers['report_rows']:,} (= markers: {numbers['report_rows_equal_markers']}), "
          f"checked twice in a wave: {numbers['checked_twice_in_a_wave']}, limit breaches: {numbers['violations'] or 'none'}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, action="append", help="survey size (repeatable; default 10,800 and 60,000)")
    parser.add_argument("--never-start", type=float, default=0.02, help="share of calls whose worker never starts")
    parser.add_argument("--die", type=float, default=0.02, help="share of calls whose worker dies mid-batch")
    parser.add_argument("--twice", type=float, default=0.02, help="share of calls delivered twice")
    parser.add_argument("--no-rerun", action="store_true", help="skip the second execution (the users' retry)")
    parser.add_argument("--no-notifications", action="store_true",
                        help="build the result events from a listing instead of moto's notifications (~7x faster writes)")  # fmt: skip
    args = parser.parse_args()
    print(f"latencies: S3 {statemachine.S3_LATENCY * 1000:.0f} ms per object request, {statemachine.S3_LIST_LATENCY * 1000:.0f} ms "
          f"per listing page, CMR {statemachine.CMR_LATENCY:g} s per page; requests from pools overlap {statemachine.POOL}-fold")  # fmt: skip
    for count in args.collections or [10_800, 60_000]:
        faults = Faults(never_start=args.never_start, die_mid_batch=args.die, delivered_twice=args.twice)
        numbers = run(count, faults, rerun=not args.no_rerun, notifications=not args.no_notifications)
        show(numbers)
        ok = (numbers["status"] == "SUCCEEDED" and numbers["rerun_status"] in ("SUCCEEDED", "not run") and not numbers["violations"] and numbers["results"] == numbers["markers"] == count
              and numbers["checked_twice_in_a_wave"] == 0 and numbers["report_rows_equal_markers"])  # fmt: skip
        print(f"  {'OK' if ok else 'FAILED'}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
