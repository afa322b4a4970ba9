"""Reading UMM-C collection and UMM-G granule records: just the fields the check needs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    def from_umm(cls, item: dict[str, Any]) -> CollectionInfo:
        meta, umm = item.get("meta", {}), item.get("umm", {})
        archive = umm.get("ArchiveAndDistributionInformation") or {}
        formats = [
            entry.get("Format")
            for key in ("FileDistributionInformation", "FileArchiveInformation")
            for entry in archive.get(key) or []
            if entry.get("Format") is not None
        ]
        direct = umm.get("DirectDistributionInformation") or {}
        count = meta.get("granule-count")
        return cls(
            concept_id=meta["concept-id"],
            provider=meta.get("provider-id") or meta["concept-id"].rsplit("-", 1)[-1],
            short_name=umm.get("ShortName"),
            version=umm.get("Version"),
            entry_title=umm.get("EntryTitle"),
            formats=list(dict.fromkeys(formats)),
            processing_level=(umm.get("ProcessingLevel") or {}).get("Id"),
            granule_count=int(count) if count is not None else None,
            s3_credentials_endpoint=direct.get("S3CredentialsAPIEndpoint"),
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
    has no s3 link; checksum, metadata and browse sidecars and non-HTTP(S)/S3 links are skipped."""
    umm = granule.get("umm", {})
    direct: list[str] = []
    external: list[str] = []
    skipped: list[str] = []
    credentials_endpoint = None
    for related in umm.get("RelatedUrls") or []:
        url, kind = (related.get("URL") or "").strip(), related.get("Type")
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
        concept_id=granule.get("meta", {}).get("concept-id"),
        links=[DataLink(url, used) for url in ranked],
        skipped=skipped,
        temporal=_temporal(umm),
        s3_credentials_endpoint=credentials_endpoint,
        access_type=used,
    )


def _temporal(umm: dict[str, Any]) -> tuple[str | None, str | None]:
    extent = umm.get("TemporalExtent") or {}
    if "RangeDateTime" in extent:
        span = extent["RangeDateTime"]
        return span.get("BeginningDateTime"), span.get("EndingDateTime") or span.get("BeginningDateTime")
    single = extent.get("SingleDateTime")
    return single, single
