"""Reliability under hostile input: every case of tests/support/hostile.py, checked through the
command line in a process of its own, then a survey over the quick classes run twice at once.

Prints one row per class: cases, passed, worst wall time, worst peak RSS, secrets found and
results lost (both must be 0), and each failing case with what went wrong.

    .venv/bin/python bench/reliability.py            # all cases, two at a time
    .venv/bin/python bench/reliability.py --workers 1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.hostile import CASES, CHECK_TIMEOUT, GRACE, PEAK_LIMIT_MB, hostile_world, run_cases  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="cases checked at once")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="reliability-") as scratch, hostile_world() as world:
        outcomes = run_cases(world, CASES, Path(scratch), workers=args.workers)
    by_kind = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.case.kind].append(outcome)

    print(f"{len(CASES)} hostile cases, {args.workers} at a time, check timeout {CHECK_TIMEOUT:g} s "
          f"(bound {CHECK_TIMEOUT + GRACE:g} s), memory bound {PEAK_LIMIT_MB:g} MB, in {time.monotonic() - started:.0f} s\n")
    header = f"{'class':10} {'cases':>5} {'passed':>6} {'worst wall s':>12} {'worst peak MB':>13} {'secrets found':>13} {'results lost':>12}"
    print(header)
    print("-" * len(header))
    rows = [(kind, items) for kind, items in by_kind.items()] + [("all", outcomes)]
    for kind, items in rows:
        passed = sum(not outcome.failures for outcome in items)
        secrets = sum(len(outcome.leaks) for outcome in items)
        lost = sum(outcome.result is None for outcome in items)
        print(f"{kind:10} {len(items):5d} {passed:6d} {max(o.wall for o in items):12.1f} "
              f"{max(o.peak_mb for o in items):13.0f} {secrets:13d} {lost:12d}")
    failing = [outcome for outcome in outcomes if outcome.failures]
    for outcome in failing:
        print(f"\nFAILED {outcome.case.kind}: {outcome.case.name}")
        for failure in outcome.failures:
            print(f"  {failure[:300]}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
