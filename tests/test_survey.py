"""A whole survey on one machine: markers, Lithops localhost, the reprocess loop, the report —
in a local directory and in moto S3."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lithops.constants
import pytest

from titiler_cmr_compatibility.cmr import CMRClient
from titiler_cmr_compatibility.diff import read_table
from titiler_cmr_compatibility.report import COMPATIBLE_KEYS
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.sample.cmr import make_collection
from titiler_cmr_compatibility.storage import open_storage
from titiler_cmr_compatibility.survey import (GIVEN_UP, MARKER, RESULT, TILE, SetupDeadline, SetupTimeout, Survey,
                                             check_call, lithops_executor)  # fmt: skip
from titiler_cmr_compatibility.survey import worker_settings as survey_worker_settings
from tests.support.aws import FlakyS3, moto_server, point_boto3_at, s3_client
from tests.support.fixtures import fixtures_dir, load_fixture_collections
from tests.support.images import png_size, thumbnail_png
from tests.support.workers import (CRASH_MARK, LATE_MARK, LATE_SECONDS, crash_always, crash_first_attempt,
                                   hang_in_check, start_late_once)  # fmt: skip

RUN = "2026-11"
PREDECESSOR = fixtures_dir() / "survey" / "tiling_results-11-24-2025.parquet"
WITH_DATA = ["C2036881735-POCLOUD", "C2021957657-LPCLOUD", "C2623694361-GES_DISC"]
WITH_GRANULES = ["C2077042612-POCLOUD", "C2532426483-ORNL_CLOUD", "C2270392799-POCLOUD", "C1598621093-GES_DISC"]


def real_records_without_granules(count: int) -> list[dict]:
    """Real records of several providers and formats (their granules are not in the fixtures)."""
    chosen, providers = [], {}
    for item in load_fixture_collections():
        provider = item["meta"]["provider-id"]
        if item["meta"].get("granule-count") and providers.get(provider, 0) < 3 and item["meta"]["concept-id"] not in WITH_DATA + WITH_GRANULES:
            providers[provider] = providers.get(provider, 0) + 1
            chosen.append(item)
        if len(chosen) == count:
            break
    return chosen


@pytest.fixture
def populated(world, tmp_path):
    """Real records (with their real data where the fixtures have it) and generated ones."""
    for concept_id in WITH_DATA + WITH_GRANULES:
        world.add_fixture_collection(concept_id)
    for granule in world.cmr.granules["C2623694361-GES_DISC"]:
        for related in granule["umm"]["RelatedUrls"]:
            if related["Type"] == "GET DATA":
                world.data.add("/" + related["URL"].split("/", 3)[3], files.text_file(tmp_path))
    world.cmr.collections.extend(real_records_without_granules(20))
    world.publish(files.netcdf4_grid(tmp_path, "grid.nc"))
    world.publish(files.cog(tmp_path, size=512))
    return world


def worker_settings(world) -> dict:
    return survey_worker_settings(world.settings())


def setup(world, survey: Survey, limit: int | None = None):
    cmr = CMRClient(world.settings())
    return survey.setup(cmr.search_collections(providers=cmr.eosdis_providers(), limit=limit))


def test_setup_is_idempotent(world, tmp_path):
    world.cmr.collections.extend(real_records_without_granules(12))
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    first = setup(world, survey)
    assert first.created == first.listed == 12
    puts = survey.storage.stats.puts
    second = setup(world, survey)
    assert second.created == 0 and second.existing == 12
    assert survey.storage.stats.puts - puts <= 1  # at most the manifest's create, refused
    marker = json.loads(survey.storage.read(survey.key(world.cmr.collections[0]["meta"]["concept-id"], MARKER)))
    assert marker["concept_id"] == world.cmr.collections[0]["meta"]["concept-id"] and "formats" in marker


def test_setup_pages_cmr_2000_at_a_time(world, tmp_path):
    world.cmr.collections.extend(load_fixture_collections()[:4009])
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    cmr = CMRClient(world.settings())
    stats = survey.setup(cmr.search_collections(providers=cmr.eosdis_providers(), has_granules=False))
    assert stats.created == 4009
    assert world.cmr.count("collections.umm_json") == 3  # ceil(4009 / 2000)


BAD_IDS = ["C100-GOOD/attempts", "../C1-TEST", "/etc/passwd", "C1-TE\x00ST", "C" + "1" * 10_000 + "-TEST",
           "C5-test", "G5-TEST", "", None, 5]  # fmt: skip


def hostile_records() -> tuple[list, list[str]]:
    """Good records, and broken ones of every kind setup must skip; the good concept ids."""
    good = [make_collection(f"C{n}-GOOD", f"GOOD_{n}", provider="GOOD") for n in (100, 101)]
    bad_ids = [make_collection("C9-GOOD", "BAD_ID", provider="GOOD") for _ in BAD_IDS]
    for record, concept_id in zip(bad_ids, BAD_IDS):
        record["meta"]["concept-id"] = concept_id
    bad_counts = [make_collection(f"C{n}-GOOD", f"BAD_COUNT_{n}", provider="GOOD", granule_count=None) for n in range(200, 205)]
    for record, count in zip(bad_counts, ["abc", 1e18, 10**18, 3.5, True]):
        record["meta"]["granule-count"] = count
    no_umm = make_collection("C300-GOOD", "NO_UMM", provider="GOOD")
    del no_umm["umm"]
    shapeless = [{"umm": good[0]["umm"]}, {"meta": {"concept-id": "C301-GOOD"}, "umm": []}, "junk", None, []]
    records = [*bad_ids[:5], good[0], *bad_counts, no_umm, *shapeless, good[1], *bad_ids[5:]]
    return records, [record["meta"]["concept-id"] for record in good]


def test_setup_skips_bad_records_counts_them_and_makes_no_stray_key(world, tmp_path):
    records, good = hostile_records()
    world.cmr.collections.extend(records)
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    stats = setup(world, survey)
    assert stats.listed == len(records) and stats.created == 2
    assert stats.skipped == {"invalid_concept_id": len(BAD_IDS), "invalid_granule_count": 5, "no_meta_or_umm": 6}
    assert stats.describe_skipped() == (f"{len(BAD_IDS) + 11} bad records skipped (invalid_concept_id {len(BAD_IDS)}, "
                                        "invalid_granule_count 5, no_meta_or_umm 6)")  # fmt: skip
    keys = list(survey.storage.list(""))
    assert sorted(keys) == sorted([f"{RUN}/survey.json", f"{RUN}/setup.json"] + [survey.key(cid, MARKER) for cid in good])
    assert json.loads(survey.storage.read(f"{RUN}/setup.json"))["collections"] == len(good)
    assert not any(path.name != ".marker" and path.is_file() for path in (tmp_path / "store" / RUN / "collections").rglob("*"))
    scan = survey.scan()
    assert scan.markers == set(good) and not scan.attempts
    assert survey.finalize(max_attempts=1) == 0  # no phantom collection to mark processing_failed


@pytest.mark.parametrize("concept_id", BAD_IDS[:6])
def test_a_storage_key_is_never_made_of_an_invalid_id(tmp_path, concept_id):
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    with pytest.raises(ValueError, match="is not a CMR collection concept id"):
        survey.key(concept_id, MARKER)


def test_scan_ignores_folders_that_are_not_collections(tmp_path):
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    survey.storage.write(survey.key("C1-GOOD", MARKER), b"{}")
    survey.storage.write(f"{RUN}/collections/C2-GOOD-X/attempts/1.json", b"{}")
    survey.storage.write(f"{RUN}/collections/notes/.marker", b"{}")
    scan = survey.scan()
    assert scan.markers == {"C1-GOOD"} and not scan.attempts


def test_setup_stops_at_its_time_limit(world, tmp_path):
    world.cmr.collections.extend(make_collection(f"C{n}-TEST", f"S{n}") for n in range(5))
    cmr = CMRClient(world.settings(cmr_timeout=30))
    providers = cmr.eosdis_providers()
    world.cmr.trickle_body("collections", bytes_per_second=20)
    deadline = SetupDeadline(1.0)
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    started = time.monotonic()
    with pytest.raises(SetupTimeout, match=r"setup ran past its 1 s limit \(setting setup_timeout\)"):
        survey.setup(CMRClient(world.settings(cmr_timeout=30), deadline).search_collections(providers=providers),
                     deadline=deadline)  # fmt: skip
    assert time.monotonic() - started < 4
    assert survey.scan().markers == set()


def _full_survey(world, storage) -> Survey:
    survey = Survey(storage, RUN)
    setup(world, survey)
    survey.run_loop(lithops_executor("localhost"), worker_settings(world), batch_size=4)
    return survey


def _assert_complete(survey: Survey, world) -> dict:
    scan = survey.scan()
    assert scan.pending == [] and scan.markers == scan.results
    report, written = survey.compile_report()
    assert set(report["rows"]) == scan.markers and written > 0
    rows = report["rows"]
    assert rows["C2036881735-POCLOUD"]["tiling_compatible"] is True
    assert rows["C2623694361-GES_DISC"]["incompatible_reason"] == Reason.UNSUPPORTED_FORMAT
    assert all(r["tiling_compatible"] or r["incompatible_reason"] for r in rows.values())
    assert report["summary"]["collections"] == len(scan.markers)
    # The proof: each compatible collection's tile beside its result, and its thumbnail in it.
    for concept_id, row in rows.items():
        tile = survey.storage.read(survey.key(concept_id, TILE))
        if row["tiling_compatible"]:
            assert png_size(tile) == (256, 256), concept_id
            assert png_size(thumbnail_png(row["thumbnail"])) == (64, 64), concept_id
        else:
            assert tile is None and row["thumbnail"] is None, concept_id
    return report


def test_full_local_survey(populated, tmp_path):
    survey = _full_survey(populated, open_storage(tmp_path / "store"))
    report = _assert_complete(survey, populated)
    assert report["summary"]["by_reason"]["no_granule_found"]["collections"] == 20
    compatible = sorted(cid for cid, row in report["rows"].items() if row["tiling_compatible"])
    assert len(compatible) >= 3
    for concept_id in compatible:  # the tile is written first: result.json is what the aggregator acts on
        folder = tmp_path / "store" / RUN / "collections" / concept_id
        assert (folder / TILE).stat().st_mtime_ns <= (folder / RESULT).stat().st_mtime_ns
    for name in ("report.json", "report.csv", "report.parquet", "report.html"):
        assert (tmp_path / "store" / RUN / "report" / name).stat().st_size > 0
    table = (tmp_path / "store" / RUN / "report" / "compatible_datasets.csv").read_text().splitlines()
    assert table[0] == ",".join(COMPATIBLE_KEYS) and sorted(line.split(",")[0] for line in table[1:]) == compatible

    # Against the earlier survey. GAMSSA: it tried the scalar `crs` and said no_xy_dimensions;
    # this one tiles analysed_sst. The comparison is kept for the run's later pages.
    survey.compile_report(compare_with=[PREDECESSOR])
    changes = json.loads((tmp_path / "store" / RUN / "report" / "changes.json").read_bytes())
    assert [change["against"] for change in changes] == [PREDECESSOR.name]
    entries = {entry["id"]: entry for entry in changes[0]["entries"]}
    gamssa = entries["C2036881735-POCLOUD"]
    assert gamssa["kind"] == "became_compatible" and "variable 'crs' was tried" in gamssa["why"]
    assert changes[0]["both"] == len(set(read_table(PREDECESSOR)) & survey.scan().results)
    assert PREDECESSOR.name.encode() in (tmp_path / "store" / RUN / "report" / "report.html").read_bytes()


def test_full_survey_in_s3(populated, monkeypatch):
    with moto_server() as endpoint:
        point_boto3_at(monkeypatch, endpoint)
        s3_client(endpoint).create_bucket(Bucket="survey", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        survey = _full_survey(populated, open_storage("s3://survey/compat"))
        _assert_complete(survey, populated)
        keys = [o["Key"] for o in s3_client(endpoint).list_objects_v2(Bucket="survey", Prefix=f"compat/{RUN}/report/")["Contents"]]
        assert sorted(keys) == [f"compat/{RUN}/report/{name}" for name in
                                ("compatible_datasets.csv", "report.csv", "report.html", "report.json", "report.parquet")]


@pytest.mark.parametrize("store_kind", ["local", "s3"])
def test_a_worker_that_always_crashes_ends_with_terminal_records(world, tmp_path, monkeypatch, store_kind):
    for i in range(2):
        world.publish(files.netcdf4_grid(tmp_path, f"ok{i}.nc"))
    crashing = world.publish(files.netcdf4_grid(tmp_path, "crash.nc"), provider="TEST" + CRASH_MARK)
    with moto_server() as endpoint:
        if store_kind == "s3":
            point_boto3_at(monkeypatch, endpoint)
            s3_client(endpoint).create_bucket(Bucket="survey", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
            storage = open_storage("s3://survey")
        else:
            storage = open_storage(tmp_path / "store")
        survey = Survey(storage, RUN)
        setup(world, survey)
        waves = survey.run_loop(lithops_executor("localhost"), worker_settings(world), max_attempts=3,
                                batch_size=1, worker=crash_always)  # fmt: skip
        assert [wave.submitted for wave in waves] == [3, 1, 1]
        assert [wave.failed_calls for wave in waves] == [1, 1, 1]
        scan = survey.scan()
        assert scan.pending == [] and scan.attempts[crashing] == 3
        terminal = json.loads(survey.storage.read(survey.key(crashing, RESULT)))
        assert terminal["incompatible_reason"] == Reason.PROCESSING_FAILED
        assert "after 3 attempts" in terminal["error_message"] and "exited with code 137" in terminal["error_message"]
        assert terminal["collection_short_name_and_version"]  # filled from the marker


def test_a_worker_failing_once_is_taken_by_the_reprocess_loop(world, tmp_path):
    crashing = world.publish(files.netcdf4_grid(tmp_path, "crash.nc"), provider="TEST" + CRASH_MARK)
    world.publish(files.netcdf4_grid(tmp_path, "ok.nc"))
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    setup(world, survey)
    waves = survey.run_loop(lithops_executor("localhost"), worker_settings(world), batch_size=1, worker=crash_first_attempt)
    assert [wave.submitted for wave in waves] == [2, 1]
    result = json.loads(survey.storage.read(survey.key(crashing, RESULT)))
    assert result["tiling_compatible"] is True
    assert survey.scan().attempts[crashing] == 2


def test_reprocess_by_reason(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path, "flaky.nc"))
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    setup(world, survey)
    world.cmr.fail_next(100, status=503, path_contains="granules")
    executor = lithops_executor("localhost")
    survey.run_loop(executor, worker_settings(world))
    assert json.loads(survey.storage.read(survey.key(concept_id, RESULT)))["incompatible_reason"] == "cmr_error"
    world.cmr.clear_faults()
    first = survey.storage.read(survey.key(concept_id, RESULT))
    waves = survey.reprocess_reason("cmr_error", executor, worker_settings(world))
    assert [wave.submitted for wave in waves] == [1]
    assert json.loads(survey.storage.read(survey.key(concept_id, RESULT)))["tiling_compatible"] is True
    scan = survey.scan()  # fresh attempts; the earlier result is kept in the collection's history
    assert scan.attempts[concept_id] == 1 and scan.last_attempt[concept_id] == 2
    assert survey.storage.read(survey.key(concept_id, "history/1.json")) == first


def test_killed_survey_resumes_without_losing_or_doubling(populated, tmp_path):
    """Kill the survey process (and its Lithops workers) mid-run, run it again: only what was
    pending is processed, and every collection ends with exactly one result."""
    for path in ("/podaac-ops-cumulus-protected/", "/test-protected/"):
        populated.data.slow(path, 0.5)
    store = tmp_path / "store"
    command = [sys.executable, "-m", "titiler_cmr_compatibility.cli", "survey", "run", "--store", str(store),
               "--run", RUN, "--cmr-url", populated.cmr.search_url, "--batch-size", "1", "--access-type", "external"]  # fmt: skip
    env = dict(os.environ)
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    survey = Survey(open_storage(store), RUN)
    deadline = time.monotonic() + 120
    while len(survey.scan().results) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = survey.scan()
    assert 5 <= len(before.results) < len(before.markers), "the kill must land mid-survey"
    finished = {cid: survey.storage.read(survey.key(cid, RESULT)) for cid in before.results}

    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    after = survey.scan()
    assert after.pending == [] and after.results == after.markers
    for concept_id, body in finished.items():
        assert survey.storage.read(survey.key(concept_id, RESULT)) == body  # not checked again
        assert after.attempts[concept_id] == 1
    report = survey.load_report()
    assert set(report["rows"]) == after.markers
    assert "report:" in completed.stdout


def test_a_survey_through_a_flaky_s3_loses_and_doubles_nothing(world, tmp_path, monkeypatch):
    """S3 refusing requests (SlowDown) and losing the answers of writes that landed, on marker,
    result and report writes: every collection still has one marker, one result and one row."""
    ids = {world.publish(files.netcdf4_grid(tmp_path, f"g{index}.nc")) for index in range(5)}
    with moto_server() as endpoint, FlakyS3(endpoint) as proxy:
        point_boto3_at(monkeypatch, proxy.url)
        s3_client(endpoint).create_bucket(Bucket="survey", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        proxy.fail_next(3, status=503, path_contains=MARKER)
        proxy.lose_answer_next(2, MARKER)
        proxy.fail_next(2, status=503, path_contains=RESULT)
        proxy.lose_answer_next(2, RESULT)
        proxy.lose_answer_next(1, "report/report.json")
        proxy.fail_next(1, status=500, path_contains="report/report.csv")
        survey = Survey(open_storage("s3://survey/compat"), RUN)
        assert setup(world, survey).created == 5
        with lithops_executor("localhost") as executor:
            waves = survey.run_loop(executor, worker_settings(world), batch_size=2)
        report, _ = survey.compile_report()
        keys = [item["Key"] for page in s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket="survey")
                for item in page.get("Contents", [])]  # fmt: skip
    assert proxy.lost_answers == 5
    assert [wave.submitted for wave in waves] == [5]  # no collection needed a second attempt
    for name in (MARKER, RESULT):
        assert sorted(key.split("/")[-2] for key in keys if key.endswith("/" + name)) == sorted(ids)
    assert not [key for key in keys if "/history/" in key]
    assert set(report["rows"]) == ids and all(row["tiling_compatible"] for row in report["rows"].values())


def _outcomes(report: dict) -> dict[str, tuple]:
    return {cid: (row["tiling_compatible"], row["incompatible_reason"]) for cid, row in report["rows"].items()}


def test_surveys_at_once_finish_as_one_after_the_other(world, tmp_path):
    """Two survey processes of one user (one temp folder, as /tmp is) and this test run's own
    survey, all at once: each finishes with the results of a survey run alone, and none leaves
    Lithops files in the shared temp folder."""
    world.publish(files.netcdf4_grid(tmp_path, "grid.nc"))
    world.publish(files.cog(tmp_path, size=512))
    world.publish(files.text_file(tmp_path))
    world.publish(files.netcdf4_grid(tmp_path, "ftp.nc"), urls=[("ftp://example.org/ftp.nc", "GET DATA")])
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    env = {**os.environ, "TMPDIR": str(shared), "ALLOW_LOOPBACK_HOSTS": "true", "TOKEN_HOSTS": '["127.0.0.1"]'}
    processes = [
        subprocess.Popen([sys.executable, "-m", "titiler_cmr_compatibility.cli", "survey", "run", "--store",
                          str(tmp_path / f"store-{n}"), "--run", RUN, "--cmr-url", world.cmr.search_url,
                          "--batch-size", "2", "--access-type", "external"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        for n in (1, 2)
    ]
    beside = _full_survey(world, open_storage(tmp_path / "store-beside"))
    for process in processes:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
    alone = _outcomes(_full_survey(world, open_storage(tmp_path / "store-alone")).compile_report()[0])
    assert len(alone) == 4 and sum(compatible for compatible, _reason in alone.values()) == 2
    assert _outcomes(beside.compile_report()[0]) == alone
    for n in (1, 2):
        assert _outcomes(Survey(open_storage(tmp_path / f"store-{n}"), RUN).load_report()) == alone
    assert list(shared.iterdir()) == []  # no lithops-$USER; each survey's own folder removed


@contextlib.contextmanager
def half_copied_lithops():
    """The package copy that localhost runners import left half-copied, as when another process
    replaces it under them: runners then fail to import and their calls never report."""
    package = Path(lithops.constants.LITHOPS_TEMP_DIR) / "lithops"
    whole = package.with_name("lithops.whole")
    package.rename(whole)
    package.mkdir()
    shutil.copy(whole / "__init__.py", package)
    try:
        yield
    finally:
        shutil.rmtree(package)
        whole.rename(package)


def test_a_call_whose_runner_never_starts_fails_after_its_grace_not_the_waves_limit(world, tmp_path, caplog):
    """Mid-survey, the package copy breaks: the calls after it never start, and each wave ends a
    start grace after its last sign of life instead of at its limit."""
    first = world.publish(files.netcdf4_grid(tmp_path, "first.nc"))
    for i in range(3):
        world.publish(files.netcdf4_grid(tmp_path, f"grid{i}.nc"))
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    setup(world, survey)
    with lithops_executor("localhost") as executor:
        assert survey.process([(first, 1)], executor, worker_settings(world), batch_size=1).failed_calls == 0
        values = {**worker_settings(world), "check_timeout": 2, "worker_overhead": 5, "start_grace": 3}
        with half_copied_lithops():
            started = time.monotonic()
            waves = survey.run_loop(executor, values, max_attempts=2, batch_size=1)
            elapsed = time.monotonic() - started
    assert "No module named 'lithops.executors'" in caplog.text  # the runner really failed
    assert [(wave.submitted, wave.failed_calls) for wave in waves] == [(3, 3), (3, 3)]
    # Two waves of 3 s grace (and launching); before, a wave waited for check_timeout x
    # collections + 300 s: here 306 s.
    assert elapsed < 2 * (3 + 10)
    assert json.loads(survey.storage.read(survey.key(first, RESULT)))["tiling_compatible"] is True
    for concept_id in survey.scan().markers - {first}:
        result = json.loads(survey.storage.read(survey.key(concept_id, RESULT)))
        assert result["incompatible_reason"] == Reason.PROCESSING_FAILED
        assert "after 2 attempts" in result["error_message"]
        assert "no worker started the call within 3 s" in result["error_message"]


def test_a_call_that_runs_past_its_budget_is_stopped_and_failed(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path, "grid.nc"))
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    setup(world, survey)
    values = {**worker_settings(world), "check_timeout": 2, "worker_overhead": 8}
    with lithops_executor("localhost") as executor:
        started = time.monotonic()
        waves = survey.run_loop(executor, values, max_attempts=1, batch_size=1, worker=hang_in_check)
        elapsed = time.monotonic() - started
    result = json.loads(survey.storage.read(survey.key(concept_id, RESULT)))
    assert [wave.failed_calls for wave in waves] == [1], result
    # Its budget, 1 check x 2 s + 8 s, and a runner's start; before, the wave's 302 s limit.
    assert 10 <= elapsed < 30
    assert result["incompatible_reason"] == Reason.PROCESSING_FAILED
    assert "exceeded maximum time of 10 seconds" in result["error_message"]  # Lithops stopped it


def test_a_call_given_up_before_it_started_is_stopped_and_checks_nothing(world, tmp_path):
    """Its stuck job does not hold the next wave, and a late delivery finds it claimed."""
    concept_id = world.publish(files.netcdf4_grid(tmp_path, "grid.nc"), provider="TEST" + LATE_MARK)
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    setup(world, survey)
    values = {**worker_settings(world), "start_grace": 6}
    with lithops_executor("localhost") as executor:
        started = time.monotonic()
        waves = survey.run_loop(executor, values, batch_size=1, worker=start_late_once)
        elapsed = time.monotonic() - started
    assert [(wave.submitted, wave.failed_calls) for wave in waves] == [(1, 1), (1, 0)]
    assert elapsed < LATE_SECONDS  # the late job was stopped, not waited for by the second wave
    first = json.loads(survey.storage.read(survey.key(concept_id, "attempts/1.json")))
    assert "no worker started the call within 6 s" in first["error"]
    assert survey.storage.read(survey.wave_key(first["wave"], "started/0")).startswith(GIVEN_UP)
    assert survey.storage.read(survey.wave_key(first["wave"], "done/0")) is None
    result = survey.storage.read(survey.key(concept_id, RESULT))
    assert json.loads(result)["tiling_compatible"] is True and survey.scan().attempts[concept_id] == 2
    # Delivered again (as Lambda may), the given-up call still checks nothing.
    assert "skipped" in check_call(survey.storage.location, RUN, first["wave"], 0)
    assert survey.storage.read(survey.key(concept_id, RESULT)) == result


def test_a_lithops_that_cannot_run_anything_ends_in_terminal_records(world, tmp_path):
    """Lithops raises when asked to map (its runtime's interpreter does not exist): the survey
    counts failed attempts and finishes, it does not crash."""
    concept_id = world.publish(files.netcdf4_grid(tmp_path, "grid.nc"))
    survey = Survey(open_storage(tmp_path / "store"), RUN)
    setup(world, survey)
    config = tmp_path / "lithops.yaml"
    config.write_text(json.dumps({"lithops": {"backend": "localhost"}, "localhost": {"runtime": str(tmp_path / "no-python")}}))
    with lithops_executor(config_file=config) as executor:
        waves = survey.run_loop(executor, worker_settings(world), max_attempts=2)
    assert [wave.failed_calls for wave in waves] == [1, 1]
    result = json.loads(survey.storage.read(survey.key(concept_id, RESULT)))
    assert result["incompatible_reason"] == Reason.PROCESSING_FAILED
    assert "Lithops did not send the call: FileNotFoundError" in result["error_message"]
