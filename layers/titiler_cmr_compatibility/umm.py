"""Reading UMM-C collection and UMM-G granule records: just the fields the check needs."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlparse

from .formats import FormatFamily, family_of_extension, normalise_format

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
    credentials_endpoint = None
    for related in map(_object, _list(umm.get("RelatedUrls"))):
        url, kind = related.get("URL"), related.get("Type")
        if not isinstance(url, str):
            continue
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
    )


def _temporal(umm: dict[str, Any]) -> tuple[str | None, str | None]:
    extent = _object(umm.get("TemporalExtent"))
    if "RangeDateTime" in extent:
        span = _object(extent["RangeDateTime"])
        begin, end = _text(span.get("BeginningDateTime")), _text(span.get("EndingDateTime"))
        return begin, end or begin
    single = _text(extent.get("SingleDateTime"))
    return single, single

