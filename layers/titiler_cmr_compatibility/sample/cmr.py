"""A fake NASA CMR search API on loopback, and builders for synthetic UMM records.

The survey tool talks to CMR over plain HTTP (collections search, granule search, providers),
so the most faithful stand-in is an HTTP server that answers the way CMR does: the same
paths, parameters, headers, paging (``CMR-Search-After``), limits and error bodies. It serves
whatever records it is given: the tests feed it real recorded items (``tests/support/fixtures``),
the ``demo`` command the synthetic ones from ``make_collection``/``make_granule``
(``sample.demo``).

Validation messages are CMR's own (``cmr.common-app.services.search.parameter-validation``), so
a client that mishandles an error is tested against the real wording. Parameters the fake does
not implement are rejected with CMR's "was not recognized" 400 rather than silently ignored:
a test should fail loudly when the code under test relies on a filter the fake cannot honour.
Pass ``strict=False`` to ignore them instead.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from .server import LocalHTTPServer, Request, Response, Stream, substring_matcher

__all__ = [
    "COLLECTIONS_CONTENT_TYPE",
    "GRANULES_CONTENT_TYPE",
    "MAX_PAGE_SIZE",
    "PAGING_DEPTH_LIMIT",
    "FakeCMR",
    "cloud_links",
    "make_collection",
    "make_granule",
    "provider_item",
]

COLLECTIONS_CONTENT_TYPE = "application/vnd.nasa.cmr.umm_results+json;version=1.18.0; charset=utf-8"
GRANULES_CONTENT_TYPE = "application/vnd.nasa.cmr.umm_results+json;version=1.6.6; charset=utf-8"
MAX_PAGE_SIZE = 2000
DEFAULT_PAGE_SIZE = 10
PAGING_DEPTH_LIMIT = 1_000_000

Item = dict[str, Any]

# ------------------------------------------------------------------------------------ builders


def make_collection(
    concept_id: str,
    short_name: str,
    version: str = "1",
    provider: str = "TEST",
    formats: Sequence[str] = ("netCDF-4",),
    granule_count: int | None = 1,
    processing_level: str | None = "3",
    archive_formats: Sequence[str] = (),
    cloud_hosted: bool = False,
    s3_credentials_endpoint: str | None = None,
    *,
    entry_title: str | None = None,
    revision_id: int = 1,
) -> Item:
    """A synthetic UMM-C search item shaped like the recorded ones.

    ``granule_count=None`` omits ``meta.granule-count`` (as in the 2026 recordings).
    ``formats``/``archive_formats`` fill ``FileDistributionInformation``/
    ``FileArchiveInformation``; with both empty, ``ArchiveAndDistributionInformation`` is left
    out entirely, as in 330 real records. Giving ``s3_credentials_endpoint`` implies
    ``cloud_hosted``.
    """
    cloud_hosted = cloud_hosted or s3_credentials_endpoint is not None
    title = entry_title if entry_title is not None else f"{short_name} version {version}"
    bucket_prefix = f"{provider.lower().replace('_', '-')}-protected/{short_name}/"
    meta: Item = {
        "concept-type": "collection",
        "concept-id": concept_id,
        "revision-id": revision_id,
        "native-id": f"{short_name}_{version}",
        "provider-id": provider,
        "format": "application/vnd.nasa.cmr.umm+json",
        "revision-date": "2024-10-11T00:00:00.000Z",
        "deleted": False,
        "user-id": "test",
        "has-formats": False,
        "has-variables": False,
        "has-transforms": False,
        "has-combine": False,
        "has-spatial-subsetting": False,
        "has-temporal-subsetting": False,
    }
    if granule_count is not None:
        meta["granule-count"] = granule_count
    umm: Item = {
        "ShortName": short_name,
        "Version": version,
        "EntryTitle": title,
        "Abstract": f"Synthetic collection {short_name}.",
        "CollectionDataType": "SCIENCE_QUALITY",
        "CollectionProgress": "ACTIVE",
        "ScienceKeywords": [
            {"Category": "EARTH SCIENCE", "Topic": "OCEANS", "Term": "OCEAN TEMPERATURE"}
        ],
        "TemporalExtents": [
            {"RangeDateTimes": [{"BeginningDateTime": "2024-01-01T00:00:00.000Z"}]}
        ],
        "SpatialExtent": {
            "SpatialCoverageType": "HORIZONTAL",
            "HorizontalSpatialDomain": {
                "Geometry": {
                    "CoordinateSystem": "CARTESIAN",
                    "BoundingRectangles": [
                        {
                            "WestBoundingCoordinate": -180.0,
                            "SouthBoundingCoordinate": -90.0,
                            "EastBoundingCoordinate": 180.0,
                            "NorthBoundingCoordinate": 90.0,
                        }
                    ],
                }
            },
            "GranuleSpatialRepresentation": "CARTESIAN",
        },
        "Platforms": [{"ShortName": "Not provided"}],
        "DataCenters": [{"Roles": ["ARCHIVER", "DISTRIBUTOR"], "ShortName": provider}],
        "MetadataSpecification": {
            "URL": "https://cdn.earthdata.nasa.gov/umm/collection/v1.18.0",
            "Name": "UMM-C",
            "Version": "1.18.0",
        },
    }
    if processing_level is not None:
        umm["ProcessingLevel"] = {"Id": processing_level}
    if formats or archive_formats:
        archive: Item = {}
        if archive_formats:
            archive["FileArchiveInformation"] = [{"Format": f} for f in archive_formats]
        if formats:
            archive["FileDistributionInformation"] = [
                {"Format": f, "FormatType": "Native"} for f in formats
            ]
        umm["ArchiveAndDistributionInformation"] = archive
    if cloud_hosted:
        endpoint = s3_credentials_endpoint or f"https://data.{provider.lower()}.test/s3credentials"
        umm["DirectDistributionInformation"] = {
            "Region": "us-west-2",
            "S3BucketAndObjectPrefixNames": [bucket_prefix],
            "S3CredentialsAPIEndpoint": endpoint,
            "S3CredentialsAPIDocumentationURL": f"{endpoint}README",
        }
        meta["s3-links"] = [bucket_prefix]
    return {"meta": meta, "umm": umm}


def cloud_links(url: str) -> list[tuple[str, str]]:
    """A data file's links as a cloud DAAC's granule record gives them (``make_granule``'s
    ``urls``): its https link (GET DATA), then its s3 link (GET DATA VIA DIRECT ACCESS) to the same
    bucket and key, the https path's first part being the bucket. titiler-cmr 1.1.2 needs both."""
    return [(url, "GET DATA"), ("s3:/" + urlsplit(url).path, "GET DATA VIA DIRECT ACCESS")]


