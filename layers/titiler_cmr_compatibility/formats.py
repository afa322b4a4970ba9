"""File formats: what the metadata claims and what the first bytes of the file prove.

CMR format strings are free text ("netCDF-4", "NETCDF-4", "NetCDF4", "HDF-EOS5", "Cloud Optimized
GeoTIFF (COG)", " ", ...). The predecessor trusted them and rejected GeoTIFFs it could have tiled.
Here the sniffed container decides which engine opens the file; the metadata only explains.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from pathlib import PurePosixPath
from urllib.parse import urlparse


class Container(StrEnum):
    """What the bytes of a file are, whatever its metadata says."""

    HDF5 = "hdf5"  # netCDF-4 and HDF-EOS5 are HDF5 files
    NETCDF3 = "netcdf3"
    HDF4 = "hdf4"
    TIFF = "tiff"
    JPEG2000 = "jpeg2000"
    ZARR = "zarr"
    ZIP = "zip"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    TAR = "tar"
    PNG = "png"
    JPEG = "jpeg"
    PDF = "pdf"
    GRIB = "grib"
    HTML = "html"
    XML = "xml"
    JSON = "json"
    TEXT = "text"
    EMPTY = "empty"
    UNKNOWN = "unknown"


class Backend(StrEnum):
    """titiler-cmr's two tiling backends."""

    XARRAY = "xarray"
    RASTERIO = "rasterio"


# Containers titiler-cmr can open, and with which backend.
BACKEND_FOR_CONTAINER: dict[Container, Backend] = {
    Container.HDF5: Backend.XARRAY,
    Container.TIFF: Backend.RASTERIO,
    Container.JPEG2000: Backend.RASTERIO,
}

# titiler-cmr 1.1.2's rasterio reader picks a GDAL media type by the link's extension, taken with
# os.path.splitext from the whole URL, case kept (`titiler.cmr.reader.MEDIA_TYPES`): any other
# extension is InvalidMediaType, whatever the bytes are.
RASTERIO_EXTENSIONS = (".tif", ".nc", ".h5")


def rasterio_extension_refused(url: str) -> str | None:
    """The extension titiler-cmr's rasterio reader would refuse this link for, or None."""
    extension = os.path.splitext(url)[1]
    return None if extension in RASTERIO_EXTENSIONS else extension


# How many leading bytes `sniff` needs; HDF5 may put its superblock at 0, 512, 1024, ...
SNIFF_BYTES = 2048

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MAGIC: list[tuple[bytes, Container]] = [
    (_HDF5_SIGNATURE, Container.HDF5),
    (b"CDF\x01", Container.NETCDF3),
    (b"CDF\x02", Container.NETCDF3),
    (b"CDF\x05", Container.NETCDF3),
    (b"\x0e\x03\x13\x01", Container.HDF4),
    (b"II*\x00", Container.TIFF),
    (b"MM\x00*", Container.TIFF),
    (b"II+\x00", Container.TIFF),  # BigTIFF
    (b"MM\x00+", Container.TIFF),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", Container.JPEG2000),
    (b"\xffO\xffQ", Container.JPEG2000),  # raw codestream
    (b"PK\x03\x04", Container.ZIP),
    (b"PK\x05\x06", Container.ZIP),
    (b"\x1f\x8b", Container.GZIP),
    (b"BZh", Container.BZIP2),
    (b"\x89PNG\r\n\x1a\n", Container.PNG),
    (b"\xff\xd8\xff", Container.JPEG),
    (b"%PDF", Container.PDF),
    (b"GRIB", Container.GRIB),
]


def sniff(head: bytes) -> Container:
    """Classify a file from its first bytes (at least the first `SNIFF_BYTES` when it is longer)."""
    if not head:
        return Container.EMPTY
    for magic, container in _MAGIC:
        if head.startswith(magic):
            return container
    # HDF5 allows a user block: the superblock then sits at 512, 1024, 2048, ...
    offset = 512
    while offset + len(_HDF5_SIGNATURE) <= len(head):
        if head[offset : offset + len(_HDF5_SIGNATURE)] == _HDF5_SIGNATURE:
            return Container.HDF5
        offset *= 2
    if len(head) > 262 and head[257:262] == b"ustar":
        return Container.TAR
    return _sniff_text(head)


