"""The SAM template lints clean, and the check's Lambda handler runs the real check."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from titiler_cmr_compatibility.sample import files

ROOT = Path(__file__).resolve().parents[1]


def test_template_lints_clean():
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(ROOT / "template.yaml")], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_check_handler_returns_the_result_record(world, tmp_path, monkeypatch):
    monkeypatch.setenv("CMR_URL", world.cmr.search_url)
    monkeypatch.setenv("ACCESS_TYPE", "external")
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    spec = importlib.util.spec_from_file_location("check_app", ROOT / "functions" / "check" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = SimpleNamespace(function_name="check", memory_limit_in_mb=2048, invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:check", aws_request_id="req-1")
    record = module.handler({"collection_concept_id": concept_id}, context)
    assert record["tiling_compatible"] is True and record["collection_concept_id"] == concept_id
