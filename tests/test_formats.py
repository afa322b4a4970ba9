"""Format strings of every spelling, and the bytes that decide."""

from __future__ import annotations

import pytest

from titiler_cmr_compatibility.formats import (
    Container,
    FormatFamily,
    describe_mismatch,
    extension_of,
    looks_like_login_page,
    normalise_format,
    sniff,
)
from titiler_cmr_compatibility.sample.data import EARTHDATA_LOGIN_HTML
from tests.support.fixtures import load_fixture_collections


@pytest.mark.parametrize(
    ("spelling", "family"),
    [
        ("netCDF-4", FormatFamily.NETCDF4),
        ("NETCDF-4", FormatFamily.NETCDF4),
        ("NetCDF4", FormatFamily.NETCDF4),
        ("netCDF4", FormatFamily.NETCDF4),
        ("NetCDF-4 classic", FormatFamily.NETCDF4),
        ("netCDFnetCDF-4 classic", FormatFamily.NETCDF4),
        ("netCDF-3", FormatFamily.NETCDF3),
        ("NETCDF-3", FormatFamily.NETCDF3),
        ("netCDF", FormatFamily.NETCDF),
        ("NETCDF", FormatFamily.NETCDF),
        ("HDF5", FormatFamily.HDF5),
        ("hdf5", FormatFamily.HDF5),
        ("HDF-EOS5", FormatFamily.HDF_EOS5),
        ("HDF-EOS", FormatFamily.HDF_EOS2),
        ("HDF-EOS2", FormatFamily.HDF_EOS2),
        ("HDF4", FormatFamily.HDF4),
        ("HDF", FormatFamily.HDF),
        ("GeoTIFF", FormatFamily.GEOTIFF),
        ("TIFF", FormatFamily.GEOTIFF),
        ("tif", FormatFamily.GEOTIFF),
        ("COG", FormatFamily.COG),
        ("Cloud Optimized GeoTIFF (COG)", FormatFamily.COG),
        ("Zarr", FormatFamily.ZARR),
        ("ASCII", FormatFamily.ASCII),
        ("ICARTT", FormatFamily.ASCII),
        ("CSV", FormatFamily.CSV),
        ("Excel", FormatFamily.CSV),
        ("Binary", FormatFamily.BINARY),
        ("binary", FormatFamily.BINARY),
        ("PNG", FormatFamily.IMAGE),
        ("Shapefile", FormatFamily.VECTOR),
        ("Not provided", FormatFamily.NOT_PROVIDED),
        ("  ", FormatFamily.NOT_PROVIDED),
        (" netCDF-4", FormatFamily.NETCDF4),
        ("GRIB2", FormatFamily.GRIB),
        ("WMS", FormatFamily.OTHER),
        ("Other (HDF)", FormatFamily.HDF),
        ("DBF", FormatFamily.CSV),
    ],
)
def test_every_spelling_maps_to_its_family(spelling, family):
    assert normalise_format(spelling) is family


def test_no_format_string_is_none():
    assert normalise_format(None) is None


def test_the_commonest_fixture_format_strings_all_have_a_family():
    """Over the 4,009 real records, the format strings that 10 or more records use are all
    understood: none falls through to OTHER except service descriptions like WMS."""
    counts: dict[str, int] = {}
    for item in load_fixture_collections():
        archive = item["umm"].get("ArchiveAndDistributionInformation") or {}
        for entry in archive.get("FileDistributionInformation") or []:
            if entry.get("Format"):
                counts[entry["Format"]] = counts.get(entry["Format"], 0) + 1
    common = [value for value, n in counts.items() if n >= 10]
    unknown = [value for value in common if normalise_format(value) is FormatFamily.OTHER]
    assert len(common) > 20
    assert set(unknown) <= {"WMS", "Grid", "UF"}, unknown


@pytest.mark.parametrize(
    ("head", "container"),
    [
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, Container.HDF5),
        (b"\0" * 512 + b"\x89HDF\r\n\x1a\n" + b"\0" * 100, Container.HDF5),  # user block
        (b"CDF\x01\0\0\0\0", Container.NETCDF3),
        (b"CDF\x02\0\0\0\0", Container.NETCDF3),
        (b"\x0e\x03\x13\x01" + b"\0" * 60, Container.HDF4),
        (b"II*\x00\x08\x00\x00\x00", Container.TIFF),
        (b"MM\x00*\x00\x00\x00\x08", Container.TIFF),
        (b"II+\x00\x08\x00\x00\x00", Container.TIFF),
        (b"PK\x03\x04rest", Container.ZIP),
        (b"\x1f\x8b\x08\x00", Container.GZIP),
        (b"<!DOCTYPE html><html><body>hi</body></html>", Container.HTML),
        (b"<?xml version='1.0'?><a/>", Container.XML),
        (b"date,county,pm25\n2024-10-11,01001,4.2\n", Container.TEXT),
        (b'{"type": "FeatureCollection"}', Container.JSON),
        (b"", Container.EMPTY),
        (bytes(range(256)) * 4, Container.UNKNOWN),
    ],
)
def test_sniff(head, container):
    assert sniff(head) is container


def test_login_page_is_recognised():
    assert looks_like_login_page(EARTHDATA_LOGIN_HTML)
    assert not looks_like_login_page(b"<html><body>a data listing</body></html>")


def test_mismatch_is_explained_only_when_bytes_disagree():
    assert describe_mismatch(FormatFamily.HDF5, Container.TEXT) == " (metadata says HDF5, the bytes are text)"
    assert describe_mismatch(FormatFamily.NETCDF4, Container.HDF5) == ""
    assert describe_mismatch(None, Container.TEXT) == ""


@pytest.mark.parametrize(
    ("url", "extension"),
    [
        ("https://h/a/b/file.nc", "nc"),
        ("s3://bucket/3B-HHR.MS.MRG.3IMERG.20000601.V06B.HDF5", "HDF5"),
        ("https://h/a/file", ""),
        ("https://h/a/file.tar.gz?x=1", "gz"),
        (None, None),
    ],
)
def test_extension_keeps_case_and_ignores_query(url, extension):
    assert extension_of(url) == extension
