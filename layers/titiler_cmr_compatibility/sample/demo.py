"""A small sample CMR and data host, so the whole survey can be shown offline (`demo`).

Everything here is made up for the demonstration: a dozen synthetic collections under the
providers ``DEMO`` and ``DEMO_CLOUD``, each with one to three granules whose files are written on
the spot by ``sample.files``. They are samples, not NASA data, chosen so that one run shows the
usual outcomes of the check: compatible netCDF-4 grids and GeoTIFFs, data found in a group,
swaths and HDF-EOS grids without X/Y dimensions, formats titiler-cmr cannot read, a host that
refuses the caller, a grid titiler-cmr's engines render but titiler-cmr cannot take (its granules
have https links only, as on-premises hosts give them), and a collection without granules.
``expected`` says what the check should conclude for each one, so the demo (and its test) can
show that it does. Every other granule links its file as cloud DAACs do, https and s3.

``build_sample`` writes the files and the records; ``serve_sample`` serves them on 127.0.0.1
with the same fake CMR and data server the tests use.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..result import CheckResult, Reason
from . import files
from .cmr import FakeCMR, cloud_links, make_collection, make_granule
from .data import DataServer

__all__ = ["COMPATIBLE", "SampleCatalog", "SampleServers", "build_sample", "outcome", "serve_sample"]

PROVIDER = "DEMO"
CLOUD_PROVIDER = "DEMO_CLOUD"
#: The value of ``SampleCatalog.expected`` for a collection titiler-cmr can tile.
COMPATIBLE = "compatible"
FIRST_DAY = date(2024, 10, 11)

Item = dict[str, Any]
#: Writes one granule's file: ``(folder, file name) -> path``.
Make = Callable[[Path, str], Path]


@dataclass(frozen=True)
class _Sample:
    """One sample collection: its record's fields, its files and the outcome they must give."""

    short_name: str
    title: str
    expected: str
    make: Make | None  # None: a collection whose granules CMR does not list
    extension: str = "nc"
    formats: tuple[str, ...] = ("netCDF-4",)
    granules: int = 1
    provider: str = PROVIDER
    processing_level: str = "3"
    protected: bool = False  # the data host wants an Earthdata token the demo does not have
    # Granules link each file as cloud DAACs do, https and s3 (direct access); False: https only,
    # as on-premises hosts do, which titiler-cmr 1.1.2 cannot take (it builds a file from both).
    direct_links: bool = True


_SAMPLES: tuple[_Sample, ...] = (
    _Sample(
        "DEMO_SST_GRID", "Sample daily sea surface temperature grid (a scalar crs listed first)", COMPATIBLE,
        lambda folder, name: files.netcdf4_grid(folder, name, first_var_scalar=True, with_bounds=True),
        granules=3,
    ),
    # This packed grid was linked like the others (and compatible) until the check modelled how
    # titiler-cmr takes a granule's files; it now stands for the on-premises case: https links
    # only. The engines still render it (the packed int16 still goes through them), but
    # titiler-cmr 1.1.2's Granule.get_assets raises without a direct-access (s3) link, so no
    # titiler-cmr URL shows it.
    _Sample(
        "DEMO_SST_PACKED", "Sample packed int16 SST on an on-premises host: https links only, no s3 link",
        Reason.FAILED_TO_EXTRACT_URL,
        lambda folder, name: files.netcdf4_grid(folder, name, ("analysed_sst",), packed=True, chunks=(1, 45, 90)),
        granules=2, direct_links=False,
    ),
    _Sample(
        "DEMO_LAND_COG", "Sample Cloud-Optimized GeoTIFF", COMPATIBLE,
        lambda folder, name: files.cog(folder, name, size=1024),
        extension="tif", formats=("Cloud Optimized GeoTIFF (COG)",), granules=2, provider=CLOUD_PROVIDER,
    ),
    _Sample(
        "DEMO_STRIPED_TIFF", "Sample plain striped GeoTIFF (not cloud-optimised)", COMPATIBLE,
        files.striped_geotiff, extension="tif", formats=("GeoTIFF",), provider=CLOUD_PROVIDER,
    ),
    _Sample(
        "DEMO_GROUPED_GRID", "Sample grid stored only inside a netCDF-4 group", COMPATIBLE,
        lambda folder, name: files.netcdf4_grid(folder, name, group="science"),
    ),
    _Sample(
        "DEMO_OCEAN_COLOR", "Sample chlorophyll grid in /science/grids, only scalars at the root", COMPATIBLE,
        files.netcdf4_mixed_groups, granules=2,
    ),
    _Sample(
        "DEMO_L2_SWATH", "Sample level-2 swath with 2-D latitude and longitude", Reason.NO_XY_DIMENSIONS,
        files.netcdf4_swath, processing_level="2",
    ),
    _Sample(
        "DEMO_OZONE_HDFEOS5", "Sample HDF-EOS5 grid without CF coordinates", Reason.NO_XY_DIMENSIONS,
        files.hdfeos5_grid, extension="he5", formats=("HDF-EOS5",),
    ),
    _Sample(
        "DEMO_PM25_TABLE", "Sample county PM2.5 table (CSV text)", Reason.UNSUPPORTED_FORMAT,
        files.text_file, extension="txt", formats=("ASCII",), granules=2,
    ),
    _Sample(
        "DEMO_ZIPPED_GRID", "Sample netCDF-4 grid shipped in a ZIP archive", Reason.UNSUPPORTED_FORMAT,
        files.zip_archive, extension="zip", formats=("ZIP",),
    ),
    _Sample(
        "DEMO_RESTRICTED_GRID", "Sample grid on a host that wants an Earthdata token", Reason.FORBIDDEN,
        files.netcdf4_grid, provider=CLOUD_PROVIDER, protected=True,
    ),
    _Sample(
        "DEMO_NO_GRANULES", "Sample collection whose granules are no longer listed", Reason.NO_GRANULE_FOUND,
        None,
    ),
)