def make_granule(
    concept_id: str,
    collection_concept_id: str,
    urls: Sequence[tuple[str, str]],
    temporal: tuple[str, str] | str = ("2024-10-11T00:00:00Z", "2024-10-11T23:59:59Z"),
    *,
    granule_ur: str | None = None,
    short_name: str = "TEST_COLLECTION",
    version: str = "1",
    sizes: Mapping[str, int] | None = None,
) -> Item:
    """A synthetic UMM-G 1.6.6 search item shaped like the recorded PO.DAAC ones.

    ``urls`` are ``(url, RelatedUrl Type)`` pairs, e.g. ``("https://…/f.nc", "GET DATA")``,
    ``("s3://bucket/f.nc", "GET DATA VIA DIRECT ACCESS")``, ``(".../s3credentials",
    "VIEW RELATED INFORMATION")``. ``temporal`` is a (begin, end) range or one date time
    (``SingleDateTime``). ``sizes`` maps a file name to ``SizeInBytes``.
    """
    provider = concept_id.split("-", 1)[1] if "-" in concept_id else "TEST"
    data_names = [
        PurePosixPath(urlsplit(url).path).name for url, kind in urls if kind == "GET DATA"
    ]
    if granule_ur is None:
        granule_ur = PurePosixPath(data_names[0]).stem if data_names else concept_id
    if isinstance(temporal, str):
        temporal_extent: Item = {"SingleDateTime": temporal}
    else:
        temporal_extent = {
            "RangeDateTime": {"BeginningDateTime": temporal[0], "EndingDateTime": temporal[1]}
        }
    files = [
        {"Name": name, **({"SizeInBytes": sizes[name]} if sizes and name in sizes else {})}
        for name in data_names
    ] or [{"Name": "Not provided"}]
    related = []
    for url, kind in urls:
        name = PurePosixPath(urlsplit(url).path).name
        description = (
            "This link provides direct download access via S3 to the granule"
            if url.startswith("s3://")
            else f"Download {name}"
        )
        related.append({"URL": url, "Description": description, "Type": kind})
    return {
        "meta": {
            "concept-type": "granule",
            "concept-id": concept_id,
            "revision-id": 1,
            "native-id": granule_ur,
            "collection-concept-id": collection_concept_id,
            "provider-id": provider,
            "format": "application/vnd.nasa.cmr.umm+json",
            "revision-date": "2024-10-12T08:33:12.691Z",
        },
        "umm": {
            "TemporalExtent": temporal_extent,
            "MetadataSpecification": {
                "Version": "1.6.6",
                "URL": "https://cdn.earthdata.nasa.gov/umm/granule/v1.6.6",
                "Name": "UMM-G",
            },
            "GranuleUR": granule_ur,
            "ProviderDates": [
                {"Type": "Insert", "Date": "2024-10-12T08:32:40.819Z"},
                {"Type": "Update", "Date": "2024-10-12T08:32:40.819Z"},
            ],
            "SpatialExtent": {
                "HorizontalSpatialDomain": {
                    "Geometry": {
                        "BoundingRectangles": [
                            {
                                "WestBoundingCoordinate": -180.0,
                                "SouthBoundingCoordinate": -90.0,
                                "EastBoundingCoordinate": 180.0,
                                "NorthBoundingCoordinate": 90.0,
                            }
                        ]
                    }
                }
            },
            "DataGranule": {
                "ArchiveAndDistributionInformation": files,
                "DayNightFlag": "Unspecified",
                "ProductionDateTime": "2024-10-12T12:00:00.000Z",
            },
            "CollectionReference": {"ShortName": short_name, "Version": version},
            "RelatedUrls": related,
        },
    }


