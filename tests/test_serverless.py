"""The serverless steps called directly (the state machine runs them in tests/test_statemachine.py)."""

from __future__ import annotations

from titiler_cmr_compatibility.sample.cmr import make_collection
from titiler_cmr_compatibility.serverless import setup_step
from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import Survey


def test_setup_step_counts_the_records_it_skipped(world, tmp_path):
    world.cmr.collections.extend(make_collection(f"C{n}-TEST", f"S{n}") for n in range(3))
    broken = make_collection("C9-TEST", "BROKEN")
    broken["meta"]["concept-id"] = "C9-TEST/../../escape"
    world.cmr.collections.append(broken)
    state = setup_step({"run": "step-1"}, world.settings(survey_store=str(tmp_path / "store")))
    assert state["collections"] == 4 and state["created"] == 3
    assert state["skipped"] == {"invalid_concept_id": 1}
    assert Survey(open_storage(tmp_path / "store"), "step-1").scan().markers == {f"C{n}-TEST" for n in range(3)}

