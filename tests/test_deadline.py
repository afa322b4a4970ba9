"""A check's deadline, and the network timeouts it shortens."""

from __future__ import annotations

import time

import pytest

from titiler_cmr_compatibility.auth import EarthdataAuth
from titiler_cmr_compatibility.deadline import CheckTimeout, Deadline
from titiler_cmr_compatibility.readers import DataAccessError, open_remote
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.sandbox import run_isolated
from titiler_cmr_compatibility.umm import DataLink


def test_cap_is_the_time_left_and_a_spent_deadline_raises():
    deadline = Deadline(2)
    assert 1.5 < deadline.cap(30) <= 2
    assert deadline.cap(0.5) == 0.5
    with pytest.raises(CheckTimeout):
        Deadline(0).cap(30)


def test_a_read_from_a_stalled_host_ends_at_the_checks_deadline_not_the_request_timeout(world, tmp_path):
    """A 30 s request timeout with 2 s left: the reads stop at the deadline, well before the
    sandbox would stop the process (the reads run in a forked child: obstore's runtime must
    never start in a process that forks checks)."""
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.data.hang(world.data_path(concept_id))
    url = world.data.url_for(world.data_path(concept_id))
    settings = world.settings(data_request_timeout=30)

    def read(_report):
        started = time.monotonic()
        try:
            open_remote(DataLink(url, "external"), EarthdataAuth(settings), settings, Deadline(2))
        except (CheckTimeout, DataAccessError) as error:
            return type(error).__name__, getattr(error, "reason", Reason.TIMEOUT), time.monotonic() - started
        return "opened", None, time.monotonic() - started

    outcome = run_isolated(read, seconds=60)
    assert not outcome.timed_out
    ended, reason, seconds = outcome.value
    assert reason is Reason.TIMEOUT and seconds < 5, outcome.value