def provider_item(provider_id: str, consortiums: Sequence[str] | None = ("EOSDIS",)) -> Item:
    """One ``/search/providers`` item in CMR's UMM-P shape (``consortiums=None`` omits the key).

    Real CMR answers ``{"hits", "took", "items": [...]}`` where each item is the provider's
    UMM-P document (``ProviderId``, ``Organizations``, ``Consortiums``, …; see
    nasa/Common-Metadata-Repository ``schemas/resources/schemas/provider``). Clients select
    EOSDIS members by ``"EOSDIS" in item["Consortiums"]``.
    """
    item: Item = {
        "MetadataSpecification": {
            "Name": "UMM-P",
            "Version": "1.0.0",
            "URL": "https://cdn.earthdata.nasa.gov/umm/provider/v1.0.0",
        },
        "ProviderId": provider_id,
        "DescriptionOfHolding": f"Synthetic holdings of {provider_id}",
        "Organizations": [
            {
                "ShortName": provider_id,
                "LongName": provider_id,
                "Roles": ["PUBLISHER"],
                "URLValue": "https://cmr.earthdata.nasa.gov/search",
            }
        ],
    }
    if consortiums is not None:
        item["Consortiums"] = list(consortiums)
    return item


# ---------------------------------------------------------------------------------- the server

_NON_EOSDIS_PROVIDER = "NOAA_NCEI"
_PAGING_PARAMS = {"page_size", "page_num", "offset", "sort_key", "sort_key[]"}
_COLLECTION_PARAMS = _PAGING_PARAMS | {
    "provider",
    "provider[]",
    "concept_id",
    "concept_id[]",
    "short_name",
    "short_name[]",
    "version",
    "version[]",
    "processing_level_id",
    "processing_level_id[]",
    "cloud_hosted",
    "has_granules",
    "include_granule_counts",
}
_GRANULE_PARAMS = _PAGING_PARAMS | {
    "collection_concept_id",
    "collection_concept_id[]",
    "concept_id",
    "concept_id[]",
}


