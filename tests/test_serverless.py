"""The serverless steps called directly (the state machine runs them in tests/test_statemachine.py):
setup's limits and its count of skipped records."""

from __future__ import annotations

import pytest

from titiler_cmr_compatibility.sample.cmr import make_collection
from titiler_cmr_compatibility.serverless import setup_step
from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import SetupTimeout, Survey


def test_setup_step_counts_the_records_it_skipped(world, tmp_path):
    world.cmr.collections.extend(make_collection(f"C{n}-TEST", f"S{n}") for n in range(3))
    broken = make_collection("C9-TEST", "BROKEN")
    broken["meta"]["concept-id"] = "C9-TEST/../../escape"
    world.cmr.collections.append(broken)
    state = setup_step({"run": "step-1"}, world.settings(survey_store=str(tmp_path / "store")))
    assert state["collections"] == 4 and state["created"] == 3
    assert state["skipped"] == {"invalid_concept_id": 1}
    assert Survey(open_storage(tmp_path / "store"), "step-1").scan().markers == {f"C{n}-TEST" for n in range(3)}


def test_setup_step_stops_at_setup_timeout(world, tmp_path):
    world.cmr.collections.append(make_collection("C1-TEST", "S1"))
    world.cmr.trickle_body("collections", bytes_per_second=20)
    with pytest.raises(SetupTimeout, match="setup ran past its 1 s limit"):
        setup_step({"run": "step-2"}, world.settings(survey_store=str(tmp_path / "store"), setup_timeout=1))
