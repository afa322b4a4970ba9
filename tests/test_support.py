"""Self-tests of the fakes and generators (``titiler_cmr_compatibility.sample``) and the fixture loaders (``tests/support``).

Other tests trust these fakes and generators; if one of them drifts from the behaviour it
stands in for (CMR paging, HTTP Range, Earthdata login, a file's real layout), every test
built on it would pass or fail for the wrong reason. These tests pin that behaviour down.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import pytest
import rasterio
import requests
import xarray as xr
from scipy.io import netcdf_file

from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.sample.cmr import COLLECTIONS_CONTENT_TYPE, FakeCMR, make_collection, make_granule
from titiler_cmr_compatibility.sample.data import DataServer
from tests.support.fixtures import (
    fixtures_dir,
    load_fixture_collections,
    load_fixture_granule_index,
    load_fixture_granules,
)

GAMSSA = "C2036881735-POCLOUD"
GAMSSA_PATH = (
    "/podaac-ops-cumulus-protected/GAMSSA_28km-ABOM-L4-GLOB-v01/"
    "20241011120000-ABOM-L4_GHRSST-SSTfnd-GAMSSA_28km-GLOB-v02.0-fv01.0.nc"
)
HLS_PATH = (
    "/lp-prod-protected/HLSL30.020/HLS.L30.T15UWP.2024283T165135.v2.0/"
    "HLS.L30.T15UWP.2024283T165135.v2.0.Fmask.tif"
)
MOD02QKM = "C1378579425-LAADS"
Granules = dict[str, list[dict[str, Any]]]
TIMEOUT = 10  # seconds; every client call is bounded so a broken fake fails instead of hanging


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def fixture_granules() -> Granules:
    index = load_fixture_granule_index()
    return {
        entry["collection_concept_id"]: load_fixture_granules(entry["collection_concept_id"])
        for entry in index
    }


@pytest.fixture(scope="module")
def cmr(fixture_granules: Granules) -> Iterator[FakeCMR]:
    """The recorded fixtures behind a fake CMR; MOD02QKM reports its recorded 1,378,178 hits."""
    with FakeCMR(
        load_fixture_collections(), fixture_granules, granule_hits={MOD02QKM: 1_378_178}
    ) as server:
        yield server


@pytest.fixture
def data_server() -> Iterator[DataServer]:
    with DataServer(fixtures_dir() / "data") as server:
        yield server


def _collections(cmr: FakeCMR, **params: Any) -> requests.Response:
    return requests.get(cmr.search_url + "collections.umm_json", params=params, timeout=TIMEOUT)


def _granules(cmr: FakeCMR, **params: Any) -> requests.Response:
    return requests.get(cmr.search_url + "granules.umm_json", params=params, timeout=TIMEOUT)


# ----------------------------------------------------------------------------- DataServer


def test_range_requests_return_exact_slices(data_server: DataServer) -> None:
    content = (fixtures_dir() / "data" / GAMSSA_PATH.lstrip("/")).read_bytes()
    url = data_server.url + GAMSSA_PATH
    size = len(content)

    head = requests.head(url, timeout=TIMEOUT)
    assert head.status_code == 200
    assert head.headers["Accept-Ranges"] == "bytes"
    assert int(head.headers["Content-Length"]) == size
    assert head.content == b""

    for header, first, last in (
        ("bytes=0-7", 0, 7),
        ("bytes=1000-1999", 1000, 1999),
        (f"bytes={size - 10}-", size - 10, size - 1),
        ("bytes=-16", size - 16, size - 1),
        (f"bytes={size - 4}-{size + 1000}", size - 4, size - 1),  # end clamped
    ):
        response = requests.get(url, headers={"Range": header}, timeout=TIMEOUT)
        assert response.status_code == 206, header
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert int(response.headers["Content-Length"]) == last - first + 1
        assert response.content == content[first : last + 1]
    assert requests.get(url, headers={"Range": "bytes=0-7"}, timeout=TIMEOUT).content.startswith(
        b"\x89HDF"
    )

    whole = requests.get(url, timeout=TIMEOUT)
    assert whole.status_code == 200
    assert hashlib.md5(whole.content).hexdigest() == "ed46e0dae99d7c5a84c4b659ebbdb2f0"

    beyond = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=TIMEOUT)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{size}"
    assert requests.get(data_server.url + "/no/such.nc", timeout=TIMEOUT).status_code == 404
    assert requests.get(data_server.url + "/../etc/passwd", timeout=TIMEOUT).status_code == 404
    assert data_server.errors == []


def test_byte_accounting_and_request_log(data_server: DataServer) -> None:
    url = data_server.url + GAMSSA_PATH
    requests.head(url, timeout=TIMEOUT)
    requests.get(url, headers={"Range": "bytes=0-99"}, timeout=TIMEOUT)
    requests.get(url, headers={"Range": "bytes=100-1123"}, timeout=TIMEOUT)
    data_server.add("/extra/blob.bin", b"x" * 5000)
    requests.get(data_server.url + "/extra/blob.bin", timeout=TIMEOUT)

    stats = data_server.stats(GAMSSA_PATH)
    assert (stats.requests, stats.bytes_sent, stats.head_requests) == (2, 1124, 1)
    assert data_server.stats("/extra/blob.bin")["bytes_sent"] == 5000
    total = data_server.stats()
    assert (total.requests, total.bytes_sent) == (3, 6124)
    assert data_server.count(".nc") == 3
    assert [r.method for r in data_server.requests] == ["HEAD", "GET", "GET", "GET"]
    method, path, query, headers = data_server.requests[1]
    assert (method, path, query, headers["range"]) == ("GET", GAMSSA_PATH, {}, "bytes=0-99")

    data_server.reset_stats()
    assert data_server.stats().requests == 0 and data_server.stats().bytes_sent == 0


def test_in_memory_and_path_entries_and_localize(
    data_server: DataServer, tmp_path: Path, fixture_granules: Granules
) -> None:
    source = files.text_file(tmp_path)
    data_server.add("generated/data.txt", source)
    data_server.add("/mem.bin", b"0123456789", content_type="application/x-test")
    assert requests.get(data_server.url_for("/generated/data.txt"), timeout=TIMEOUT).content == (
        source.read_bytes()
    )
    memory = requests.get(
        data_server.url + "/mem.bin", headers={"Range": "bytes=2-4"}, timeout=TIMEOUT
    )
    assert (memory.status_code, memory.content) == (206, b"234")
    assert memory.headers["Content-Type"] == "application/x-test"

    # A real granule record's https and s3 links resolve on the local server, and the bytes
    # match the checksum in the record (README §5).
    granule = fixture_granules[GAMSSA][0]
    links = {u["Type"]: u["URL"] for u in granule["umm"]["RelatedUrls"]}
    expected = granule["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]
    for link in (links["GET DATA"], links["GET DATA VIA DIRECT ACCESS"]):
        body = requests.get(data_server.localize(link), timeout=TIMEOUT).content
        assert len(body) == expected["SizeInBytes"]
        assert hashlib.md5(body).hexdigest() == expected["Checksum"]["Value"]


def test_bearer_token_required(data_server: DataServer) -> None:
    data_server.require_bearer("/podaac-ops-cumulus-protected/", "good-token")
    url = data_server.url + GAMSSA_PATH
    missing = requests.get(url, headers={"Range": "bytes=0-3"}, timeout=TIMEOUT)
    assert missing.status_code == 401
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    wrong = requests.get(url, headers={"Authorization": "Bearer bad"}, timeout=TIMEOUT)
    assert wrong.status_code == 401
    good = requests.get(
        url, headers={"Authorization": "Bearer good-token", "Range": "bytes=0-3"}, timeout=TIMEOUT
    )
    assert (good.status_code, good.content) == (206, b"\x89HDF")
    assert data_server.auth_headers == ["Bearer bad", "Bearer good-token"]
    # Other paths stay public.
    assert requests.head(data_server.url + HLS_PATH, timeout=TIMEOUT).status_code == 200


def test_deny_and_login_redirect(data_server: DataServer) -> None:
    data_server.deny(HLS_PATH)
    assert requests.get(data_server.url + HLS_PATH, timeout=TIMEOUT).status_code == 403
    data_server.deny("/lp-prod-protected/", status=451)
    other = HLS_PATH.replace("T15UWP", "T15UXP")
    assert requests.get(data_server.url + other, timeout=TIMEOUT).status_code == 451

    data_server.login_redirect(GAMSSA_PATH)
    url = data_server.url + GAMSSA_PATH
    redirect = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(f"{data_server.url}/oauth/authorize?")
    followed = requests.get(url, timeout=TIMEOUT)  # what a naive client ends up with
    assert followed.status_code == 200
    assert followed.headers["Content-Type"].startswith("text/html")
    assert b"Earthdata Login" in followed.content
    assert followed.content == files.html_login_page

    # With a bearer rule covering the path, a valid token gets the data instead.
    data_server.require_bearer(GAMSSA_PATH, "tok")
    authed = requests.get(
        url, headers={"Authorization": "Bearer tok", "Range": "bytes=0-3"}, timeout=TIMEOUT
    )
    assert (authed.status_code, authed.content) == (206, b"\x89HDF")
    assert requests.get(url, allow_redirects=False, timeout=TIMEOUT).status_code == 302


def test_s3_credentials_endpoint_requires_token(data_server: DataServer) -> None:
    data_server.require_bearer("/s3credentials", "edl-token")
    creds = data_server.add_s3_credentials()
    url = data_server.url + "/s3credentials"
    assert requests.get(url, timeout=TIMEOUT).status_code == 401
    answer = requests.get(url, headers={"Authorization": "Bearer edl-token"}, timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.json() == creds
    assert set(creds) == {"accessKeyId", "secretAccessKey", "sessionToken", "expiration"}


def test_hang_is_released_by_stop_and_slow_delays() -> None:
    server = DataServer().start()
    server.add("/hang.bin", b"never")
    server.add("/slow.bin", b"eventually")
    server.hang("/hang.bin")
    server.slow("/slow.bin", 0.3)
    started = time.monotonic()
    assert requests.get(server.url + "/slow.bin", timeout=TIMEOUT).content == b"eventually"
    assert time.monotonic() - started >= 0.3
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url + "/hang.bin", timeout=0.3)
    # A second client is still waiting inside the handler when stop() is called.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    connection.request("GET", "/hang.bin")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
        connection.getresponse()
    connection.close()


def test_clients_closing_early_do_not_break_the_server(data_server: DataServer) -> None:
    url = data_server.url + GAMSSA_PATH
    for _ in range(3):
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            assert next(response.iter_content(1024))
    raw = socket.create_connection(("127.0.0.1", data_server.port), timeout=TIMEOUT)
    raw.sendall(f"GET {GAMSSA_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw.recv(100)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.close()  # RST while the server is still writing
    assert requests.head(url, timeout=TIMEOUT).status_code == 200
    assert data_server.errors == []
    assert data_server.stats(GAMSSA_PATH).requests == 4


def test_gdal_reads_a_cog_partially_over_http(data_server: DataServer) -> None:
    """GDAL's /vsicurl/ (what rasterio and rio-tiler use) works against the server."""
    with (
        rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"),
        rasterio.open(data_server.url + HLS_PATH) as dataset,
    ):
        assert (dataset.width, dataset.height, dataset.crs.to_epsg()) == (3660, 3660, 32615)
        window = dataset.read(1, window=((0, 256), (0, 256)))
        assert window.shape == (256, 256)
    size = (fixtures_dir() / "data" / HLS_PATH.lstrip("/")).stat().st_size
    assert 0 < data_server.stats(HLS_PATH).bytes_sent < size / 2