def _sniff_text(head: bytes) -> Container:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return Container.UNKNOWN
    if any(ord(c) < 9 or 13 < ord(c) < 32 for c in text if c not in "\x1b"):
        return Container.UNKNOWN
    start = text.lstrip().lower()
    if start.startswith(("<!doctype html", "<html")) or "<html" in start[:1024]:
        return Container.HTML
    if start.startswith("<?xml") or start.startswith("<"):
        return Container.XML
    if start.startswith(("{", "[")):
        return Container.JSON
    return Container.TEXT


def looks_like_login_page(head: bytes) -> bool:
    """Earthdata Login answers an unauthenticated data request with its sign-in page."""
    text = head[:SNIFF_BYTES * 4].decode("utf-8", errors="replace").lower()
    return "urs.earthdata.nasa.gov" in text or "earthdata login" in text or "oauth/authorize" in text


class FormatFamily(StrEnum):
    """A metadata format string, normalised. Several spellings map to one family."""

    NETCDF4 = "netCDF-4"
    NETCDF3 = "netCDF-3"
    NETCDF = "netCDF"  # version not said
    HDF5 = "HDF5"
    HDF_EOS5 = "HDF-EOS5"
    HDF_EOS2 = "HDF-EOS2"
    HDF4 = "HDF4"
    HDF = "HDF"  # version not said
    COG = "COG"
    GEOTIFF = "GeoTIFF"
    ZARR = "Zarr"
    JPEG2000 = "JPEG2000"
    GRIB = "GRIB"
    ASCII = "ASCII"
    CSV = "CSV"
    BINARY = "Binary"
    IMAGE = "Image"
    ARCHIVE = "Archive"
    DOCUMENT = "Document"
    VECTOR = "Vector"
    NOT_PROVIDED = "Not provided"
    OTHER = "Other"


# Ordered: the first pattern that matches the squashed, lower-cased string wins.
_FAMILY_PATTERNS: list[tuple[str, FormatFamily]] = [
    (r"^(notprovided|notapplicable|none|na|unknown|)$", FormatFamily.NOT_PROVIDED),
    (r"cog|cloudoptimized", FormatFamily.COG),
    (r"geotiff|^tiff?$|geotif", FormatFamily.GEOTIFF),
    (r"zarr", FormatFamily.ZARR),
    (r"hdfeos5|heos5|he5", FormatFamily.HDF_EOS5),
    (r"hdfeos2|hdfeos4|hdfeos$|hdfeos(?!5)", FormatFamily.HDF_EOS2),
    (r"netcdf4|netcdf4classic|nc4|netcdfv4", FormatFamily.NETCDF4),
    (r"netcdf3|netcdfclassic|netcdfv3|netcdf64", FormatFamily.NETCDF3),
    (r"netcdf|^nc$|cf(compliant)?netcdf", FormatFamily.NETCDF),
    (r"hdf5|^h5$", FormatFamily.HDF5),
    (r"hdf4|^hdf4?eos", FormatFamily.HDF4),
    (r"hdf", FormatFamily.HDF),
    (r"jpeg2000|jp2", FormatFamily.JPEG2000),
    (r"grib", FormatFamily.GRIB),
    (r"csv|excel|xlsx?$|tabseparated|tsv|dbf", FormatFamily.CSV),
    (r"ascii|text|txt|icartt|ames|^ict$|json|xml|kml", FormatFamily.ASCII),
    (r"png|jpe?g|gif|bmp|image", FormatFamily.IMAGE),
    (r"zip|tar|gzip|^gz$|compressed|bz2|7z", FormatFamily.ARCHIVE),
    (r"pdf|doc|html", FormatFamily.DOCUMENT),
    (r"shapefile|shp|geojson|kmz|gml|vector", FormatFamily.VECTOR),
    (r"binary|bin|native|raw|bil|bsq|flat", FormatFamily.BINARY),
]

