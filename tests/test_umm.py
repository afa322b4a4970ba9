"""Reading real UMM-C and UMM-G records: formats, DAACs, data links and their fallbacks."""

from __future__ import annotations

import pytest

from titiler_cmr_compatibility.formats import FormatFamily
from titiler_cmr_compatibility.umm import CollectionInfo, data_center_for_provider, read_granule
from titiler_cmr_compatibility.sample.cmr import make_granule
from tests.support.fixtures import load_fixture_collections, load_fixture_granules


def collection(concept_id: str) -> CollectionInfo:
    return CollectionInfo.from_umm(load_fixture_collections([concept_id])[0])


def test_collection_fields_from_a_real_record():
    gamssa = collection("C2036881735-POCLOUD")
    assert gamssa.short_name_and_version == "GAMSSA_28km-ABOM-L4-GLOB-v01.1.0"
    assert gamssa.formats == ["netCDF-4"]  # distribution and archive say the same: kept once
    assert gamssa.format_family is FormatFamily.NETCDF4
    assert gamssa.granule_count is None  # the 2026 record carries no granule-count
    assert gamssa.s3_credentials_endpoint == "https://archive.podaac.earthdata.nasa.gov/s3credentials"
    assert gamssa.data_center == "PODAAC"
    hls = collection("C2021957657-LPCLOUD")
    assert hls.format == "Cloud Optimized GeoTIFF (COG)" and hls.format_family is FormatFamily.COG
    assert hls.data_center == "LPDAAC"


def test_a_record_with_only_archive_format_is_read():
    imerg = collection("C2723754864-GES_DISC")
    assert imerg.formats and imerg.format_family is FormatFamily.NETCDF


def test_marker_round_trip():
    gamssa = collection("C2036881735-POCLOUD")
    assert CollectionInfo.from_marker(gamssa.to_marker()) == gamssa


def test_the_daac_table_agrees_with_earthaccess():
    from earthaccess.daac import DAACS

    from titiler_cmr_compatibility.umm import DAAC_BY_PROVIDER

    theirs = {p: d["short-name"] for d in DAACS for p in d["on-prem-providers"] + d["cloud-providers"]}
    assert DAAC_BY_PROVIDER == theirs


def test_data_center_comes_from_the_provider():
    assert data_center_for_provider("LPCLOUD") == "LPDAAC"
    assert data_center_for_provider("LARC_ASDC") == "ASDC"
    assert data_center_for_provider("CDDIS") == "CDDIS"  # not in earthaccess's table


def test_direct_links_are_s3_and_the_credentials_link_is_found():
    granule = load_fixture_granules("C2036881735-POCLOUD")[0]
    info = read_granule(granule, "direct", FormatFamily.NETCDF4)
    assert info.access_type == "direct"
    assert [link.url for link in info.links] == [
        "s3://podaac-ops-cumulus-protected/GAMSSA_28km-ABOM-L4-GLOB-v01/"
        "20241011120000-ABOM-L4_GHRSST-SSTfnd-GAMSSA_28km-GLOB-v02.0-fv01.0.nc"
    ]
    assert info.s3_credentials_endpoint == "https://archive.podaac.earthdata.nasa.gov/s3credentials"
    assert info.temporal[0].startswith("2024-10-11")


def test_direct_falls_back_to_external_without_an_s3_link():
    granule = load_fixture_granules("C203234523-LAADS")[0]
    info = read_granule(granule, "direct")
    assert info.access_type == "external"
    assert info.links[0].url.startswith("https://") and info.links[0].url.endswith(".hdf")


def test_checksum_sidecars_are_skipped():
    granule = load_fixture_granules("C2532426483-ORNL_CLOUD")[0]
    info = read_granule(granule, "external")
    assert [link.url.rsplit(".", 1)[1] for link in info.links] == ["nc"]
    assert info.skipped and info.skipped[0].endswith(".sha256")


def test_the_file_of_the_collections_format_comes_first():
    granule = load_fixture_granules("C2077042612-POCLOUD")[0]  # .nc, .tif and .txt per granule
    links = read_granule(granule, "external", FormatFamily.NETCDF4).links
    assert [link.url.rsplit(".", 1)[1] for link in links] == ["nc", "tif", "txt"]


def test_an_ascii_only_granule_still_has_its_text_link():
    granule = load_fixture_granules("C2623694361-GES_DISC")[0]
    links = read_granule(granule, "external", FormatFamily.ASCII).links
    assert len(links) == 1 and links[0].url.endswith(".txt")


def test_ftp_only_granule_has_no_usable_link():
    granule = make_granule("G1-TEST", "C1-TEST", [("ftp://ftp.example.gov/data/file.nc", "GET DATA")])
    info = read_granule(granule, "direct")
    assert info.links == [] and info.skipped == ["ftp://ftp.example.gov/data/file.nc"]


def test_single_date_time_temporal():
    granule = make_granule("G1-TEST", "C1-TEST", [])
    granule["umm"]["TemporalExtent"] = {"SingleDateTime": "2020-01-01T00:00:00Z"}
    assert read_granule(granule, "external").temporal == ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z")


@pytest.mark.parametrize(
    "edit",
    [
        lambda g: g.update(umm=[1, 2]),
        lambda g: g.update(meta="x"),
        lambda g: g["umm"].update(RelatedUrls="abc"),
        lambda g: g["umm"].update(RelatedUrls=[1, None, {"URL": 12, "Type": "GET DATA"}]),
        lambda g: g["umm"].update(TemporalExtent={"RangeDateTime": "yesterday"}),
        lambda g: g["umm"].update(TemporalExtent={"SingleDateTime": 5}),
    ],
)
def test_a_granule_part_of_the_wrong_type_reads_as_absent(edit):
    granule = make_granule("G1-TEST", "C1-TEST", [("https://data.example/g.nc", "GET DATA")])
    edit(granule)
    info = read_granule(granule, "external")  # never raises
    assert all(isinstance(link.url, str) for link in info.links)
    assert all(value is None or isinstance(value, str) for value in info.temporal)