def test_obstore_range_reads_over_http(data_server: DataServer) -> None:
    # In a process of its own: obstore's runtime does not survive a fork, and this test process
    # forks every check (see sandbox.py).
    script = f"""
import obstore
from obstore.store import HTTPStore
store = HTTPStore.from_url({data_server.url!r}, client_options={{"allow_http": True}})
print(obstore.head(store, {GAMSSA_PATH.lstrip("/")!r})["size"])
print(bytes(obstore.get_range(store, {GAMSSA_PATH.lstrip("/")!r}, start=0, end=8)).hex())
"""
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    size, head = output.stdout.split()
    assert int(size) == 1_036_053
    assert bytes.fromhex(head) == b"\x89HDF\r\n\x1a\n"
    assert data_server.stats(GAMSSA_PATH).bytes_sent == 8


# -------------------------------------------------------------------------------- FakeCMR


def test_fixture_loaders() -> None:
    collections = load_fixture_collections()
    assert len(collections) == 4009
    assert len({c["meta"]["concept-id"] for c in collections}) == 4009
    assert load_fixture_collections([GAMSSA])[0]["umm"]["ShortName"] == (
        "GAMSSA_28km-ABOM-L4-GLOB-v01"
    )
    again = load_fixture_collections([GAMSSA])[0]
    again["umm"]["ShortName"] = "EDITED"  # callers own their copies: edits never leak
    assert load_fixture_collections([GAMSSA])[0]["umm"]["ShortName"] != "EDITED"
    assert collections[2705]["meta"]["concept-id"] == GAMSSA  # README §3: line 2,706
    with pytest.raises(KeyError):
        load_fixture_collections(["C0-NOPE"])
    assert len(load_fixture_granules(MOD02QKM)) == 200
    assert sum(e["granules_in_file"] for e in load_fixture_granule_index()) == 593


