"""The demo's sample: the real check, over the served sample, concludes what the sample promises."""

from __future__ import annotations

import subprocess
import sys

import pytest

from titiler_cmr_compatibility.check import check_collection
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample.demo import COMPATIBLE, build_sample, outcome, serve_sample
from titiler_cmr_compatibility.sample.server import LOOPBACK_SETTINGS
from titiler_cmr_compatibility.settings import Settings
from titiler_cmr_compatibility.umm import NO_DIRECT_LINK


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return build_sample(tmp_path_factory.mktemp("sample"))


def test_every_sample_collection_gets_its_expected_outcome(catalog):
    with serve_sample(catalog) as servers:
        settings = Settings(_env_file=None, cmr_url=servers.cmr_url, access_type="external", **LOOPBACK_SETTINGS)
        results = {concept_id: check_collection(concept_id, settings=settings) for concept_id in catalog.expected}
    outcomes = {concept_id: outcome(result) for concept_id, result in results.items()}
    messages = {concept_id: result.error_message for concept_id, result in results.items()}
    assert outcomes == catalog.expected, messages
    # The one sample the engines render but titiler-cmr cannot take says what it would have to accept.
    assert {result.titiler_cmr_blocker for result in results.values()} == {None, NO_DIRECT_LINK}
    served = {result.data_url for result in results.values() if result.data_url}
    assert all(url.startswith(servers.data_url) for url in served)


def test_the_sample_covers_the_usual_outcomes(catalog):
    assert len(catalog.collections) == 12
    counts = {value: list(catalog.expected.values()).count(value) for value in set(catalog.expected.values())}
    assert counts == {
        COMPATIBLE: 5,
        Reason.FAILED_TO_EXTRACT_URL: 1,  # renders, but its granules have no s3 link for titiler-cmr
        Reason.NO_XY_DIMENSIONS: 2,
        Reason.UNSUPPORTED_FORMAT: 2,
        Reason.FORBIDDEN: 1,
        Reason.NO_GRANULE_FOUND: 1,
    }
    for concept_id, granules in catalog.granules.items():
        assert len(granules) <= 3 and (granules or catalog.expected[concept_id] == Reason.NO_GRANULE_FOUND)
    assert all(path.is_file() for path in catalog.files.values())
    assert {item["meta"]["provider-id"] for item in catalog.collections} == {"DEMO", "DEMO_CLOUD"}


def test_the_sample_is_deterministic(catalog, tmp_path):
    again = build_sample(tmp_path)
    assert again.collections == catalog.collections
    assert again.granules == catalog.granules
    assert again.expected == catalog.expected
    assert sorted(again.files) == sorted(catalog.files)


def test_the_sample_needs_no_test_dependency(tmp_path):
    """scipy (netCDF-3 only) is a test dependency: building the demo's sample must not import it."""
    code = (
        "import pathlib, sys\n"
        "from titiler_cmr_compatibility.sample.demo import build_sample\n"
        "build_sample(pathlib.Path(sys.argv[1]))\n"
        "assert 'scipy' not in sys.modules, 'scipy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=120)
