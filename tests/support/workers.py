"""Lithops worker functions that fail on purpose, for the survey's failure paths.

They wrap the real worker (`survey.check_batch`): only the crash is staged, the checks and the
writes are real.
"""

from __future__ import annotations

import os
import sys

import cloudpickle

from titiler_cmr_compatibility.survey import check_batch

# Lithops workers cannot import the tests package: ship these functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CRASH_MARK = "-CRASH"  # provider suffix of collections whose worker process dies


def crash_always(location, run, work, settings_values):
    """The worker process dies (like an out-of-memory kill) on any batch with a CRASH collection."""
    if any(concept_id.endswith(CRASH_MARK) for concept_id, _attempt in work):
        os._exit(137)
    return check_batch(location, run, work, settings_values)


def crash_first_attempt(location, run, work, settings_values):
    """The worker process dies on a CRASH collection's first attempt only."""
    if any(concept_id.endswith(CRASH_MARK) and attempt == 1 for concept_id, attempt in work):
        os._exit(137)
    return check_batch(location, run, work, settings_values)