def _lower(value: Any) -> str:
    return str(value or "").lower()


def _part(item: Any, name: str) -> Item:
    """``item[name]`` if both are objects, else {}: a broken record (no ``meta``, no ``umm``, not
    even an object) is served as it is, never a crash of the fake."""
    value = item.get(name) if isinstance(item, dict) else None
    return value if isinstance(value, dict) else {}


# Collection sort keys: "usage_score" is the order the items were given in (the fixture is
# not in usage order, but the tool only needs a stable, documented order).
_COLLECTION_SORTS: dict[str, Callable[[Item], Any] | None] = {
    "usage_score": None,
    "entry_title": lambda item: _lower(_part(item, "umm").get("EntryTitle")).strip(),
    "short_name": lambda item: _lower(_part(item, "umm").get("ShortName")),
    "provider": lambda item: _lower(_part(item, "meta").get("provider-id")),
    "revision_date": lambda item: str(_part(item, "meta").get("revision-date", "")),
}


class CMRError(Exception):
    """A 400 answer with CMR's ``{"errors": [...]}`` body."""

    def __init__(self, *errors: str, status: int = 400) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)
        self.status = status


@dataclass(frozen=True)
class _Segment:
    """Granules of one collection and the number of hits they stand for (may exceed len)."""

    items: Sequence[Item]
    hits: int