def test_collections_paging_with_search_after(cmr: FakeCMR) -> None:
    cmr.clear_requests()
    session = requests.Session()
    headers: dict[str, str] = {}
    ids: list[str] = []
    while True:
        response = session.get(
            cmr.search_url + "collections.umm_json",
            params={"page_size": "2000", "sort_key[]": "-usage_score"},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"] == COLLECTIONS_CONTENT_TYPE
        assert response.headers["CMR-Hits"] == "4009"
        assert response.headers["CMR-Request-Id"] and int(response.headers["CMR-Took"]) >= 1
        body = response.json()
        assert body["hits"] == 4009 and body["took"] >= 1
        ids.extend(item["meta"]["concept-id"] for item in body["items"])
        token = response.headers.get("CMR-Search-After")
        if token is None:
            break
        assert isinstance(json.loads(token), list)
        headers = {"CMR-Search-After": token}
    assert cmr.count("collections.umm_json") == 3
    assert ids == [c["meta"]["concept-id"] for c in cmr.collections]
    sent = [r.headers.get("CMR-Search-After") for r in cmr.requests]
    assert sent[0] is None and all(sent[1:])


def test_collections_paging_with_offset_and_page_num(cmr: FakeCMR) -> None:
    by_offset = _collections(cmr, page_size=5, offset=10).json()["items"]
    by_page = _collections(cmr, page_size=5, page_num=3).json()["items"]
    assert [i["meta"]["concept-id"] for i in by_offset] == [
        i["meta"]["concept-id"] for i in by_page
    ]
    assert len(_collections(cmr).json()["items"]) == 10  # default page size
    last = _collections(cmr, page_size=10, offset=4005)
    assert len(last.json()["items"]) == 4 and "CMR-Search-After" not in last.headers
    both = _collections(cmr, offset=1, page_num=1)
    assert both.status_code == 400
    assert both.json() == {"errors": ["Only one of offset or page-num may be specified"]}
    bad_token = requests.get(
        cmr.search_url + "collections.umm_json",
        headers={"CMR-Search-After": "not json"},
        timeout=TIMEOUT,
    )
    assert bad_token.status_code == 400


def test_collection_filters(cmr: FakeCMR) -> None:
    def hits(**params: Any) -> int:
        response = _collections(cmr, page_size=0, **params)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
        return int(response.headers["CMR-Hits"])

    per_provider = Counter(c["meta"]["provider-id"] for c in cmr.collections)
    assert hits(provider="POCLOUD") == per_provider["POCLOUD"] == 479
    assert hits(**{"provider[]": ["POCLOUD", "GES_DISC"]}) == 479 + 542
    assert hits(cloud_hosted="true") == 2070
    # 4,002 with granule-count > 0, plus the 3 records without a count (treated as having
    # granules); the 4 LARC_ASDC records with 0 are excluded.
    assert hits(has_granules="true") == 4005
    assert hits(concept_id=[GAMSSA, "C1996881146-POCLOUD"]) == 2
    assert hits(short_name="GAMSSA_28km-ABOM-L4-GLOB-v01", version="1.0") == 1
    assert hits(**{"processing_level_id[]": ["Level 3"]}) == 91

    # The same query as a form-encoded POST (long provider lists).
    posted = requests.post(
        cmr.search_url + "collections.umm_json",
        data={"provider[]": ["POCLOUD", "GES_DISC"], "page_size": "0"},
        timeout=TIMEOUT,
    )
    assert posted.headers["CMR-Hits"] == str(479 + 542)

    too_big = _collections(cmr, page_size=2001)
    assert too_big.status_code == 400
    assert too_big.json() == {"errors": ["page_size must be a number between 0 and 2000"]}
    unknown = _collections(cmr, providers="POCLOUD")
    assert unknown.status_code == 400
    assert unknown.json() == {"errors": ["Parameter [providers] was not recognized."]}
    assert _collections(cmr, has_granules="yes").status_code == 400
    assert _collections(cmr, **{"sort_key[]": "popularity"}).status_code == 400


def test_include_granule_counts_fills_missing_counts(cmr: FakeCMR) -> None:
    plain = _collections(cmr, concept_id=GAMSSA).json()["items"][0]
    assert "granule-count" not in plain["meta"]
    counted = _collections(cmr, concept_id=GAMSSA, include_granule_counts="true").json()
    assert counted["items"][0]["meta"]["granule-count"] == 1  # one held granule record
    assert "granule-count" not in load_fixture_collections([GAMSSA])[0]["meta"]  # not mutated


def test_granule_search_offsets_and_limits(cmr: FakeCMR) -> None:
    response = _granules(cmr, collection_concept_id=GAMSSA, page_size=1)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/vnd.nasa.cmr.umm_results+json")
    assert response.json()["items"][0]["meta"]["concept-id"] == "G3264876018-POCLOUD"

    count = _granules(cmr, collection_concept_id=MOD02QKM, page_size=0)
    assert count.headers["CMR-Hits"] == "1378178" and count.json()["items"] == []
    deep = _granules(cmr, collection_concept_id=MOD02QKM, page_size=1, offset=999_999)
    assert deep.status_code == 200
    held = load_fixture_granules(MOD02QKM)
    assert deep.json()["items"] == [held[999_999 % len(held)]]
    too_deep = _granules(cmr, collection_concept_id=MOD02QKM, page_size=1, offset=1_000_000)
    assert too_deep.status_code == 400
    assert too_deep.json() == {
        "errors": [
            "The paging depth (page_size + offset) of [1000001] exceeds the limit of 1000000."
        ]
    }

    by_id = _granules(cmr, concept_id="G3263856929-LPCLOUD").json()
    assert by_id["hits"] == 1
    assert by_id["items"][0]["umm"]["GranuleUR"] == "HLS.L30.T15UWP.2024283T165135.v2.0"
    nothing = _granules(cmr, collection_concept_id="C0-NONE")
    assert (nothing.status_code, nothing.json()["hits"]) == (200, 0)
    page_two = _granules(cmr, collection_concept_id=MOD02QKM, page_size=2, page_num=2).json()
    assert page_two["items"] == held[2:4]


def test_providers_endpoint(cmr: FakeCMR) -> None:
    body = requests.get(cmr.search_url + "providers", timeout=TIMEOUT).json()
    assert body["hits"] == len(body["items"]) == 20
    eosdis = {i["ProviderId"] for i in body["items"] if "EOSDIS" in i.get("Consortiums", [])}
    assert eosdis == {c["meta"]["provider-id"] for c in cmr.collections}
    assert {i["Organizations"][0]["ShortName"] for i in body["items"]} >= eosdis
    assert len(eosdis) == 19


def test_fault_injection(cmr: FakeCMR) -> None:
    cmr.fail_next(2, status=503, path_contains="granules")
    assert _collections(cmr, page_size=0).status_code == 200  # not matched
    assert [_granules(cmr, page_size=0).status_code for _ in range(3)] == [503, 503, 200]

    cmr.fail_next(1, status=429)
    throttled = _collections(cmr, page_size=0)
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "0")
    assert _collections(cmr, page_size=0).status_code == 200

    cmr.drop_connection_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        _collections(cmr, page_size=0)
    assert _collections(cmr, page_size=0).status_code == 200
    assert cmr.errors == []


