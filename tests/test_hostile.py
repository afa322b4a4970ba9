"""Hostile hosts, files and records (tests/support/hostile.py): each case is checked through the
command line in a process of its own, and must end with a right reason, in time, within the
memory bound, with a clean exit and no secret anywhere. A survey over the hostile collections,
two at once on this machine, loses nothing and leaks nothing either."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.hostile import (
    CASES, CHECK_TIMEOUT, GRACE, ROOT, SECRETS, Case, Outcome, hostile_world, run_cases, stage, subprocess_environment,
)

CASE_IDS = [f"{case.kind}: {case.name}" for case in CASES]
# The module fixture checks all 98 cases at once (~2.5 minutes on 2 idle cores): on a busy
# machine that is more than the suite's 300 s default, which would fail every case at once.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[str, Outcome]:
    """The selected cases, run two at a time once for the module (each test asserts one)."""
    selected = {item.callspec.params["case"].name for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "case" in item.callspec.params}
    with hostile_world() as world:
        ran = run_cases(world, [case for case in CASES if case.name in selected], tmp_path_factory.mktemp("hostile"))
    return {outcome.case.name: outcome for outcome in ran}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_hostile_case(case: Case, outcomes: dict[str, Outcome]):
    outcome = outcomes[case.name]
    assert not outcome.failures, "\n".join(outcome.failures)


def test_the_suite_covers_every_class_with_at_least_60_cases():
    kinds = {case.kind for case in CASES}
    assert kinds == {"secrets", "memory", "exit", "reasons", "records"}
    assert len(CASES) >= 60 and len({case.name for case in CASES}) == len(CASES)


SURVEYED = ("secrets", "records")  # quick cases: the survey's own behaviour is what is tested here


def test_two_surveys_at_once_over_hostile_collections_lose_and_leak_nothing(tmp_path):
    cases = [case for case in CASES if case.kind in SURVEYED and not case.environment]  # one environment per survey
    with hostile_world() as world:
        expected = {stage(world, case, tmp_path / f"case{index:03d}"): case for index, case in enumerate(cases)}
        stores = [tmp_path / "first", tmp_path / "second"]
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda store: _survey(world, store), stores))
    for process in runs:
        assert process.returncode == 0, process.stderr[-2000:]
    reports = [_report(store) for store in stores]
    for report in reports:
        assert sorted(report) == sorted(expected)  # one row per collection: none lost, none doubled
        wrong = {cid: (row["incompatible_reason"] or "compatible", row["error_message"]) for cid, row in report.items()
                 if (row["incompatible_reason"] or "compatible") not in expected[cid].reasons}
        assert not wrong, wrong
    assert _reasons(reports[0]) == _reasons(reports[1])
    for store, process in zip(stores, runs):
        leaks = [f"{name} in {where}" for where, text in _everything_written(store, process)
                 for name, secret in SECRETS.items() if secret in text]
        assert not leaks, leaks


def _survey(world, store: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.support.launch", "survey", "run", "--store", str(store), "--run", "hostile",
               "--access-type", "external", "--batch-size", "4", "--timeout", str(CHECK_TIMEOUT)]
    environment = subprocess_environment(world, {"LAUNCH_MEASURE_FILE": str(store) + ".measure.json"})
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT,
                          timeout=CHECK_TIMEOUT * 60 + GRACE)


def _report(store: Path) -> dict[str, dict]:
    return json.loads((store / "hostile" / "report" / "report.json").read_text())["rows"]


def _reasons(report: dict[str, dict]) -> dict[str, str]:
    return {cid: row["incompatible_reason"] or "compatible" for cid, row in report.items()}


def _everything_written(store: Path, process: subprocess.CompletedProcess):
    yield "stdout", process.stdout
    yield "stderr", process.stderr
    for path in store.rglob("*"):
        if path.is_file():
            yield str(path.relative_to(store)), path.read_bytes().decode("latin-1")
