"""Reading real UMM-C and UMM-G records: formats, DAACs, data links and their fallbacks."""

from __future__ import annotations

import collections

import pytest

from titiler_cmr_compatibility.formats import FormatFamily
from titiler_cmr_compatibility.umm import (
    NO_DIRECT_LINK,
    NOT_FIRST_FILE,
    SHARED_NAME,
    UNNAMED_FILE,
    CollectionInfo,
    data_center_for_provider,
    read_granule,
    titiler_cmr_rasterio_file,
    titiler_cmr_xarray_file,
    unread_because,
)
from titiler_cmr_compatibility.sample.cmr import cloud_links, make_granule
from tests.support.fixtures import load_fixture_collections, load_fixture_granule_index, load_fixture_granules


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


# What titiler-cmr 1.1.2 reads of a granule. The expectations are what its own code did with the
# same records (Granule(**item).get_assets() and its readers, run by bench/titiler_cmr_assets.py
# in its virtualenv; the 16 older records without meta.collection-concept-id given it first).


def _outcome(reads) -> str:
    if reads.href is not None:
        return "reads"
    return "ValidationError" if reads.incomplete is not None else reads.refusal.split(":")[0].split(" ")[0]


def test_what_titiler_cmr_reads_of_every_real_granule():
    """titiler-cmr on the 593 real records, external access: get_assets raised a ValidationError
    on the 5 granules without any direct-access link (NLDAS, MYD021KM, three ICESat-2 ATLAS) and
    on the 10 Daymet ones (a checksum with an https link only); on the other 578 its /xarray
    opened a file, the granule's data file except GRACE's 163, where it opened the .txt."""
    seen: collections.Counter = collections.Counter()
    for entry in load_fixture_granule_index():
        for granule in load_fixture_granules(entry["collection_concept_id"]):
            info = read_granule(granule, "external")
            has_direct = any(kind == "GET DATA VIA DIRECT ACCESS" for kind, _url in info.asset_links)
            reads = titiler_cmr_xarray_file(info)
            if reads.href is None:
                which = _outcome(reads)
            else:
                which = "its data file" if reads.href == info.links[0].url else "another file"
            seen[(has_direct, which)] += 1
    assert seen == {(False, "ValidationError"): 5, (True, "ValidationError"): 10,
                    (True, "its data file"): 578 - 163, (True, "another file"): 163}  # fmt: skip


def test_a_granule_without_direct_access_links_cannot_be_taken():
    """MYD021KM (LAADS, on premises): an https link only. titiler-cmr: "2 validation errors for
    Asset: direct_href, ext: Field required", on both routes."""
    info = read_granule(load_fixture_granules("C203234523-LAADS")[0], "external")
    for reads in (titiler_cmr_xarray_file(info), titiler_cmr_rasterio_file(info)):
        assert reads.href is None and reads.incomplete.missing == ["direct_href", "ext"]
        assert "no GET DATA VIA DIRECT ACCESS (s3) link" in reads.refusal


def test_a_checksum_without_its_s3_link_breaks_the_granule():
    """Daymet (ORNL): the .nc.sha256 has a GET DATA link only and DataGranule names no file, so
    it is an asset too, keyed by its name without ".sha256", and it raises."""
    info = read_granule(load_fixture_granules("C2532426483-ORNL_CLOUD")[0], "external")
    assert info.file_names is None
    reads = titiler_cmr_xarray_file(info)
    assert reads.incomplete.name == "daymet_v4_daily_pr_dayl_1950.nc" and reads.incomplete.external_href.endswith(".sha256")


def test_gamssa_asset_zero_is_its_netcdf_by_either_link():
    """DataGranule names the .nc and its .md5; the .md5 links are EXTENDED METADATA, not taken."""
    granule = load_fixture_granules("C2036881735-POCLOUD")[0]
    for access, scheme in (("external", "https://"), ("direct", "s3://")):
        info = read_granule(granule, access, FormatFamily.NETCDF4)
        reads = titiler_cmr_xarray_file(info)
        assert reads.href == info.links[0].url and reads.href.startswith(scheme)
        assert reads.asset.ext == ".nc" and titiler_cmr_rasterio_file(info).href == reads.href


def test_grace_files_of_one_name_leave_the_text_file():
    """.nc, .tif and .txt of one name are one asset, the last links winning: /xarray opens the
    .txt, and /rasterio lists nothing it takes (MissingAssets)."""
    info = read_granule(load_fixture_granules("C2077042612-POCLOUD")[0], "external", FormatFamily.NETCDF4)
    assert len(info.titiler_cmr_assets()) == 1
    assert titiler_cmr_xarray_file(info).href.endswith("_v04.txt")
    assert _outcome(titiler_cmr_rasterio_file(info)) == "MissingAssets"
    assert unread_because(info, info.links[0].url) == SHARED_NAME


def test_hls_bands_are_read_by_their_key():
    """/rasterio with assets_regex=[^._-]+$ and assets=Fmask reads the Fmask file (its s3 link
    with s3 access); the band keys are the files' last name part."""
    granule = load_fixture_granules("C2021957657-LPCLOUD")[0]
    for access in ("external", "direct"):
        info = read_granule(granule, access)
        fmask = next(link.url for link in info.links if link.url.endswith(".Fmask.tif"))
        assert titiler_cmr_rasterio_file(info, "[^._-]+$", "Fmask").href == fmask
    assert _outcome(titiler_cmr_rasterio_file(info, "[^._-]+$", "B99")) == "InvalidAssetName"


def test_why_titiler_cmr_reads_another_file():
    nc = "https://data.example/bucket/g/grid.nc"
    both = make_granule("G1-TEST", "C1-TEST", cloud_links("https://data.example/bucket/g/readme.txt") + cloud_links(nc))
    assert unread_because(read_granule(both, "external"), nc) == NOT_FIRST_FILE
    assert unread_because(read_granule(make_granule("G1-TEST", "C1-TEST", [(nc, "GET DATA")]), "external"), nc) != UNNAMED_FILE
    renamed = make_granule("G1-TEST", "C1-TEST", cloud_links(nc))
    renamed["umm"]["DataGranule"]["ArchiveAndDistributionInformation"] = [{"Name": "other.nc"}]
    info = read_granule(renamed, "external")
    assert unread_because(info, nc) == UNNAMED_FILE and _outcome(titiler_cmr_xarray_file(info)) == "Granule.get_assets"
    assert titiler_cmr_xarray_file(info).refusal.endswith("KeyError")  # titiler-cmr: KeyError '0'
    assert NO_DIRECT_LINK == "files without a direct-access (s3) link"


def test_the_s3_link_gives_the_extension_titiler_cmr_checks():
    """`ext` comes from the DIRECT ACCESS link only: an https .TIF with an s3 .tif is read."""
    links = [("https://data.example/b/cog.TIF", "GET DATA"), ("s3://b/cog.tif", "GET DATA VIA DIRECT ACCESS")]
    granule = make_granule("G1-TEST", "C1-TEST", links)
    granule["umm"]["DataGranule"]["ArchiveAndDistributionInformation"] = [{"Name": "Not provided"}]
    info = read_granule(granule, "external")
    [asset] = info.titiler_cmr_assets()  # one name, "cog", without its extension
    assert (asset.ext, titiler_cmr_rasterio_file(info).href) == (".tif", "https://data.example/b/cog.TIF")
