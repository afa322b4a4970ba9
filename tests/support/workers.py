"""Lithops worker functions that fail on purpose, for the survey's failure paths.

They wrap the real worker (`survey.check_call`): only the fault (a crash, a late start, a hang)
is staged, the claims, checks and writes are real.
"""

from __future__ import annotations

import json
import os
import sys
import time

import cloudpickle

from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import Survey, check_call

# Lithops workers cannot import the tests package: ship these functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CRASH_MARK = "_CRASH"  # provider suffix of collections whose worker process dies


def _batch(location: str, run: str, wave: str, call: int) -> list[tuple[str, int]]:
    survey = Survey(open_storage(location), run)
    return json.loads(survey.storage.read(survey.wave_key(wave)))["calls"][call]


def crash_always(location, run, wave, call):
    """The worker process dies (like an out-of-memory kill) on any batch with a CRASH collection."""
    if any(concept_id.endswith(CRASH_MARK) for concept_id, _attempt in _batch(location, run, wave, call)):
        os._exit(137)
    return check_call(location, run, wave, call)


def crash_first_attempt(location, run, wave, call):
    """The worker process dies on a CRASH collection's first attempt only."""
    if any(cid.endswith(CRASH_MARK) and attempt == 1 for cid, attempt in _batch(location, run, wave, call)):
        os._exit(137)
    return check_call(location, run, wave, call)


LATE_MARK = "_LATE"  # provider suffix of collections whose first call starts late
LATE_SECONDS = 60.0


def start_late_once(location, run, wave, call):
    """On a LATE collection's first attempt the worker starts (claims its call) only after
    LATE_SECONDS, as a stuck runner would."""
    if any(cid.endswith(LATE_MARK) and attempt == 1 for cid, attempt in _batch(location, run, wave, call)):
        time.sleep(LATE_SECONDS)
    return check_call(location, run, wave, call)


def _never_returns(*args, **kwargs):
    time.sleep(3600)


def hang_in_check(location, run, wave, call):
    """The worker claims its call, then its check never returns (e.g. stuck in a C library)."""
    return check_call(location, run, wave, call, check=_never_returns)
