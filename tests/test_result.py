"""The result record: the predecessor's keys and reasons, and no secret in any message."""

from __future__ import annotations

import pyarrow.parquet as pq

from titiler_cmr_compatibility.result import REPORT_KEYS, CheckResult, Reason, register_secret, scrub
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
