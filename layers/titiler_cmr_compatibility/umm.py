"""Reading UMM-C collection and UMM-G granule records: just the fields the check needs."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

from .formats import RASTERIO_EXTENSIONS, FormatFamily, family_of_extension, normalise_format

GET_DATA = "GET DATA"
GET_DATA_DIRECT = "GET DATA VIA DIRECT ACCESS"

# Files that ride along with data files in GET DATA links but are never the data.
_SIDECAR_SUFFIXES = (
    ".md5", ".sha1", ".sha256", ".sha512", ".cksum", ".crc", ".xml", ".cmr.json", ".met",
    ".dmrpp", ".browse.png", ".browse.jpg", ".qa.png",
)  # fmt: skip
# CMR's concept ids: a type letter, a sequence number (ten digits today; twenty allowed) and the
# provider id, which CMR's metadata-db requires to be an upper-case letter then upper-case letters,
# digits or underscores, ten characters at most. An id is checked against this before it becomes
# part of a storage key: a `/`, `..`, NUL or a 10,000-character id never reaches one.
COLLECTION_ID = re.compile(r"C[0-9]{1,20}-[A-Z][A-Z0-9_]{0,9}")
GRANULE_ID = re.compile(r"G[0-9]{1,20}-[A-Z][A-Z0-9_]{0,9}")
# The largest count (granules of a collection, hits of a search) taken as a count: the largest
# collection in the recorded records has 156 million granules; a count beyond 10 billion is noise.
MAX_COUNT = 10**10


def is_collection_id(value: object) -> bool:
    return isinstance(value, str) and COLLECTION_ID.fullmatch(value) is not None


def as_count(value: object) -> int | None:
    """`value` if it is a whole number from 0 to MAX_COUNT (an int, or a string of digits as in
    CMR's headers), else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


class Unusable(StrEnum):
    """Why a search item cannot become a survey marker (what setup counts skipped records by)."""

    NO_META_OR_UMM = "no_meta_or_umm"
    INVALID_CONCEPT_ID = "invalid_concept_id"
    INVALID_GRANULE_COUNT = "invalid_granule_count"


class BadRecord(ValueError):
    """A search item that cannot be read as a collection; `reason` says which way it is bad."""

    def __init__(self, reason: Unusable, message: str):
        super().__init__(message)
        self.reason = reason


# Formats titiler-cmr can open, in order of preference when a granule offers several files.
_PREFERRED_FAMILIES = (
    FormatFamily.NETCDF4, FormatFamily.NETCDF, FormatFamily.HDF5, FormatFamily.COG,
    FormatFamily.GEOTIFF, FormatFamily.HDF_EOS5, FormatFamily.JPEG2000,
)  # fmt: skip


@dataclass
class CollectionInfo:
    """The compact part of a UMM-C record the check needs (what a survey marker stores)."""

    concept_id: str
    provider: str
    short_name: str | None = None
    version: str | None = None
    entry_title: str | None = None
    formats: list[str] = field(default_factory=list)  # distribution first, then archive
    processing_level: str | None = None
    granule_count: int | None = None
    s3_credentials_endpoint: str | None = None
    cloud_hosted: bool = False

    @classmethod
    def from_umm(cls, item: object) -> CollectionInfo:
        """The fields of a UMM-JSON search item. An optional field of the wrong type reads as
        absent; an item without `meta` or `umm`, with a concept id outside CMR's grammar or a
        granule count that is not a count raises BadRecord."""
        meta, umm = (item.get(part) if isinstance(item, dict) else None for part in ("meta", "umm"))
        if not isinstance(meta, dict) or not isinstance(umm, dict):
            raise BadRecord(Unusable.NO_META_OR_UMM, "the search item has no meta or no umm object")
        concept_id = meta.get("concept-id")
        if not is_collection_id(concept_id):
            raise BadRecord(Unusable.INVALID_CONCEPT_ID,
                            f"{concept_id!r:.80} is not a CMR collection concept id (C<digits>-<PROVIDER>)")  # fmt: skip
        count = meta.get("granule-count")
        granule_count = as_count(count)
        if count is not None and granule_count is None:
            raise BadRecord(Unusable.INVALID_GRANULE_COUNT,
                            f"{concept_id}: granule count {count!r:.40} is not a whole number up to {MAX_COUNT:,}")  # fmt: skip
        archive = _object(umm.get("ArchiveAndDistributionInformation"))
        formats = [
            entry["Format"]
            for key in ("FileDistributionInformation", "FileArchiveInformation")
            for entry in _list(archive.get(key))
            if isinstance(entry, dict) and isinstance(entry.get("Format"), str)
        ]
        direct = _object(umm.get("DirectDistributionInformation"))
        provider = meta.get("provider-id")
        return cls(
            concept_id=concept_id,
            provider=provider if isinstance(provider, str) and provider else concept_id.rsplit("-", 1)[-1],
            short_name=_text(umm.get("ShortName")),
            version=_text(umm.get("Version")),
            entry_title=_text(umm.get("EntryTitle")),
            formats=list(dict.fromkeys(formats)),
            processing_level=_text(_object(umm.get("ProcessingLevel")).get("Id")),
            granule_count=granule_count,
            s3_credentials_endpoint=_text(direct.get("S3CredentialsAPIEndpoint")),
            cloud_hosted=bool(direct),
        )

    @classmethod
    def from_marker(cls, data: dict[str, Any]) -> CollectionInfo:
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})

    def to_marker(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def short_name_and_version(self) -> str | None:
        if self.short_name is None:
            return None
        return f"{self.short_name}.{self.version}" if self.version else self.short_name

    @property
    def format(self) -> str | None:
        """The first format string the record gives, as written (the predecessor's `format`)."""
        return self.formats[0] if self.formats else None

    @property
    def format_family(self) -> FormatFamily | None:
        """The first format string that says something, normalised."""
        families = [normalise_format(value) for value in self.formats]
        useful = [f for f in families if f not in (None, FormatFamily.NOT_PROVIDED)]
        return useful[0] if useful else (families[0] if families else None)

    @property
    def data_center(self) -> str:
        return data_center_for_provider(self.provider)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# CMR provider → DAAC short name, in earthaccess's names (`earthaccess.daac.DAACS`; a test keeps
# the two in step). Kept here because the serverless steps that build results from markers run
# in a Lambda layer that earthaccess and its dependencies do not fit in.
DAAC_BY_PROVIDER = {
    "NSIDC_CPRD": "NSIDC", "NSIDC_ECS": "NSIDC",
    "GHRC_DAAC": "GHRCDAAC",
    "POCLOUD": "PODAAC", "PODAAC": "PODAAC",
    "ASF": "ASF",
    "ORNL_CLOUD": "ORNLDAAC", "ORNL_DAAC": "ORNLDAAC",
    "LPCLOUD": "LPDAAC", "LPDAAC_ECS": "LPDAAC",
    "GES_DISC": "GES_DISC",
    "OB_CLOUD": "OBDAAC", "OB_DAAC": "OBDAAC",
    "ESDIS": "SEDAC",
    "LAADS": "LAADS",
    "LARC_CLOUD": "ASDC", "LARC_ASDC": "ASDC",
}  # fmt: skip


def data_center_for_provider(provider: str) -> str:
    """The DAAC short name (earthaccess's names) for a CMR provider; the provider id if unknown."""
    return DAAC_BY_PROVIDER.get(provider, provider)


@dataclass(frozen=True)
class DataLink:
    url: str
    access: Literal["direct", "external"]


@dataclass
class GranuleInfo:
    concept_id: str | None
    links: list[DataLink]  # candidates, best first, in the access type actually used
    skipped: list[str]  # links that were seen and not usable (ftp, sidecars), for messages
    temporal: tuple[str | None, str | None]
    s3_credentials_endpoint: str | None
    access_type: Literal["direct", "external"]
    # What titiler-cmr reads the granule's files from: its GET DATA and GET DATA VIA DIRECT
    # ACCESS links as (Type, URL), in record order, and the file names DataGranule lists.
    asset_links: list[tuple[str, str]] = field(default_factory=list)
    file_names: frozenset[str] | None = None

    def titiler_cmr_assets(self, regex: str | None = None) -> list[TitilerAsset]:
        return titiler_cmr_assets(self.asset_links, self.file_names, regex)


def _is_sidecar(url: str) -> bool:
    name = PurePosixPath(urlparse(url).path).name.lower()
    return name.endswith(_SIDECAR_SUFFIXES) or not name


def _rank(url: str, family: FormatFamily | None) -> tuple[int, int]:
    """Prefer a file of the collection's format, then files titiler-cmr can open; keep order."""
    extension = PurePosixPath(urlparse(url).path).suffix.lstrip(".")
    link_family = family_of_extension(extension)
    matches_collection = 0 if family and link_family and link_family == family else 1
    openable = (
        _PREFERRED_FAMILIES.index(link_family) if link_family in _PREFERRED_FAMILIES else len(_PREFERRED_FAMILIES)
    )
    return matches_collection, openable


def read_granule(
    granule: dict[str, Any],
    access_type: Literal["direct", "external"],
    collection_family: FormatFamily | None = None,
) -> GranuleInfo:
    """Data links of the wanted access type, falling back from direct to external when a granule
    has no s3 link; checksum, metadata and browse sidecars and non-HTTP(S)/S3 links are skipped.
    A part of the record of the wrong type reads as absent."""
    umm = _object(granule.get("umm"))
    direct: list[str] = []
    external: list[str] = []
    skipped: list[str] = []
    asset_links: list[tuple[str, str]] = []
    credentials_endpoint = None
    for related in map(_object, _list(umm.get("RelatedUrls"))):
        url, kind = related.get("URL"), related.get("Type")
        if not isinstance(url, str):
            continue
        if kind in TITILER_ASSET_TYPES:
            asset_links.append((kind, url))
        url = url.strip()
        scheme = urlparse(url).scheme.lower()
        if url.rstrip("/").endswith("/s3credentials"):
            credentials_endpoint = url
            continue
        if kind not in (GET_DATA, GET_DATA_DIRECT):
            continue
        if _is_sidecar(url):
            skipped.append(url)
        elif scheme == "s3":
            direct.append(url)
        elif scheme in ("https", "http"):
            external.append(url)
        else:
            skipped.append(url)
    used: Literal["direct", "external"] = "direct" if access_type == "direct" and direct else "external"
    chosen = direct if used == "direct" else external
    ranked = sorted(dict.fromkeys(chosen), key=lambda url: _rank(url, collection_family))
    return GranuleInfo(
        concept_id=_object(granule.get("meta")).get("concept-id"),
        links=[DataLink(url, used) for url in ranked],
        skipped=skipped,
        temporal=_temporal(umm),
        s3_credentials_endpoint=credentials_endpoint,
        access_type=used,
        asset_links=asset_links,
        file_names=_file_names(umm),
    )


def _file_names(umm: dict[str, Any]) -> frozenset[str] | None:
    """DataGranule's file names, "Not provided" left out; None when it names none (titiler-cmr
    then takes every link)."""
    entries = _list(_object(umm.get("DataGranule")).get("ArchiveAndDistributionInformation"))
    names = {entry["Name"] for entry in map(_object, entries) if isinstance(entry.get("Name"), str)}
    return frozenset(names - {"Not provided"}) or None


def _temporal(umm: dict[str, Any]) -> tuple[str | None, str | None]:
    extent = _object(umm.get("TemporalExtent"))
    if "RangeDateTime" in extent:
        span = _object(extent["RangeDateTime"])
        begin, end = _text(span.get("BeginningDateTime")), _text(span.get("EndingDateTime"))
        return begin, end or begin
    single = _text(extent.get("SingleDateTime"))
    return single, single


# ------------------------------------------------------------------------------------------------
# How titiler-cmr 1.1.2 turns a granule's record into the file it reads. Restated from its source
# (titiler/cmr/models.py `Granule.get_assets`, reader.py `MultiBaseGranuleReader` and
# `XarrayGranuleReader`) and held to it by running its own code on real and generated records:
#
# - Only GET DATA and GET DATA VIA DIRECT ACCESS links count, and when DataGranule names files
#   only links whose name (everything after the last "/", query included) it names.
# - A link's key is its file name without the last extension (or the first match of
#   `assets_regex`, and links it does not match are left out); links sharing a key are one asset,
#   the later link of each Type winning. Without a regex the assets are then keyed "0", "1", ...
# - Every asset becomes `Asset(direct_href, external_href, ext)`, all three required: the direct
#   href and `ext` from the DIRECT ACCESS link, the external href from the GET DATA link. One
#   asset without them and `get_assets` raises (pydantic's ValidationError), on both backends.
# - /xarray opens asset "0" (its direct href with s3 access, else its external href).
# - /rasterio lists the assets whose ext is empty or one of RASTERIO_EXTENSIONS (none listed:
#   MissingAssets), reads the `assets` asked for or "0" (not listed: InvalidAssetName) and needs a
#   media type for its ext (an empty ext has none: InvalidMediaType).

TITILER_ASSET_TYPES = (GET_DATA_DIRECT, GET_DATA)

# What titiler-cmr would have to accept to read the file the check rendered (`titiler_cmr_blocker`).
NO_DIRECT_LINK = "files without a direct-access (s3) link"
NO_HTTPS_LINK = "files without an https link"
UNNAMED_FILE = "links to files DataGranule does not name"
SHARED_NAME = "files told apart only by their extension"
NOT_FIRST_FILE = "a data file that is not the granule's first"


@dataclass(frozen=True)
class TitilerAsset:
    """One asset as titiler-cmr 1.1.2's `Granule.get_assets` builds it, before its `Asset` model
    checks that all three fields are there."""

    key: str
    name: str  # the file name it was keyed by (no folder, no last extension)
    direct_href: str | None = None
    external_href: str | None = None
    ext: str | None = None  # the DIRECT ACCESS link's extension, "." included ("" for none)

    @property
    def missing(self) -> list[str]:
        return [name for name in ("direct_href", "external_href", "ext") if getattr(self, name) is None]

    def href(self, access: Literal["direct", "external"]) -> str | None:
        """The link titiler-cmr reads, with s3 access (`direct`) or without."""
        return self.direct_href if access == "direct" else self.external_href


def titiler_cmr_assets(
    links: list[tuple[str, str]], file_names: frozenset[str] | None, regex: str | None = None
) -> list[TitilerAsset]:
    """`Granule.get_assets(regex)` of titiler-cmr 1.1.2 on (Type, URL) links in record order,
    every asset kept, complete or not."""
    found: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    for kind, url in links:
        if kind not in TITILER_ASSET_TYPES:
            continue
        root, extension = os.path.splitext(url)
        name = root.split("/")[-1]
        if file_names is not None and name + extension not in file_names:
            continue
        if regex:
            match = re.search(regex, name)
            if match is None:
                continue
            key = match.group()
        else:
            key = name
        fields = found.setdefault(key, {})
        names[key] = name
        if kind == GET_DATA_DIRECT:
            fields["ext"] = extension
            fields["direct_href"] = url
        else:
            fields["external_href"] = url
    return [
        TitilerAsset(key if regex else str(index), names[key], **fields)
        for index, (key, fields) in enumerate(found.items())
    ]


@dataclass(frozen=True)
class TitilerFile:
    """The file titiler-cmr 1.1.2 reads for a tile of a granule, or why it reads none."""

    href: str | None  # the link it reads
    asset: TitilerAsset | None = None
    refusal: str | None = None  # what it does instead, in its own terms
    incomplete: TitilerAsset | None = None  # the asset get_assets raised on


def _incomplete(assets: list[TitilerAsset]) -> TitilerFile | None:
    asset = next((asset for asset in assets if asset.missing), None)
    if asset is None:
        return None
    has = "a GET DATA VIA DIRECT ACCESS link" if asset.direct_href else "a GET DATA link"
    lacks = "no GET DATA (https) link" if asset.direct_href else "no GET DATA VIA DIRECT ACCESS (s3) link"
    return TitilerFile(None, asset, f"Granule.get_assets raises a ValidationError (Asset {asset.name!r} lacks "
                                    f"{', '.join(asset.missing)}): the file has {has} and {lacks}", asset)  # fmt: skip


def titiler_cmr_xarray_file(info: GranuleInfo) -> TitilerFile:
    """What titiler-cmr 1.1.2's /xarray route reads of this granule: asset "0"."""
    assets = info.titiler_cmr_assets()
    refused = _incomplete(assets)
    if refused is not None:
        return refused
    if not assets:
        return TitilerFile(None, refusal="Granule.get_assets finds no asset, so assets['0'] is a KeyError")
    return TitilerFile(assets[0].href(info.access_type), assets[0])


def titiler_cmr_rasterio_file(info: GranuleInfo, regex: str | None = None, key: str | None = None) -> TitilerFile:
    """What titiler-cmr 1.1.2's /rasterio route reads of this granule when asked with
    `assets_regex=regex` (if any) and `assets=key` (if any; else its default, "0")."""
    assets = info.titiler_cmr_assets(regex)
    refused = _incomplete(assets)
    if refused is not None:
        return refused
    listed = [asset for asset in assets if not asset.ext or asset.ext in RASTERIO_EXTENSIONS]
    if not listed:
        return TitilerFile(None, refusal="MissingAssets: no asset has a media type its rasterio reader takes")
    wanted = key or "0"
    asset = next((asset for asset in listed if asset.key == wanted), None)
    if asset is None:
        return TitilerFile(None, refusal=f"InvalidAssetName: {wanted!r} is not one of {[a.key for a in listed][:5]}")
    if asset.ext not in RASTERIO_EXTENSIONS:
        return TitilerFile(None, asset, f"InvalidMediaType: asset {wanted!r} has no media type (no extension)")
    return TitilerFile(asset.href(info.access_type), asset)


def asset_of(info: GranuleInfo, url: str, regex: str | None = None) -> TitilerAsset | None:
    """The asset titiler-cmr builds on `url` (one of the granule's links), if any."""
    return next((asset for asset in info.titiler_cmr_assets(regex)
                 if (asset.href(info.access_type) or "").strip() == url.strip()), None)  # fmt: skip


def unread_because(info: GranuleInfo, url: str) -> str:
    """Why titiler-cmr reads another file than `url` (a data link of the granule): the blocker."""
    root, extension = os.path.splitext(url)
    name = root.split("/")[-1]
    if info.file_names is not None and name + extension not in info.file_names:
        return UNNAMED_FILE
    sharing = [other for _kind, other in info.asset_links if os.path.splitext(other)[0].split("/")[-1] == name]
    if len({os.path.splitext(other)[1] for other in sharing}) > 1:
        return SHARED_NAME
    return NOT_FIRST_FILE
