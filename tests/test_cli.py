"""The command line: `check`, the predecessor's flag-only form, JSON and summary output."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from titiler_cmr_compatibility.cli import main
from titiler_cmr_compatibility.sample import files

GAMSSA = "C2036881735-POCLOUD"


@pytest.fixture
def gamssa(world, monkeypatch):
    world.add_fixture_collection(GAMSSA)
    monkeypatch.setenv("CMR_URL", world.cmr.search_url)
    return world


def test_check_json(gamssa, capsys):
    assert main(["check", "--collection-id", GAMSSA, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["collection_concept_id"] == GAMSSA and result["tiling_compatible"] is True
    assert list(result)[:3] == ["collection_concept_id", "collection_short_name_and_version", "concept_id"]


def test_check_summary(gamssa, capsys):
    assert main(["check", "--collection-id", GAMSSA, "--granule-id", "G3264876018-POCLOUD"]) == 0
    out = capsys.readouterr().out
    assert "compatible:  yes (xarray, variable" in out
    assert "G3264876018-POCLOUD" in out and "tiles:" in out and "CMR requests" in out


def test_summary_of_an_incompatible_collection(world, tmp_path, monkeypatch, capsys):
    concept_id = world.publish(files.text_file(tmp_path), formats=("ASCII",))
    assert main(["check", "--collection-id", concept_id, "--cmr-url", world.cmr.url]) == 0
    out = capsys.readouterr().out
    assert "compatible:  no: unsupported_format" in out and "why:" in out


def test_predecessor_form_as_a_module(gamssa):
    env = {**os.environ, "CMR_URL": gamssa.cmr.search_url}
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
