"""What a survey costs in Lambda: GB-seconds per collection from the check's measured duration and
peak memory, and a 10,800-collection survey's price, next to the predecessor's 10,240 MB workers.

Each sample collection (the demo's twelve: every usual outcome) is checked in a fresh process,
over HTTP on 127.0.0.1, so the durations here leave out real network latency: the script also
prices the same survey at a per-check duration you give (`--network-seconds`, default 10 s),
which is what a check in us-west-2 against CMR and DAAC buckets takes in practice.

    .venv/bin/python bench/cost.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.check import _run_check, in_child  # noqa: E402
from titiler_cmr_compatibility.sample.demo import build_sample, serve_sample  # noqa: E402
from titiler_cmr_compatibility.sample.server import LOOPBACK_SETTINGS  # noqa: E402
from titiler_cmr_compatibility.settings import Settings  # noqa: E402

COLLECTIONS = 10_800
PRICE_GB_SECOND = 0.0000166667  # x86_64, us-west-2, first 6 billion GB-s a month
PRICE_REQUEST = 0.20 / 1_000_000
PREDECESSOR_MB = 10_240


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--network-seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=Settings(_env_file=None).batch_size)
    args = parser.parse_args()
    memory_mb = Settings(_env_file=None).lithops_runtime_memory
    durations, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        catalog = build_sample(Path(tmp))
        with serve_sample(catalog) as servers:
            settings = {"cmr_url": servers.cmr_url, "access_type": "external", "check_timeout": 120, **LOOPBACK_SETTINGS}
            for concept_id in catalog.expected:
                record, seconds, _before, peak = in_child(_run_check, concept_id, settings, {})
                durations.append(seconds)
                peaks.append(peak)
                print(f"{concept_id:<22} {record['incompatible_reason'] or 'compatible':<22} {seconds:6.2f} s  peak {peak:5.0f} MB")
    mean = statistics.mean(durations)
    print(f"\nmeasured: mean {mean:.2f} s per check, peak memory {max(peaks):.0f} MB (largest of the checks);"
          f" bench/check.py: 295 MB on a 7,200 x 14,400 grid")  # fmt: skip
    print(f"worker memory: {memory_mb} MB (LITHOPS_RUNTIME_MEMORY)\n")
    invocations = COLLECTIONS / args.batch_size
    for label, seconds in (("as measured here", mean), (f"with {args.network_seconds:g} s of network per check", args.network_seconds)):
        for name, mb in (("this tool", memory_mb), ("predecessor", PREDECESSOR_MB)):
            gb_seconds = seconds * mb / 1024
            cost = COLLECTIONS * gb_seconds * PRICE_GB_SECOND + invocations * PRICE_REQUEST
            print(f"{label:<32} {name:<12} {mb:>6} MB  {gb_seconds:8.2f} GB-s/collection  "
                  f"{COLLECTIONS:,} collections: {COLLECTIONS * gb_seconds:>12,.0f} GB-s = ${cost:,.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