def test_cmr_hang_released_by_stop() -> None:
    server = FakeCMR([make_collection("C1-TEST", "HANG")]).start()
    server.hang("collections.umm_json")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.search_url + "collections.umm_json", timeout=0.3)
    assert requests.get(server.search_url + "providers", timeout=TIMEOUT).status_code == 200
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


def test_synthetic_records_are_searchable() -> None:
    collection = make_collection(
        "C100-TEST",
        "SYNTH",
        provider="TEST",
        formats=("NetCDF-4",),
        archive_formats=("netCDF-4",),
        cloud_hosted=True,
        granule_count=None,
    )
    bare = make_collection("C101-TEST", "BARE", formats=(), processing_level=None, granule_count=0)
    granule = make_granule(
        "G1-TEST",
        "C100-TEST",
        [
            ("https://data.test/bucket/synth.nc", "GET DATA"),
            ("s3://bucket/synth.nc", "GET DATA VIA DIRECT ACCESS"),
            ("https://data.test/s3credentials", "VIEW RELATED INFORMATION"),
        ],
    )
    umm = collection["umm"]
    assert umm["ArchiveAndDistributionInformation"]["FileDistributionInformation"][0]["Format"] == (
        "NetCDF-4"
    )
    assert umm["DirectDistributionInformation"]["S3CredentialsAPIEndpoint"].endswith(
        "/s3credentials"
    )
    assert collection["meta"]["s3-links"] and "granule-count" not in collection["meta"]
    assert "ArchiveAndDistributionInformation" not in bare["umm"]
    assert granule["umm"]["GranuleUR"] == "synth"
    assert granule["meta"]["provider-id"] == "TEST"
    assert granule["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"].startswith("2024")
    assert [u["Type"] for u in granule["umm"]["RelatedUrls"]][:2] == [
        "GET DATA",
        "GET DATA VIA DIRECT ACCESS",
    ]

    with FakeCMR([collection, bare], {"C100-TEST": [granule]}) as cmr:
        found = _collections(cmr, cloud_hosted="true", has_granules="true").json()
        assert [i["meta"]["concept-id"] for i in found["items"]] == ["C100-TEST"]
        assert _collections(cmr, has_granules="false").json()["hits"] == 1
        counted = _collections(cmr, include_granule_counts="true", concept_id="C100-TEST").json()
        assert counted["items"][0]["meta"]["granule-count"] == 1
        assert _granules(cmr, collection_concept_id="C100-TEST").json()["items"] == [granule]
        providers = requests.get(cmr.search_url + "providers", timeout=TIMEOUT).json()["items"]
        assert [(p["ProviderId"], p["Consortiums"]) for p in providers] == [
            ("TEST", ["EOSDIS"]),
            ("NOAA_NCEI", ["CEOS", "CWIC"]),
        ]