_EXTENSION_FAMILIES: dict[str, FormatFamily] = {
    "nc": FormatFamily.NETCDF,
    "nc4": FormatFamily.NETCDF4,
    "cdf": FormatFamily.NETCDF,
    "h5": FormatFamily.HDF5,
    "hdf5": FormatFamily.HDF5,
    "he5": FormatFamily.HDF_EOS5,
    "hdf": FormatFamily.HDF,
    "hdf4": FormatFamily.HDF4,
    "tif": FormatFamily.GEOTIFF,
    "tiff": FormatFamily.GEOTIFF,
    "cog": FormatFamily.COG,
    "zarr": FormatFamily.ZARR,
    "jp2": FormatFamily.JPEG2000,
    "grb": FormatFamily.GRIB,
    "grb2": FormatFamily.GRIB,
    "grib": FormatFamily.GRIB,
    "grib2": FormatFamily.GRIB,
    "txt": FormatFamily.ASCII,
    "ict": FormatFamily.ASCII,
    "csv": FormatFamily.CSV,
    "xlsx": FormatFamily.CSV,
    "zip": FormatFamily.ARCHIVE,
    "gz": FormatFamily.ARCHIVE,
    "tar": FormatFamily.ARCHIVE,
    "z": FormatFamily.ARCHIVE,
    "png": FormatFamily.IMAGE,
    "jpg": FormatFamily.IMAGE,
    "jpeg": FormatFamily.IMAGE,
    "pdf": FormatFamily.DOCUMENT,
    "shp": FormatFamily.VECTOR,
    "bin": FormatFamily.BINARY,
    "dat": FormatFamily.BINARY,
}


def normalise_format(value: str | None) -> FormatFamily | None:
    """Map any CMR spelling of a format to its family; None when there is no string at all."""
    if value is None:
        return None
    squashed = re.sub(r"[^a-z0-9]", "", value.lower())
    for pattern, family in _FAMILY_PATTERNS:
        if re.search(pattern, squashed):
            return family
    return FormatFamily.OTHER


def extension_of(url: str | None) -> str | None:
    """The data file's extension as written (case kept, like the predecessor); '' without a dot."""
    if not url:
        return None
    name = PurePosixPath(urlparse(url).path).name
    return name.rsplit(".", 1)[1] if "." in name else ""


def family_of_extension(extension: str | None) -> FormatFamily | None:
    return _EXTENSION_FAMILIES.get((extension or "").lower())


# The containers each family's files should have; a mismatch is worth saying in a message.
EXPECTED_CONTAINERS: dict[FormatFamily, set[Container]] = {
    FormatFamily.NETCDF4: {Container.HDF5},
    FormatFamily.NETCDF3: {Container.NETCDF3},
    FormatFamily.NETCDF: {Container.HDF5, Container.NETCDF3},
    FormatFamily.HDF5: {Container.HDF5},
    FormatFamily.HDF_EOS5: {Container.HDF5},
    FormatFamily.HDF_EOS2: {Container.HDF4},
    FormatFamily.HDF4: {Container.HDF4},
    FormatFamily.HDF: {Container.HDF4, Container.HDF5},
    FormatFamily.COG: {Container.TIFF},
    FormatFamily.GEOTIFF: {Container.TIFF},
    FormatFamily.JPEG2000: {Container.JPEG2000},
    FormatFamily.GRIB: {Container.GRIB},
}

UNSUPPORTED_CONTAINER_REASONS: dict[Container, str] = {
    Container.NETCDF3: "netCDF-3 classic file: titiler-cmr's xarray backend reads netCDF-4/HDF5 only",
    Container.HDF4: "HDF4 file: titiler-cmr reads neither HDF4 nor HDF-EOS2",
    Container.ZIP: "ZIP archive: titiler-cmr cannot read inside archives",
    Container.GZIP: "gzip-compressed file: titiler-cmr cannot read compressed streams",
    Container.BZIP2: "bzip2-compressed file: titiler-cmr cannot read compressed streams",
    Container.TAR: "tar archive: titiler-cmr cannot read inside archives",
    Container.PNG: "PNG image without georeferencing",
    Container.JPEG: "JPEG image without georeferencing",
    Container.PDF: "PDF document",
    Container.GRIB: "GRIB file: titiler-cmr has no GRIB reader",
    Container.HTML: "HTML page instead of data",
    Container.XML: "XML document",
    Container.JSON: "JSON document",
    Container.TEXT: "text/ASCII file",
    Container.EMPTY: "empty file",
    Container.UNKNOWN: "unrecognised binary format",
    Container.ZARR: "Zarr store",
}


def describe_mismatch(family: FormatFamily | None, container: Container) -> str:
    """A short note when metadata and bytes disagree, e.g. 'metadata says HDF5, bytes are text'."""
    expected = EXPECTED_CONTAINERS.get(family) if family else None
    if expected and container not in expected:
        return f" (metadata says {family.value}, the bytes are {container.value})"
    return ""