@dataclass(frozen=True)
class SampleCatalog:
    """What ``build_sample`` made: the records CMR serves and the files the data host serves.

    Granule data links are paths on the data host (``/demo-public/DEMO_SST_GRID/….nc``);
    ``serve_sample`` joins them with the data server's URL, which is known only once it runs.
    """

    directory: Path
    collections: list[Item]  # UMM-C search items
    granules: dict[str, list[Item]]  # collection concept id -> UMM-G search items
    files: dict[str, Path]  # URL path on the data host -> file on disk
    protected: list[str]  # URL path prefixes that answer 401 without the (unknown) token
    expected: dict[str, str]  # collection concept id -> COMPATIBLE or a Reason value


@dataclass(frozen=True)
class SampleServers:
    """The running sample: pass ``cmr_url`` as the CMR root (``--cmr-url``, ``CMR_URL``)."""

    cmr_url: str
    data_url: str


def build_sample(directory: Path) -> SampleCatalog:
    """Write the sample's files under ``directory/<bucket>/<short name>/`` and make its records.

    Deterministic and quick (well under a second's worth of writing per file); an existing
    sample in ``directory`` is overwritten.
    """
    directory = Path(directory)
    collections: list[Item] = []
    granules: dict[str, list[Item]] = {}
    served: dict[str, Path] = {}
    protected: set[str] = set()
    expected: dict[str, str] = {}
    for number, sample in enumerate(_SAMPLES, start=1):
        concept_id = f"C{9_000_000 + number}-{sample.provider}"
        bucket = f"{sample.provider.lower().replace('_', '-')}-{'protected' if sample.protected else 'public'}"
        if sample.protected:
            protected.add(f"/{bucket}/")
        items = []
        for index in range(sample.granules if sample.make is not None else 0):
            day = FIRST_DAY + timedelta(days=index)
            name = f"{sample.short_name}_{day:%Y%m%d}.{sample.extension}"
            url_path = f"/{bucket}/{sample.short_name}/{name}"
            served[url_path] = _write(directory / url_path.lstrip("/"), sample.make)
            items.append(
                make_granule(
                    f"G{9_000_000 + 100 * number + index + 1}-{sample.provider}",
                    concept_id,
                    cloud_links(url_path) if sample.direct_links else [(url_path, "GET DATA")],
                    (f"{day:%Y-%m-%d}T00:00:00Z", f"{day:%Y-%m-%d}T23:59:59Z"),
                    short_name=sample.short_name,
                    sizes={name: served[url_path].stat().st_size},
                )
            )
        collections.append(
            make_collection(
                concept_id,
                sample.short_name,
                provider=sample.provider,
                formats=sample.formats,
                # No count for the collection without granules: its record still passes the
                # survey's has_granules filter, as records do whose granules were removed since.
                granule_count=len(items) or None,
                processing_level=sample.processing_level,
                cloud_hosted=sample.provider == CLOUD_PROVIDER,
                entry_title=sample.title,
            )
        )
        granules[concept_id] = items
        expected[concept_id] = str(sample.expected)
    return SampleCatalog(directory, collections, granules, served, sorted(protected), expected)


@contextmanager
def serve_sample(catalog: SampleCatalog) -> Iterator[SampleServers]:
    """Serve ``catalog`` on 127.0.0.1 (free ports) until the ``with`` block ends.

    The protected paths want a random bearer token that nobody is given, so they answer 401
    whatever credentials the caller has. CMR lists every provider of the sample as an EOSDIS
    member (FakeCMR's default), so a survey of EOSDIS providers includes them all; it ignores
    query parameters it does not implement (``strict=False``).
    """
    data = DataServer()
    for path, file in catalog.files.items():
        data.add(path, file)
    token = secrets.token_urlsafe(24)
    for prefix in catalog.protected:
        data.require_bearer(prefix, token)
    with data:
        granules = {concept_id: [_linked(item, data) for item in items] for concept_id, items in catalog.granules.items()}
        with FakeCMR(catalog.collections, granules, strict=False) as cmr:
            yield SampleServers(cmr_url=cmr.url, data_url=data.url)


def outcome(result: CheckResult) -> str:
    """A check result in the terms of ``SampleCatalog.expected``."""
    if result.tiling_compatible:
        return COMPATIBLE
    return result.incompatible_reason.value if result.incompatible_reason else "unknown"


def _write(path: Path, make: Make | None) -> Path:
    """Write one granule's file at ``path`` with the sample's generator."""
    if make is None:
        raise ValueError(f"no generator for {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return make(path.parent, path.name)


def _linked(granule: Item, data: DataServer) -> Item:
    """A copy of ``granule`` whose path-only links point at the running data server."""
    granule = copy.deepcopy(granule)
    for related in granule["umm"].get("RelatedUrls", []):
        if related["URL"].startswith("/"):
            related["URL"] = data.localize(related["URL"])
    return granule