# ------------------------------------------------------------------------------ generators


def test_netcdf4_grid_is_cf(tmp_path: Path) -> None:
    path = files.netcdf4_grid(tmp_path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert dict(ds.sizes) == {"time": 1, "lat": 90, "lon": 180}
        assert list(ds.data_vars) == ["sst"]
        assert ds.lat.attrs["units"] == "degrees_north" and ds.lat.attrs["axis"] == "Y"
        assert ds.lon.attrs["standard_name"] == "longitude" and ds.lon.attrs["axis"] == "X"
        assert ds.sst.attrs["standard_name"] == "sea_surface_temperature"
        assert str(ds.time.values[0]).startswith("2024-10-11T12:00")
        assert 270 < float(ds.sst.mean()) < 305
    assert path.read_bytes()[:4] == b"\x89HDF"


def test_netcdf4_grid_traps(tmp_path: Path) -> None:
    path = files.netcdf4_grid(
        tmp_path,
        name="traps.nc",
        variables=("analysed_sst", "analysis_error"),
        first_var_scalar=True,
        with_bounds=True,
        packed=True,
        chunks=(1, 45, 90),
    )
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert list(ds.data_vars) == [
            "crs",
            "lat_bnds",
            "lon_bnds",
            "analysed_sst",
            "analysis_error",
        ]
        assert ds.crs.ndim == 0
        assert ds.analysed_sst.encoding["chunksizes"] == (1, 45, 90)
        assert 270 < float(ds.analysed_sst.mean()) < 305  # unpacked
    with h5py.File(path) as handle:
        raw = handle["analysed_sst"]
        assert raw.dtype == np.int16
        # h5netcdf stores numeric attributes as 1-element arrays, as in the GAMSSA files.
        assert np.asarray(raw.attrs["valid_min"]).item() == -300
        assert np.asarray(raw.attrs["valid_max"]).item() == 4500
        assert list(handle).index("crs") < list(handle).index("analysed_sst")


def test_netcdf4_grid_in_group(tmp_path: Path) -> None:
    path = files.netcdf4_grid(tmp_path, name="grouped.nc", group="g", time=0)
    with xr.open_dataset(path, engine="h5netcdf") as root:
        assert list(root.variables) == [] and dict(root.sizes) == {}
        assert root.attrs["Conventions"] == "CF-1.8"
    with xr.open_dataset(path, engine="h5netcdf", group="g") as ds:
        assert dict(ds.sizes) == {"lat": 90, "lon": 180}
        assert ds.sst.dims == ("lat", "lon")


def test_mixed_groups_and_swath(tmp_path: Path) -> None:
    tree = xr.open_datatree(files.netcdf4_mixed_groups(tmp_path), engine="h5netcdf")
    assert set(tree.ds.data_vars) == {"processing_version", "band_wavelengths"}
    grid = tree["science/grids"].ds
    assert grid.chlor_a.dims == ("lat", "lon") and "lat" in grid.coords
    assert set(tree["meta"].ds.data_vars) == {"flag_counts", "granule_number"}
    tree.close()

    with xr.open_dataset(files.netcdf4_swath(tmp_path), engine="h5netcdf") as swath:
        assert swath.radiance.dims == ("along_track", "cross_track")
        assert swath.latitude.ndim == 2 and {"lat", "lon"}.isdisjoint(swath.dims)
        assert {"latitude", "longitude"} <= set(swath.coords)


def test_hdfeos5_grid(tmp_path: Path) -> None:
    path = files.hdfeos5_grid(tmp_path)
    with h5py.File(path) as handle:
        field = handle["HDFEOS/GRIDS/ColumnAmountO3/Data Fields/ColumnAmountO3"]
        assert field.shape == (180, 360) and field.dtype == np.float32
        odl = handle["HDFEOS INFORMATION/StructMetadata.0"][()].decode()
    for text in (
        'GridName="ColumnAmountO3"',
        "XDim=360",
        "YDim=180",
        "Projection=HE5_GCTP_GEO",
        "UpperLeftPointMtrs=(-180000000.000000,90000000.000000)",
        "LowerRightMtrs=",
    ):
        assert text in odl
    group = "HDFEOS/GRIDS/ColumnAmountO3/Data Fields"
    with xr.open_dataset(path, engine="h5netcdf", group=group, phony_dims="access") as ds:
        assert list(ds.data_vars) == ["ColumnAmountO3"] and not ds.coords


def test_netcdf3_grid(tmp_path: Path) -> None:
    path = files.netcdf3_grid(tmp_path)
    assert path.read_bytes()[:4] == b"CDF\x01"
    with netcdf_file(path, "r", mmap=False) as handle:
        assert handle.variables["temperature"].shape == (1, 45, 90)
    with xr.open_dataset(path, engine="scipy") as ds:
        assert ds.lat.attrs["units"] == "degrees_north"


def test_non_data_files(tmp_path: Path) -> None:
    assert files.hdf4_signature(tmp_path).read_bytes()[:4] == b"\x0e\x03\x13\x01"
    with pytest.raises(OSError):
        h5py.File(files.hdf4_signature(tmp_path, name="other.hdf"))

    archive = files.zip_archive(tmp_path)
    with zipfile.ZipFile(archive) as handle:
        assert handle.namelist() == ["grid.nc"]
        handle.extract("grid.nc", tmp_path / "unzipped")
    with h5netcdf.File(tmp_path / "unzipped" / "grid.nc", "r") as inner:
        assert "sst" in inner.variables

    compressed = files.gzip_file(tmp_path)
    assert compressed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(compressed.read_bytes())[:4] == b"\x89HDF"
    assert files.gzip_file(tmp_path, name="again.nc.gz").read_bytes() == compressed.read_bytes()

    text = files.text_file(tmp_path)
    assert text.read_text(encoding="ascii").splitlines()[0] == "FIPS,latitude,longitude,pm25_bc"
    assert files.html_login_page.startswith(b"<!DOCTYPE html>")

    source = files.netcdf4_grid(tmp_path)
    cut = files.truncated(tmp_path, source, keep_bytes=4096)
    assert cut.suffix == ".nc" and cut.read_bytes() == source.read_bytes()[:4096]
    with pytest.raises(OSError):
        h5py.File(cut)


def test_geotiffs(tmp_path: Path) -> None:
    with rasterio.open(files.striped_geotiff(tmp_path)) as plain:
        assert (plain.width, plain.height, plain.dtypes[0]) == (1024, 512, "uint16")
        assert plain.crs.to_epsg() == 4326
        assert not plain.profile["tiled"] and plain.overviews(1) == []
        assert plain.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") != "COG"
    with rasterio.open(files.cog(tmp_path)) as cloud:
        assert (cloud.width, cloud.height) == (2048, 2048)
        assert cloud.profile["tiled"] and cloud.block_shapes[0] == (256, 256)
        assert cloud.overviews(1) == [2, 4, 8]
        assert cloud.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cloud.compression.name == "deflate"


def test_large_grid_small_and_cached(tmp_path: Path) -> None:
    path = files.large_grid(tmp_path, lat=240, lon=480, chunks=(60, 120))
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.analysed_sst.shape == (1, 240, 480)
        assert ds.analysed_sst.encoding["chunksizes"] == (1, 60, 120)
        assert ds.analysed_sst.encoding["zlib"] is True
        assert 265 < float(ds.analysed_sst.mean()) < 305
    stamp = path.stat().st_mtime_ns
    assert files.large_grid(tmp_path, lat=240, lon=480, chunks=(60, 120)) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert not list(tmp_path.glob("*.partial-*"))


@pytest.mark.scale
def test_large_grid_full_size(request: pytest.FixtureRequest) -> None:
    # pytest's cache provider is disabled in pyproject, so keep the ~113 MB file in a stable
    # temp folder: large_grid() reuses it on later runs instead of rewriting it.
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        directory = Path(cache.mkdir("large_grid"))
    else:
        directory = Path(tempfile.gettempdir()) / "titiler-cmr-compat-large-grid"
        directory.mkdir(exist_ok=True)
    started = time.monotonic()
    path = files.large_grid(directory)
    elapsed = time.monotonic() - started
    size = path.stat().st_size
    print(f"large_grid: {size / 1e6:.1f} MB in {elapsed:.1f} s (0 s means reused)")
    assert size < 150e6
    with h5py.File(path) as handle:
        assert handle["analysed_sst"].shape == (1, 7200, 14400)
        assert handle["analysed_sst"].chunks == (1, 600, 1200)