class FakeCMR(LocalHTTPServer):
    """Fake CMR search: ``/search/collections.umm_json``, ``/search/granules.umm_json``,
    ``/search/providers``.

    Args:
        collections: UMM-C search items (``{"meta", "umm"}``), in "usage score" order.
        granules: collection concept id → UMM-G items, selected by key, not by a meta field
            (16 recorded granules lack ``meta.collection-concept-id``).
        granule_hits: collection concept id → ``hits`` to report instead of the item count.
            Offsets beyond the held items wrap (``offset % len(items)``), so a random offset up
            to the 1,000,000 limit still returns a granule.
        providers: items for ``/search/providers`` (served verbatim); default: every provider
            id of ``collections`` (at request time) as an EOSDIS member, plus one non-EOSDIS
            provider (``NOAA_NCEI``).
        strict: reject parameters the fake does not implement (CMR's 400), as the real
            service does for unknown ones. ``False`` ignores them.

    Implemented parameters (GET query or form-encoded POST body):

    * collections: ``provider``, ``concept_id``, ``short_name``, ``version``,
      ``processing_level_id`` (each also as ``name[]``, repeatable, case-insensitive),
      ``cloud_hosted``, ``has_granules``, ``include_granule_counts``, and
      ``sort_key[]`` in (``-``)``usage_score`` (given order), ``entry_title``,
      ``short_name``, ``provider``, ``revision_date``;
    * granules: ``collection_concept_id``, ``concept_id`` (granule ids, across all held
      granules); ``sort_key`` is accepted and the held order kept;
    * both: ``page_size`` (default 10, 0-2000), ``offset``, ``page_num`` and the
      ``CMR-Search-After`` request header, with CMR's 1,000,000 paging-depth limit.

    A hostile CMR, for the limits of its clients: ``rate_limit`` (429 forever, any
    ``Retry-After``), ``endless_body``, ``trickle_body`` (a byte at a time), ``hits_header`` (any
    ``CMR-Hits``), ``repeat_search_after`` (paging that never ends), and broken records
    (``collections`` items without ``meta`` or ``umm``, or not objects at all), which are served
    as they are and pass every filter.
    """

    def __init__(
        self,
        collections: Sequence[Item] = (),
        granules: Mapping[str, Sequence[Item]] | None = None,
        granule_hits: Mapping[str, int] | None = None,
        providers: Sequence[Item] | None = None,
        *,
        strict: bool = True,
    ) -> None:
        super().__init__()
        self.collections: list[Item] = list(collections)
        self.granules: dict[str, list[Item]] = {k: list(v) for k, v in (granules or {}).items()}
        self.granule_hits: dict[str, int] = dict(granule_hits or {})
        self.strict = strict
        #: Explicit ``/search/providers`` items; None derives them from ``collections`` at
        #: request time, so collections appended after construction are included.
        self.providers: list[Item] | None = None if providers is None else list(providers)
        #: Hostile CMR: every search answers this ``CMR-Hits`` header, whatever it holds.
        self.hits_header: str | None = None
        #: Hostile CMR: a page asked for with a ``CMR-Search-After`` names that same value as the
        #: next page's, so a client that follows it pages forever.
        self.repeat_search_after = False

    @property
    def search_url(self) -> str:
        """``<url>/search/``, the base URL form the tool is configured with."""
        return f"{self.url}/search/"

    def hang(self, path_contains: str) -> None:
        """Requests whose target contains the text block until ``stop()`` (test timeouts)."""
        self._hang_where(substring_matcher(path_contains))

    # ---------------------------------------------------------------------- hostile answers
    def rate_limit(self, retry_after: str = "0", path_contains: str | None = None) -> None:
        """Matching requests get 429 with this ``Retry-After``, forever."""
        self.answer_where(path_contains, lambda request: Response.json(
            {"errors": ["Too many requests."]}, 429, {"Retry-After": retry_after}))  # fmt: skip

    def endless_body(self, path_contains: str | None = None) -> None:
        """Matching requests get 200 and a body that never ends (until the client hangs up)."""
        chunk = b" " * 2**16
        self.answer_where(path_contains, lambda request: Response(
            200, Stream(itertools.repeat(chunk)), content_type=COLLECTIONS_CONTENT_TYPE))  # fmt: skip

    def trickle_body(self, path_contains: str | None = None, bytes_per_second: float = 1.0) -> None:
        """Matching requests get 200 and a body of one byte every ``1 / bytes_per_second`` s,
        forever: each socket read gets a byte in time, so only a limit on the whole answer ends it."""

        def trickle() -> Iterator[bytes]:
            yield b"{"
            while not self.wait_for_stop(1 / bytes_per_second):
                yield b" "

        self.answer_where(path_contains, lambda request: Response(200, Stream(trickle()), content_type=COLLECTIONS_CONTENT_TYPE))

    # ---------------------------------------------------------------------------- dispatch
    def handle(self, request: Request) -> Response:
        started = time.monotonic()
        routes: dict[str, Callable[[Request], tuple[Item, dict[str, str], str]]] = {
            "/search/collections.umm_json": self._collections,
            "/search/granules.umm_json": self._granules,
            "/search/providers": self._providers,
        }
        route = routes.get(request.path.rstrip("/"))
        if route is None:
            return Response.json({"errors": [f"Not found: {request.path}"]}, 404)
        if request.method not in ("GET", "POST", "HEAD"):
            return Response.json({"errors": [f"{request.method} is not allowed"]}, 405)
        try:
            body, headers, content_type = route(request)
            status = 200
        except CMRError as error:
            body, headers = {"errors": error.errors}, {}
            status, content_type = error.status, "application/json; charset=utf-8"
        took = max(1, int((time.monotonic() - started) * 1000))
        if "took" in body:
            body["took"] = took
        headers = {"CMR-Took": str(took), "CMR-Request-Id": str(uuid.uuid4()), **headers}
        if self.hits_header is not None and "CMR-Hits" in headers:
            headers["CMR-Hits"] = self.hits_header
        if self.repeat_search_after and "CMR-Search-After" in headers and "CMR-Search-After" in request.headers:
            headers["CMR-Search-After"] = request.headers["CMR-Search-After"]
        return Response.json(body, status, headers, content_type)

    def _check_params(self, request: Request, known: set[str]) -> None:
        if not self.strict:
            return
        unknown = sorted(set(request.query) - known)
        if unknown:
            raise CMRError(*(f"Parameter [{name}] was not recognized." for name in unknown))

    # ------------------------------------------------------------------------- collections
    def _collections(self, request: Request) -> tuple[Item, dict[str, str], str]:
        self._check_params(request, _COLLECTION_PARAMS)
        matches = [item for item in self.collections if self._collection_matches(request, item)]
        matches = self._sort_collections(request, matches)
        counts = _boolean(request, "include_granule_counts")

        def item_at(index: int) -> Item:
            item = matches[index]
            meta = _part(item, "meta")
            if counts and meta and "granule-count" not in meta:
                item = {**item, "meta": {**meta, "granule-count": self._granule_count(item)}}
            return item

        def token(item: Item, next_offset: int) -> list[Any]:
            meta, umm = _part(item, "meta"), _part(item, "umm")
            return [
                _lower(umm.get("EntryTitle")).strip(),
                meta.get("provider-id"),
                umm.get("ShortName"),
                umm.get("Version"),
                meta.get("revision-id"),
                next_offset,
            ]

        body, headers = _page(request, len(matches), item_at, token)
        return body, headers, COLLECTIONS_CONTENT_TYPE

    def _collection_matches(self, request: Request, item: Item) -> bool:
        meta, umm = _part(item, "meta"), _part(item, "umm")
        if not meta or not umm:
            return True  # a broken record rides along with whatever is asked for
        checks: list[tuple[tuple[str, ...], Any]] = [
            (("provider", "provider[]"), meta.get("provider-id")),
            (("concept_id", "concept_id[]"), meta.get("concept-id")),
            (("short_name", "short_name[]"), umm.get("ShortName")),
            (("version", "version[]"), umm.get("Version")),
            (
                ("processing_level_id", "processing_level_id[]"),
                umm.get("ProcessingLevel", {}).get("Id"),
            ),
        ]
        for names, value in checks:
            wanted = request.values(*names)
            if wanted and _lower(value) not in {_lower(w) for w in wanted}:
                return False
        cloud_hosted = _boolean(request, "cloud_hosted")
        if cloud_hosted is not None and ("DirectDistributionInformation" in umm) != cloud_hosted:
            return False
        has_granules = _boolean(request, "has_granules")
        if has_granules is not None:
            # A record without meta.granule-count (the three 2026 recordings) counts as having
            # granules: real CMR decides has_granules from its own index, and those are live
            # collections with granules. Only an explicit count of 0 means "no granules".
            count = meta.get("granule-count")
            if (not isinstance(count, int) or count > 0) != has_granules:
                return False
        return True

    def _sort_collections(self, request: Request, items: list[Item]) -> list[Item]:
        keys = request.values("sort_key", "sort_key[]")
        for raw in reversed(keys):  # stable sorts, least significant key first
            descending = raw.startswith("-")
            field = raw.lstrip("+- ")
            if field not in _COLLECTION_SORTS:
                raise CMRError(
                    f"The sort key [{field}] is not a valid field for sorting collections."
                )
            key = _COLLECTION_SORTS[field]
            if key is None:  # usage_score: given order is "most used first"
                items = items if descending else list(reversed(items))
            else:
                items = sorted(items, key=key, reverse=descending)
        return items

    def _granule_count(self, item: Item) -> int:
        """Count for ``include_granule_counts`` when the record has none (see has_granules)."""
        concept_id = item["meta"].get("concept-id")
        if concept_id in self.granule_hits:
            return self.granule_hits[concept_id]
        held = len(self.granules.get(concept_id, ()))
        return held if held else 1

    # ---------------------------------------------------------------------------- granules
    def _granules(self, request: Request) -> tuple[Item, dict[str, str], str]:
        self._check_params(request, _GRANULE_PARAMS)
        collection_ids = request.values("collection_concept_id", "collection_concept_id[]")
        granule_ids = {g.upper() for g in request.values("concept_id", "concept_id[]")}
        sources = collection_ids or list(self.granules)
        segments: list[_Segment] = []
        for collection_id in sources:
            items = self.granules.get(collection_id, [])
            if granule_ids:
                items = [g for g in items if g["meta"]["concept-id"].upper() in granule_ids]
                segments.append(_Segment(items, len(items)))
            elif items:
                segments.append(_Segment(items, self.granule_hits.get(collection_id, len(items))))
        hits = sum(segment.hits for segment in segments)

        def item_at(index: int) -> Item:
            for segment in segments:
                if index < segment.hits:
                    return segment.items[index % len(segment.items)]
                index -= segment.hits
            raise IndexError(index)

        def token(item: Item, next_offset: int) -> list[Any]:
            return [_lower(_part(item, "meta").get("provider-id")), 1666656001000, next_offset]

        body, headers = _page(request, hits, item_at, token)
        return body, headers, GRANULES_CONTENT_TYPE

    # --------------------------------------------------------------------------- providers
    def _providers(self, request: Request) -> tuple[Item, dict[str, str], str]:
        items = self.providers
        if items is None:
            named = (_part(item, "meta").get("provider-id") for item in self.collections)
            ids = sorted({provider for provider in named if isinstance(provider, str) and provider})
            items = [provider_item(provider_id) for provider_id in ids]
            if _NON_EOSDIS_PROVIDER not in ids:
                items.append(provider_item(_NON_EOSDIS_PROVIDER, ("CEOS", "CWIC")))
        body = {"hits": len(items), "took": 1, "items": items}
        return body, {}, "application/json; charset=utf-8"


