"""The CMR client against a fake CMR on 127.0.0.1: paging, retries, counts, providers."""

from __future__ import annotations

import random
import time

import pytest

from titiler_cmr_compatibility.cmr import MAX_OFFSET, MAX_RESPONSE_BYTES, CMRClient, CMRError
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.settings import Settings
from titiler_cmr_compatibility.sample.cmr import FakeCMR, make_collection, provider_item
from tests.support.fixtures import load_fixture_collections, load_fixture_granules


def client(cmr: FakeCMR, **settings) -> CMRClient:
    defaults = {"cmr_url": cmr.search_url, "cmr_backoff": 0.01, "cmr_timeout": 5}
    return CMRClient(Settings(_env_file=None, **{**defaults, **settings}))


@pytest.fixture(scope="module")
def all_fixture_collections():
    return load_fixture_collections()


def test_pages_of_2000_with_search_after(all_fixture_collections):
    with FakeCMR(all_fixture_collections) as cmr:
        cmr_client = client(cmr)
        ids = [item["meta"]["concept-id"] for item in cmr_client.search_collections(has_granules=False)]
        assert len(ids) == len(set(ids)) == 4009
        assert cmr_client.requests_made == 3  # ceil(4009 / 2000)
        assert cmr.count("collections.umm_json") == 3
        pages = [r for r in cmr.requests if "collections" in r.path]
        assert "CMR-Search-After" not in pages[0].headers
        assert all("CMR-Search-After" in r.headers for r in pages[1:])
        assert all(r.headers["Client-Id"] == "titiler-cmr-compatibility" for r in pages)
        assert pages[0].query["page_size"] == ["2000"]
        assert pages[0].query["sort_key[]"] == ["-usage_score"]


def test_limit_stops_early_with_a_smaller_page(all_fixture_collections):
    with FakeCMR(all_fixture_collections) as cmr:
        cmr_client = client(cmr)
        items = list(cmr_client.search_collections(limit=25))
        assert len(items) == 25
        assert cmr_client.requests_made == 1
        assert cmr.requests[0].query["page_size"] == ["25"]
        assert cmr.requests[0].query["has_granules"] == ["true"]
        assert cmr.requests[0].query["include_granule_counts"] == ["true"]


def test_provider_filter_and_post_for_long_lists(all_fixture_collections):
    with FakeCMR(all_fixture_collections) as cmr:
        short = list(client(cmr).search_collections(providers=["POCLOUD"], has_granules=False))
        assert short and {item["meta"]["provider-id"] for item in short} == {"POCLOUD"}
        many = ["POCLOUD"] + [f"NOPE{i}" for i in range(30)]
        long = list(client(cmr).search_collections(providers=many, has_granules=False))
        assert [i["meta"]["concept-id"] for i in long] == [i["meta"]["concept-id"] for i in short]
        assert cmr.requests[-1].method == "POST"


def test_retries_5xx_and_429_then_succeeds():
    collection = load_fixture_collections(["C2036881735-POCLOUD"])
    with FakeCMR(collection) as cmr:
        cmr.fail_next(2, status=503)
        cmr.fail_next(1, status=429)
        cmr_client = client(cmr)
        assert cmr_client.collection("C2036881735-POCLOUD")["meta"]["concept-id"] == "C2036881735-POCLOUD"
        assert cmr_client.requests_made == 4


def test_retries_dropped_connections():
    with FakeCMR(load_fixture_collections(["C2036881735-POCLOUD"])) as cmr:
        cmr.drop_connection_next(1)
        assert client(cmr).collection("C2036881735-POCLOUD") is not None


def test_gives_up_after_the_retries_with_a_clear_error():
    with FakeCMR([]) as cmr:
        cmr.fail_next(10, status=500)
        cmr_client = client(cmr, cmr_retries=2)
        with pytest.raises(CMRError, match="after 3 attempts: HTTP 500"):
            cmr_client.collection("C1-P")
        assert cmr_client.requests_made == 3


def test_a_client_error_is_not_retried():
    with FakeCMR([]) as cmr:
        cmr.fail_next(1, status=400)
        cmr_client = client(cmr)
        with pytest.raises(CMRError, match="HTTP 400"):
            cmr_client.collection("C1-P")
        assert cmr_client.requests_made == 1


def test_a_hanging_cmr_times_out():
    with FakeCMR([]) as cmr:
        cmr.hang("collections")
        started = time.monotonic()
        with pytest.raises(CMRError, match="Timeout"):
            client(cmr, cmr_timeout=0.5, cmr_retries=1).collection("C1-P")
        assert time.monotonic() - started < 5


def test_random_granule_costs_one_request_when_the_count_is_known():
    cid = "C2254232941-POCLOUD"
    with FakeCMR([], {cid: load_fixture_granules(cid)}) as cmr:
        cmr_client = client(cmr)
        granule, hits = cmr_client.random_granule(cid, known_count=200, rng=random.Random(1))
        assert granule is not None and hits == 200
        assert cmr_client.requests_made == 1
        granule, _ = cmr_client.random_granule(cid, rng=random.Random(1))
        assert granule is not None
        assert cmr_client.requests_made == 3  # count first, then the granule


def test_random_offsets_stay_below_cmrs_million_limit():
    cid = "C1378579425-LAADS"  # MOD02QKM: 1,378,178 recorded hits
    with FakeCMR([], {cid: load_fixture_granules(cid)}, granule_hits={cid: 1_378_178}) as cmr:
        cmr_client = client(cmr)
        for seed in range(20):
            granule, hits = cmr_client.random_granule(cid, known_count=1_378_178, rng=random.Random(seed))
            assert granule is not None and hits == 1_378_178
        offsets = [int(r.query["offset"][0]) for r in cmr.requests]
        assert max(offsets) < MAX_OFFSET


