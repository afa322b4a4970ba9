"""The command line: `check`, the predecessor's flag-only form, JSON and summary output."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys

import pytest

from titiler_cmr_compatibility.cli import main
from titiler_cmr_compatibility.sample import files
from tests.support.images import png_size

GAMSSA = "C2036881735-POCLOUD"


@pytest.fixture
def gamssa(world, monkeypatch):
    world.add_fixture_collection(GAMSSA)
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    return world


def test_check_json(gamssa, capsys, tmp_path):
    tile = tmp_path / "tile.png"
    assert main(["check", "--collection-id", GAMSSA, "--json", "--tile-output", str(tile)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["collection_concept_id"] == GAMSSA and result["tiling_compatible"] is True
    assert png_size(tile.read_bytes()) == (256, 256)
    assert list(result)[:3] == ["collection_concept_id", "collection_short_name_and_version", "concept_id"]


def test_check_summary(gamssa, capsys):
    assert main(["check", "--collection-id", GAMSSA, "--granule-id", "G3264876018-POCLOUD"]) == 0
    out = capsys.readouterr().out
    assert "compatible:  yes (xarray, variable" in out
    assert "G3264876018-POCLOUD" in out and "tiles:" in out and "CMR requests" in out


def test_summary_of_an_incompatible_collection(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ALLOW_LOOPBACK_HOSTS", "true")
    concept_id = world.publish(files.text_file(tmp_path), formats=("ASCII",))
    tile = tmp_path / "tile.png"
    assert main(["check", "--collection-id", concept_id, "--cmr-url", world.cmr.url, "--tile-output", str(tile)]) == 0
    out, err = capsys.readouterr()
    assert "compatible:  no: unsupported_format" in out and "why:" in out
    assert not tile.exists() and "no tile written" in err


def test_predecessor_form_as_a_module(gamssa):
    env = {**os.environ, **gamssa.environment()}
    completed = subprocess.run(
        [sys.executable, "-m", "titiler_cmr_compatibility.cli", "--collection-id", GAMSSA, "--json",
         "--access-type", "external", "--timeout", "60"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["tiling_compatible"] is True


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--collection-id", "not-an-id"],
        ["check", "--collection-id", GAMSSA, "--granule-id", "C1-P"],
        ["check", "--collection-id", GAMSSA, "--timeout", "0"],
        ["check", "--collection-id", GAMSSA, "--access-type", "ftp"],
        ["check"],
    ],
)
def test_bad_input_is_a_clear_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


# The survey commands


def _survey_world(world, tmp_path, monkeypatch):
    for name, value in world.environment().items():
        monkeypatch.setenv(name, value)
    ids = [world.publish(files.netcdf4_grid(tmp_path, f"g{i}.nc")) for i in range(2)]
    ids.append(world.publish(files.text_file(tmp_path), formats=("ASCII",)))
    return ids


def test_survey_run_status_query_download(world, tmp_path, monkeypatch, capsys):
    ids = _survey_world(world, tmp_path, monkeypatch)
    store = str(tmp_path / "store")
    assert main(["survey", "run", "--store", store, "--run", "2026-11", "--access-type", "external"]) == 0
    out = capsys.readouterr().out
    assert "3 markers written" in out and "3 collections, 3 done, 0 pending, 2 compatible" in out
    assert f"{store}/2026-11/report/report.json" in out

    assert main(["survey", "status", "--store", store, "--run", "2026-11", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["done"] == 3 and status["by_reason"] == {"compatible": 2, "unsupported_format": 1}

    assert main(["survey", "query", "--store", store, "--run", "2026-11", "--tiling-compatible", "false"]) == 0
    assert capsys.readouterr().out.split() == [ids[2]]
    assert main(["survey", "query", "--store", store, "--run", "2026-11", "--reason", "unsupported_format"]) == 0
    assert capsys.readouterr().out.split() == [ids[2]]

    for extension in ("json", "csv", "parquet"):
        output = tmp_path / f"out.{extension}"
        assert main(["survey", "download", "--store", store, "--run", "2026-11", "--output-file", str(output)]) == 0
        assert output.stat().st_size > 0
    import pyarrow.parquet as pq

    assert sorted(pq.read_table(tmp_path / "out.parquet").column("collection_concept_id").to_pylist()) == sorted(ids)

    assert main(["survey", "download", "--store", store, "--run", "2026-11", "--output-file", str(tmp_path / "page.html")]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    assert all(concept_id.encode() in (tmp_path / "page.html").read_bytes() for concept_id in ids)
    datasets = tmp_path / "compatible_datasets.csv"
    assert main(["survey", "download", "--store", store, "--run", "2026-11", "--output-file", str(datasets), "--compatible-datasets"]) == 0
    assert "wrote 2 rows" in capsys.readouterr().out
    assert sorted(line.split(",")[0] for line in datasets.read_text().splitlines()[1:]) == sorted(ids[:2])

    # What changed since a table where the ASCII collection was compatible and a grid was not listed.
    earlier = tmp_path / "earlier.csv"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    rows = [{**row, "tiling_compatible": "True"} if row["collection_concept_id"] == ids[2] else row for row in rows if row["collection_concept_id"] != ids[0]]
    with earlier.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["survey", "diff", str(earlier), "2026-11", "--store", store, "--output-file", str(tmp_path / "changes.csv")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"regressed\s+1\b", out) and re.search(r"appeared\s+1\b", out) and re.search(r"became compatible\s+0\b", out)
    changes = list(csv.DictReader((tmp_path / "changes.csv").open()))
    assert {(change["kind"], change["id"]) for change in changes} == {("regressed", ids[2]), ("appeared", ids[0])}
    assert main(["survey", "diff", "2026-10", "2026-11", "--store", store]) == 2
    assert "2026-10: neither a report file nor a run with a report" in capsys.readouterr().err


def test_survey_setup_twice_and_a_second_run_id_do_not_mix(world, tmp_path, monkeypatch, capsys):
    _survey_world(world, tmp_path, monkeypatch)
    store = str(tmp_path / "store")
    assert main(["survey", "setup", "--store", store, "--run", "2026-11"]) == 0
    assert main(["survey", "setup", "--store", store, "--run", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "3 markers written, 0 already there" in out and "0 markers written, 3 already there" in out
    assert main(["survey", "setup", "--store", store, "--run", "2027-01", "--limit", "2"]) == 0
    capsys.readouterr()
    assert main(["survey", "status", "--store", store, "--run", "2027-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["collections"] == 2
    assert main(["survey", "status", "--store", store, "--run", "2026-11", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["collections"] == 3


def test_download_refuses_an_unknown_extension(world, tmp_path, monkeypatch, capsys):
    assert main(["survey", "download", "--store", str(tmp_path), "--output-file", str(tmp_path / "r.xlsx")]) == 2
    assert "must end in .json, .csv, .parquet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("legacy", "modern"),
    [
        (["--lithops", "--lithops-setup", "--s3-bucket", "b", "--s3-prefix", "p", "--total-collections", "50"],
         ["survey", "setup", "--store", "s3://b/p", "--limit", "50"]),
        (["--lithops", "--lithops-process", "--s3-bucket", "b", "--access-type", "external", "--batch-size", "8",
          "--lithops-config-file", "lithops.yaml"],
         ["survey", "process", "--store", "s3://b/collections", "--lithops-config-file", "lithops.yaml",
          "--batch-size", "8", "--access-type", "external"]),
        (["--lithops", "--lithops-reprocess", "--s3-bucket", "b"], ["survey", "reprocess", "--store", "s3://b/collections"]),
        (["--lithops", "--lithops-reprocess-reason", "timeout", "--s3-bucket", "b"],
         ["survey", "reprocess", "--store", "s3://b/collections", "--reason", "timeout"]),
        (["--lithops", "--lithops-status", "--s3-bucket", "b"], ["survey", "status", "--store", "s3://b/collections"]),
        (["--lithops", "--lithops-query", "--s3-bucket", "b", "--tiling-compatible", "false", "--incompatibility-reason", "forbidden"],
         ["survey", "query", "--store", "s3://b/collections", "--reason", "forbidden", "--tiling-compatible", "false"]),
        (["--lithops", "--lithops-download", "--s3-bucket", "b", "--output-file", "r.parquet"],
         ["survey", "download", "--store", "s3://b/collections", "--output-file", "r.parquet"]),
    ],
)  # fmt: skip
def test_predecessor_survey_flags_map_to_survey_commands(legacy, modern):
    from titiler_cmr_compatibility.cli import translate_predecessor_flags

    assert translate_predecessor_flags(legacy) == modern


def test_predecessor_flags_run_against_s3(world, tmp_path, monkeypatch, capsys):
    from tests.support.aws import moto_server, point_boto3_at, s3_client

    _survey_world(world, tmp_path, monkeypatch)
    with moto_server() as endpoint:
        point_boto3_at(monkeypatch, endpoint)
        s3_client(endpoint).create_bucket(Bucket="legacy", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        assert main(["--lithops", "--lithops-setup", "--s3-bucket", "legacy", "--total-collections", "2"]) == 0
        assert main(["--lithops", "--lithops-process", "--s3-bucket", "legacy", "--access-type", "external"]) == 0
        assert main(["--lithops", "--lithops-status", "--s3-bucket", "legacy"]) == 0
        out = capsys.readouterr().out
        assert "2 markers written" in out and "2 collections, 2 done, 0 pending, 2 compatible" in out
        output = tmp_path / "legacy.csv"
        assert main(["--lithops", "--lithops-download", "--s3-bucket", "legacy", "--output-file", str(output)]) == 0
        assert output.read_text().count("\n") == 3  # header + 2 rows


def test_predecessor_flags_need_exactly_one_phase():
    with pytest.raises(SystemExit, match="exactly one"):
        main(["--lithops", "--lithops-setup", "--lithops-status"])


def test_demo_runs_the_whole_survey_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "must-not-be-used-by-the-demo")
    assert main(["demo", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SAMPLE collections" in out and "not NASA data" in out
    assert "12 of 12 as expected" in out
    assert (tmp_path / "survey-output" / "demo" / "report" / "report.parquet").exists()
    assert "must-not-be-used-by-the-demo" not in (tmp_path / "survey-output" / "demo" / "report" / "report.json").read_text()


def test_setup_reports_the_bad_records_it_skipped(world, tmp_path, monkeypatch, capsys):
    from titiler_cmr_compatibility.sample.cmr import make_collection

    _survey_world(world, tmp_path, monkeypatch)
    for concept_id in ("C100-GOOD/attempts", "../C1-TEST"):
        broken = make_collection("C1-TEST", "BROKEN")
        broken["meta"]["concept-id"] = concept_id
        world.cmr.collections.append(broken)
    world.cmr.collections.append({"umm": {}})
    assert main(["survey", "setup", "--store", str(tmp_path / "store"), "--run", "2026-11"]) == 0
    out = capsys.readouterr().out
    assert "6 collections listed" in out and "3 markers written, 0 already there" in out
    assert "3 bad records skipped (invalid_concept_id 2, no_meta_or_umm 1)" in out


def test_setup_with_a_cmr_count_that_is_not_a_count(world, tmp_path, monkeypatch, capsys):
    _survey_world(world, tmp_path, monkeypatch)
    world.cmr.hits_header = "1e18"
    assert main(["survey", "setup", "--store", str(tmp_path / "store"), "--run", "2026-11"]) == 0
    assert "3 markers written" in capsys.readouterr().out


# Every error is one line on stderr and a non-zero exit; the traceback only with --debug.


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("titiler-cmr-compat:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


def test_missing_aws_credentials_are_one_line(monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing leaves the machine, whatever happens
    assert main(["survey", "status", "--store", "s3://no-credentials-bucket/x"]) == 1
    assert one_line_error(capsys) == ("titiler-cmr-compat: error: no AWS credentials for the s3:// store: set "
                                      "AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run where a "
                                      "role provides them)")  # fmt: skip


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_cmr_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CMR_RETRIES", "0")
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["survey", "setup", "--store", str(tmp_path / "store"), "--cmr-url", url]) == 1
    line = one_line_error(capsys)
    assert line.startswith("titiler-cmr-compat: error: CMR providers failed after 1 attempts: ConnectionError:")


def test_a_store_that_cannot_be_written_is_one_line(world, tmp_path, monkeypatch, capsys):
    _survey_world(world, tmp_path, monkeypatch)
    (tmp_path / "file").write_text("not a directory")
    assert main(["survey", "setup", "--store", str(tmp_path / "file" / "store")]) == 1
    assert one_line_error(capsys).startswith("titiler-cmr-compat: error: NotADirectoryError: [Errno 20] Not a directory")


def test_setup_past_its_time_limit_is_one_line(world, tmp_path, monkeypatch, capsys):
    _survey_world(world, tmp_path, monkeypatch)
    world.cmr.trickle_body("collections.umm_json?page_size=2000", bytes_per_second=20)
    monkeypatch.setenv("SETUP_TIMEOUT", "1")
    assert main(["survey", "setup", "--store", str(tmp_path / "store")]) == 1
    assert one_line_error(capsys).startswith("titiler-cmr-compat: error: setup ran past its 1 s limit (setting setup_timeout)")


def test_debug_adds_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CMR_RETRIES", "0")
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["survey", "setup", "--store", str(tmp_path / "store"), "--cmr-url", url, "--debug"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "CMRError" in err
    assert err.rstrip().splitlines()[-1].startswith("titiler-cmr-compat: error: CMR providers failed")