def _boolean(request: Request, name: str) -> bool | None:
    value = request.param(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise CMRError(f"Parameter {name} must take value of true or false but was [{value}]")
    return value.lower() == "true"


def _integer(request: Request, name: str, message: str) -> int | None:
    value = request.param(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise CMRError(message) from None


def _page(
    request: Request,
    hits: int,
    item_at: Callable[[int], Item],
    token: Callable[[Item, int], list[Any]],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Cut one page out of ``hits`` results, with CMR's limits and search-after paging.

    The ``CMR-Search-After`` token is a JSON array whose last element is the offset of the
    next result; the other elements only imitate CMR's sort values. It is sent only when more
    results follow, so a client paging by token makes ceil(hits / page_size) requests.
    """
    size_error = f"page_size must be a number between 0 and {MAX_PAGE_SIZE}"
    page_size = _integer(request, "page_size", size_error)
    page_size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 0 <= page_size <= MAX_PAGE_SIZE:
        raise CMRError(size_error)
    offset_error = f"offset must be an integer between zero and {PAGING_DEPTH_LIMIT}"
    offset = _integer(request, "offset", offset_error)
    page_num = _integer(request, "page_num", "page_num must be a number greater than or equal to 1")
    search_after = request.headers.get("CMR-Search-After")
    if offset is not None and page_num is not None:
        raise CMRError("Only one of offset or page-num may be specified")
    if search_after is not None and (offset is not None or page_num is not None):
        raise CMRError("page_num or offset is not allowed with search-after")
    if search_after is not None:
        start = _decode_search_after(search_after)
    elif offset is not None:
        if not 0 <= offset <= PAGING_DEPTH_LIMIT:
            raise CMRError(offset_error)
        if offset + page_size > PAGING_DEPTH_LIMIT:
            raise CMRError(
                f"The paging depth (page_size + offset) of [{offset + page_size}] exceeds "
                f"the limit of {PAGING_DEPTH_LIMIT}."
            )
        start = offset
    elif page_num is not None:
        if page_num < 1:
            raise CMRError("page_num must be a number greater than or equal to 1")
        if page_num * page_size > PAGING_DEPTH_LIMIT:
            raise CMRError(
                f"The paging depth (page_num * page_size) of [{page_num * page_size}] exceeds "
                f"the limit of {PAGING_DEPTH_LIMIT}."
            )
        start = (page_num - 1) * page_size
    else:
        start = 0
    count = max(0, min(page_size, hits - start))
    items = [item_at(start + i) for i in range(count)]
    headers = {"CMR-Hits": str(hits)}
    if count and start + count < hits:
        headers["CMR-Search-After"] = json.dumps(token(items[-1], start + count))
    return {"hits": hits, "took": 1, "items": items}, headers


def _decode_search_after(value: str) -> int:
    try:
        decoded = json.loads(value)
        offset = decoded[-1]
        if isinstance(decoded, list) and isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, IndexError, KeyError, TypeError):
        pass
    raise CMRError(
        f"search-after header value is invalid, must be in the form of a JSON array: [{value}]"
    )
