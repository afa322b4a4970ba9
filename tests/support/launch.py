"""Run the real command line and record its peak memory: `python -m tests.support.launch ARGS...`.

The peak is this process's own high-water mark (VmHWM: ru_maxrss would carry the parent's peak
across exec) or its largest child's (the forked checks), whichever is higher. It goes to the
file named by LAUNCH_MEASURE_FILE, so stdout and stderr stay exactly what the command printed.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

from titiler_cmr_compatibility.cli import main


def own_peak_mb() -> float:
    """This process's peak resident memory since it started (or exec'd)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mb() -> float:
    """The largest peak of this process and the children it has waited for (forked checks)."""
    return max(own_peak_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    Path(os.environ["LAUNCH_MEASURE_FILE"]).write_text(json.dumps({"peak_mb": peak_mb()}))
    sys.exit(code)
