"""The result record: the predecessor's keys and reasons, and no secret in any message."""

from __future__ import annotations

import json
import logging

import pyarrow.parquet as pq

from titiler_cmr_compatibility.cli import summary as cli_summary
from titiler_cmr_compatibility.result import MAX_LISTED, REPORT_KEYS, CheckResult, Reason, register_secret, scrub
from tests.support.fixtures import fixtures_dir

PREDECESSOR_REASONS = {
    "unsupported_format", "cant_open_file", "tile_generation_failed", "no_granule_found",
    "failed_to_extract_url", "timeout", "cant_extract_variables", "group_structure",
    "no_xy_dimensions", "forbidden", "decode_error", "group_not_aligned_with_parents",
}  # fmt: skip


def test_predecessor_report_columns_come_first_in_the_same_order():
    published = pq.read_schema(fixtures_dir() / "survey" / "tiling_results-11-24-2025.parquet").names
    published = [name for name in published if not name.startswith("__")]
    assert REPORT_KEYS[:17] == published


def test_predecessor_reasons_are_all_kept():
    assert PREDECESSOR_REASONS <= {reason.value for reason in Reason}


def test_every_reason_in_the_published_survey_is_a_reason_here():
    table = pq.read_table(fixtures_dir() / "survey" / "tiling_results-11-24-2025.parquet", columns=["incompatible_reason"])
    seen = {value for value in table.column(0).to_pylist() if value}
    assert seen <= {reason.value for reason in Reason}


def test_fail_scrubs_and_classifies():
    result = CheckResult(collection_concept_id="C1-P").fail(
        Reason.FORBIDDEN, "GET https://h/f.nc?X-Amz-Signature=abc123&X-Amz-Credential=AKIAXX failed"
    )
    assert result.incompatible_reason is Reason.FORBIDDEN
    assert "abc123" not in result.error_message and "AKIAXX" not in result.error_message
    assert result.to_record()["incompatible_reason"] == "forbidden"


def test_scrub_removes_tokens_keys_and_passwords():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJ0eXBlIjoiVXNlciJ9.c2lnbmF0dXJlLXBhcnQ"
    text = (
        f"Authorization: Bearer {jwt} then headers={{'Authorization': 'Bearer abc.def'}} "
        "key ASIAABCDEFGHIJKLMNOP secretAccessKey=wJalrXUtnFEMI/K7MDENG sessionToken: FwoGZXIvYXdzEJr "
        "https://user:hunter2@example.com/x password=hunter2"
    )
    cleaned = scrub(text)
    for secret in (jwt, "abc.def", "ASIAABCDEFGHIJKLMNOP", "wJalrXUtnFEMI/K7MDENG", "FwoGZXIvYXdzEJr", "hunter2"):
        assert secret not in cleaned, secret


def test_registered_secrets_are_removed_whatever_their_shape():
    register_secret("plain-looking-value-42")
    assert scrub("the server said plain-looking-value-42 is wrong") == "the server said <redacted> is wrong"


def test_scrub_keeps_useful_text_and_bounds_length():
    assert scrub("CMR granules.umm_json?collection_concept_id=C1-P failed: HTTP 500") == (
        "CMR granules.umm_json?collection_concept_id=C1-P failed: HTTP 500"
    )
    assert len(scrub("x" * 10_000)) == 2000
    assert scrub(None) is None


def test_every_field_is_scrubbed_on_the_way_out():
    register_secret("tok-in-a-file-name-77")
    result = CheckResult(
        collection_concept_id="C1-P",
        data_url="https://someone:pa55@data.example/f.nc?X-Amz-Signature=sig-value-1&X-Amz-Credential=cred-2",
        variable="sst_tok-in-a-file-name-77",
        data_variables=["a", "tok-in-a-file-name-77"],
        groups=["/tok-in-a-file-name-77/grid"],
        tiles_url="https://t.example/tiles?access_token=tok-zz9",
    )
    outputs = [json.dumps(result.to_record()), result.model_dump_json(), cli_summary(result)]
    for output in outputs:
        for secret in ("pa55", "sig-value-1", "cred-2", "tok-in-a-file-name-77", "tok-zz9"):
            assert secret not in output, (secret, output)
    assert result.to_record()["data_url"] == (
        "https://<redacted>@data.example/f.nc?X-Amz-Signature=<redacted>&X-Amz-Credential=<redacted>"
    )


def test_a_file_with_endless_names_is_listed_with_a_count():
    record = CheckResult(collection_concept_id="C1-P", groups=[f"/g{i}" for i in range(100_000)]).to_record()
    assert len(record["groups"]) == MAX_LISTED + 1 and record["groups"][-1] == f"... and {100_000 - MAX_LISTED} more"


def test_every_log_line_is_scrubbed(caplog):
    register_secret("log-secret-55")
    logger = logging.getLogger("anything.at.all")
    with caplog.at_level(logging.WARNING):
        logger.warning("sent %s to %s", "Bearer log-secret-55", "https://u:pw-in-log@h/x")
        try:
            raise ValueError("failed with log-secret-55")
        except ValueError:
            logger.exception("while reading")
    text = caplog.text
    assert "log-secret-55" not in text and "pw-in-log" not in text
    assert "while reading" in text and "ValueError" in text
