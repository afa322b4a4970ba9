"""Lithops worker functions that fail on purpose, for the survey's failure paths.

They wrap the real worker (`survey.check_call`): only the crash is staged, the checks and the
writes are real.
"""

from __future__ import annotations

import json
import os
import sys

import cloudpickle

from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import Survey, check_call

# Lithops workers cannot import the tests package: ship these functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CRASH_MARK = "_CRASH"  # provider suffix of collections whose worker process dies (a provider id: no "-")


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