def test_no_granules_is_none():
    with FakeCMR([], {"C1-P": []}) as cmr:
        assert client(cmr).random_granule("C1-P") == (None, 0)


def test_eosdis_providers_are_filtered_and_cached():
    collections = load_fixture_collections()[:200]
    with FakeCMR(collections) as cmr:
        settings_client = client(cmr)
        providers = settings_client.eosdis_providers()
        assert providers == sorted({i["meta"]["provider-id"] for i in collections})
        client(cmr).eosdis_providers()
        assert cmr.count("providers") == 1


def test_eosdis_provider_failures_are_loud():
    with FakeCMR([], providers=[]) as cmr:
        with pytest.raises(CMRError, match="no EOSDIS provider"):
            client(cmr).eosdis_providers()
    with FakeCMR([]) as cmr:
        cmr.fail_next(10, status=502, path_contains="providers")
        with pytest.raises(CMRError, match="HTTP 502"):
            client(cmr, cmr_retries=1).eosdis_providers()


# A hostile CMR: every answer is bounded in bytes and time, paging ends, counts are checked.


def test_an_endless_answer_stops_at_the_byte_cap_and_is_not_retried():
    with FakeCMR([]) as cmr:
        cmr.endless_body("collections")
        cmr_client = client(cmr, cmr_timeout=60)
        with pytest.raises(CMRError, match=f"more than {MAX_RESPONSE_BYTES // 2**20} MiB"):
            cmr_client.collection("C1-P")
        assert cmr_client.requests_made == 1
        assert MAX_RESPONSE_BYTES < cmr.stats().bytes_sent < 2 * MAX_RESPONSE_BYTES


def test_a_trickling_answer_stops_at_the_request_time():
    """A byte every 50 ms never trips a per-read timeout of 0.5 s: only the whole answer's does."""
    with FakeCMR([]) as cmr:
        cmr.trickle_body("collections", bytes_per_second=20)
        started = time.monotonic()
        cmr_client = client(cmr, cmr_timeout=0.5, cmr_retries=1)
        with pytest.raises(CMRError, match=r"after 2 attempts: Timeout: the answer took longer than 0.5 s"):
            list(cmr_client.search_collections())
        assert time.monotonic() - started < 3
        assert cmr_client.requests_made == 2


def test_an_endless_answer_during_a_check_is_a_cmr_error(world, tmp_path):
    from titiler_cmr_compatibility.check import check_collection
    from titiler_cmr_compatibility.sample import files

    concept_id = world.publish(files.netcdf4_grid(tmp_path, "grid.nc"))
    world.cmr.endless_body("granules")
    result = check_collection(concept_id, settings=world.settings())
    assert result.incompatible_reason == Reason.CMR_ERROR
    assert f"more than {MAX_RESPONSE_BYTES // 2**20} MiB" in result.error_message


def test_a_repeated_search_after_stops_paging():
    collections = [make_collection(f"C{n}-TEST", f"S{n}") for n in range(1, 31)]
    with FakeCMR(collections) as cmr:
        cmr.repeat_search_after = True
        cmr_client = client(cmr)
        listed = []
        with pytest.raises(CMRError, match=r"same CMR-Search-After twice \(after 20 collections\)"):
            listed.extend(cmr_client.search_collections(page_size=10, has_granules=False))
        assert len(listed) == 20 and cmr_client.requests_made == 2


def test_429_forever_gives_up_after_the_retries_and_retry_after_is_bounded():
    with FakeCMR([]) as cmr:
        cmr.rate_limit(retry_after="3600")
        cmr_client = client(cmr, cmr_retries=2, cmr_max_retry_after=0.3)
        started = time.monotonic()
        with pytest.raises(CMRError, match="after 3 attempts: HTTP 429"):
            cmr_client.collection("C1-P")
        assert 0.6 <= time.monotonic() - started < 3  # two waits of the bound, not of 3,600 s
        assert cmr_client.requests_made == cmr.count("collections") == 3


@pytest.mark.parametrize("hits", ["1e18", "1000000000000000000", "abc", "-5"])
def test_a_count_that_is_not_believable_is_unknown(hits):
    cid = "C2254232941-POCLOUD"
    with FakeCMR([make_collection("C1-TEST", "S1")], {cid: load_fixture_granules(cid)}) as cmr:
        cmr.hits_header = hits
        cmr_client = client(cmr)
        assert cmr_client.collection_hits() is None
        assert [i["meta"]["concept-id"] for i in cmr_client.search_collections()] == ["C1-TEST"]
        granule, count = cmr_client.random_granule(cid, rng=random.Random(1))
        assert count is None and granule["meta"]["concept-id"] == load_fixture_granules(cid)[0]["meta"]["concept-id"]
        assert cmr_client.requests_made == 3  # the first granule is the sample: no second request


def test_provider_items_of_the_wrong_shape_are_ignored():
    items = [["junk"], "junk", {"ProviderId": 5, "Consortiums": ["EOSDIS"]}, {"ProviderId": "ODD", "Consortiums": [None, 3]},
             provider_item("GOOD")]  # fmt: skip
    with FakeCMR([], providers=items) as cmr:
        assert client(cmr).eosdis_providers() == ["GOOD"]
