"""The check, end to end, on real records and real files, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
import tracemalloc

import h5netcdf
import h5py
import numpy as np
import pytest
import rasterio

from titiler_cmr_compatibility.auth import EarthdataAuth
from titiler_cmr_compatibility.check import check_collection
from titiler_cmr_compatibility.formats import Backend
from titiler_cmr_compatibility.result import Reason
from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.sample.cmr import cloud_links
from titiler_cmr_compatibility.tiles import THUMBNAIL_BUDGET
from titiler_cmr_compatibility.umm import NO_DIRECT_LINK, NOT_FIRST_FILE, SHARED_NAME
from tests.support.images import png_size, thumbnail_png
from tests.support.world import fixture_data_dir

GAMSSA = "C2036881735-POCLOUD"
HLS = "C2021957657-LPCLOUD"
HAQES = "C2623694361-GES_DISC"
HLS_GRANULE_WITH_FMASK = "G3263856929-LPCLOUD"
FMASK = (
    "lp-prod-protected/HLSL30.020/HLS.L30.T15UWP.2024283T165135.v2.0/"
    "HLS.L30.T15UWP.2024283T165135.v2.0.Fmask.tif"
)


def opens_of(world, path: str | None = None) -> int:
    """Range reads from byte 0 (of `path`, or of any file): each is one opening of a data file."""
    return sum(
        1 for r in world.data.requests
        if r.headers.get("Range", "").startswith("bytes=0-") and (path is None or r.path == path)
    )  # fmt: skip


def check(world, concept_id, **kwargs):
    settings = world.settings(**kwargs.pop("settings", {}))
    return check_collection(concept_id, settings=settings, **kwargs)


# Real NASA records and granules


def test_gamssa_netcdf_is_compatible_with_a_grid_variable(world):
    """The predecessor's false negative: it picked the scalar `crs`."""
    record = world.add_fixture_collection(GAMSSA)
    result = check(world, GAMSSA, collection=record)
    assert result.tiling_compatible, result.error_message
    assert result.backend is Backend.XARRAY and result.container == "hdf5"
    assert result.variable in {"analysed_sst", "analysis_error", "sea_ice_fraction"}
    assert "crs" not in (result.variable or "")
    assert set(result.data_variables) >= {"analysed_sst", "sea_ice_fraction"}
    assert result.concept_id == "G3264876018-POCLOUD"
    assert result.tiles_url.startswith("https://titiler.example.org/xarray/tiles/WebMercatorQuad/0/0/0.png?")
    assert f"collection_concept_id={GAMSSA}" in result.tiles_url
    assert f"variables={result.variable}" in result.tiles_url and "temporal=2024-10-11" in result.tiles_url
    assert result.cmr_requests == 1  # record given; one granule, so the count query returns it
    assert result.bytes_read < result.file_size == 1_036_053
    served = world.data.stats().bytes_sent
    assert served == result.bytes_read  # counted bytes are the bytes the server sent
    assert opens_of(world) == 1  # variables, groups and the tile all reused one open file


def test_fetches_the_record_when_not_given(world):
    world.add_fixture_collection(GAMSSA)
    result = check(world, GAMSSA)
    assert result.tiling_compatible
    assert result.cmr_requests == 2  # the record, then the granule
    assert result.collection_short_name_and_version == "GAMSSA_28km-ABOM-L4-GLOB-v01.1.0"
    assert result.data_center == "PODAAC" and result.format == "netCDF-4"


def test_hls_cog_is_compatible_reading_a_small_part(world):
    """15 band links per granule and only Fmask exists: the missing ones (404) are skipped. The
    link names the band file for titiler-cmr (`assets_regex`, `assets`); Fmask is bytes, so no
    `rescale`."""
    record = world.add_fixture_collection(HLS)
    result = check(world, HLS, collection=record, granule_id=HLS_GRANULE_WITH_FMASK)
    assert result.tiling_compatible, result.error_message
    assert result.backend is Backend.RASTERIO and result.container == "tiff"
    assert result.data_url.endswith("Fmask.tif")
    assert result.format == "Cloud Optimized GeoTIFF (COG)"
    assert result.tiles_url.startswith("https://titiler.example.org/rasterio/tiles/WebMercatorQuad/0/0/0.png?")
    assert result.tiles_url.endswith("&assets_regex=%5B%5E._-%5D%2B%24&assets=Fmask&colormap_name=viridis")  # [^._-]+$
    assert result.assets == ["Fmask"] and result.rescale is None
    assert result.bytes_read <= 0.10 * result.file_size
    assert world.data.stats("/" + FMASK).bytes_sent == result.bytes_read
    assert opens_of(world, "/" + FMASK) == 1  # GDAL read through the one ranged reader, no sidecar probes


def test_haqes_text_granules_are_unsupported(world, tmp_path):
    record = world.add_fixture_collection(HAQES)
    for granule in world.cmr.granules[HAQES]:
        for related in granule["umm"]["RelatedUrls"]:
            if related["Type"] == "GET DATA":
                path = "/" + related["URL"].split("/", 3)[3]
                world.data.add(path, files.text_file(tmp_path))
    result = check(world, HAQES, collection=record)
    assert result.incompatible_reason is Reason.UNSUPPORTED_FORMAT
    assert result.container == "text" and result.extension == "txt"
    assert "text" in result.error_message and "ASCII" in result.error_message
    assert result.tiles_url is None and not result.tiling_compatible


# Variable and group choice


def test_scalar_listed_first_is_not_chosen(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_grid(tmp_path, first_var_scalar=True)))
    assert result.tiling_compatible and result.variable == "sst"
    assert "crs" not in result.data_variables  # CF grid mappings are coordinates, as titiler-cmr decodes them


def test_bounds_listed_first_are_not_chosen(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_grid(tmp_path, with_bounds=True)))
    assert result.tiling_compatible and result.variable == "sst"


def test_packed_variable_renders(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_grid(tmp_path, packed=True)))
    assert result.tiling_compatible, result.error_message


def test_several_time_steps_select_the_first(world, tmp_path):
    """The link names the first time step, in the ISO form titiler-cmr's `sel` accepts."""
    result = check(world, world.publish(files.netcdf4_grid(tmp_path, time=3)))
    assert result.tiling_compatible, result.error_message
    assert "sel=time%3D2024-10-11T12:00:00Z" in result.tiles_url  # files.FIRST_TIME
    assert result.sel == ["time=2024-10-11T12:00:00Z"]


def test_a_selection_without_a_granule_time_is_refused_as_titiler_cmr_refuses_it(world, tmp_path):
    """Its /xarray/tiles answers 400 to `sel` without `temporal`; a granule without temporal
    extent gives no `temporal`. One time step needs no `sel` (squeezed), so it still renders."""
    several = world.publish(files.netcdf4_grid(tmp_path, "three.nc", time=3))
    one = world.publish(files.netcdf4_grid(tmp_path, "one.nc", time=1))
    for concept_id in (several, one):
        world.cmr.granules[concept_id][0]["umm"].pop("TemporalExtent")
    refused = check(world, several)
    assert refused.incompatible_reason is Reason.TILE_GENERATION_FAILED and "'temporal' parameter" in refused.error_message
    assert refused.titiler_cmr_blocker == "sel without temporal"
    assert check(world, one).tiling_compatible


def test_when_the_best_variable_fails_at_the_tile_the_next_is_tried(world, tmp_path):
    """`broken` ranks first (science, larger grid) but its "lat" holds 100..400; titiler-cmr
    1.1.2 fails on it (InvalidGeographicBounds) and renders `good`, and so does the check."""
    path = tmp_path / "fallback.nc"
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"lat": 60, "lon": 120, "latitude": 30, "longitude": 60}
        for name, low, high, size in (("lat", 100, 400, 60), ("lon", -170, 170, 120),
                                      ("latitude", -80, 80, 30), ("longitude", -170, 170, 60)):  # fmt: skip
            root.create_variable(name, (name,), "float32", data=np.linspace(low, high, size, dtype="float32"))
        for name, dims, shape in (("broken", ("lat", "lon"), (60, 120)), ("good", ("latitude", "longitude"), (30, 60))):
            variable = root.create_variable(name, dims, "float32", data=np.ones(shape, "float32"))
            variable.attrs["standard_name"] = "sea_surface_temperature"
    result = check(world, world.publish(path))
    assert result.tiling_compatible and result.variable == "good", result.error_message
    assert result.data_variables[0] == "broken"


def test_data_only_in_a_group_is_tiled_with_that_group(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_grid(tmp_path, group="g")))
    assert result.tiling_compatible, result.error_message
    assert result.group == "/g" and result.groups == ["/g"]
    assert "group=/g" in result.tiles_url


def test_data_carrying_grid_mapping_name_is_tiled_not_put_aside(world, tmp_path):
    """Some Harmony outputs copy grid_mapping_name onto data arrays; titiler-cmr 1.1.2 renders
    such a grid (asked directly with its own reader), so the check does too."""
    path = files.netcdf4_grid(tmp_path, time=0)
    with h5py.File(path, "r+") as raw:
        raw["sst"].attrs["grid_mapping_name"] = "latitude_longitude"
    result = check(world, world.publish(path))
    assert result.tiling_compatible and result.variable == "sst", result.error_message


def test_a_time_offset_variable_decoded_to_datetimes_is_never_chosen(world, tmp_path):
    """titiler-cmr decodes `sst_dtime` ("hours since ...") to datetime64 and cannot render it."""
    result = check(world, world.publish(files.time_offset_grid(tmp_path)))
    assert result.tiling_compatible, result.error_message
    assert result.variable in ("wind", "vapor", "rain")
    assert "sst_dtime" in result.data_variables


@pytest.mark.parametrize(("calendar", "reason"), [("julian", Reason.DECODE_ERROR), ("standard", None)])
def test_an_imerg_like_group_grid_is_judged_as_titiler_cmr_decodes_it(world, tmp_path, calendar, reason):
    """A julian time cannot be decoded without cftime (titiler-cmr: "unable to decode time
    units"); with a standard calendar the (time, lon, lat) grid in /Grid renders."""
    result = check(world, world.publish(files.group_grid_lon_lat(tmp_path, calendar=calendar)))
    assert result.incompatible_reason is reason, result.error_message
    if reason is None:
        assert (result.variable, result.group) == ("precipitation", "/Grid")
    else:
        assert "julian" in result.error_message


def test_the_spatial_group_wins_among_several(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_mixed_groups(tmp_path)))
    assert result.tiling_compatible, result.error_message
    assert result.group == "/science/grids" and result.variable == "chlor_a"
    assert set(result.groups) == {"/science", "/science/grids", "/meta"}
    assert opens_of(world) == 1  # every group was read from the same open file


def test_swath_has_no_xy_dimensions(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_swath(tmp_path)))
    assert result.incompatible_reason is Reason.NO_XY_DIMENSIONS
    assert "swath" in result.error_message


def test_hdfeos5_grid_has_no_xy_dimensions_titiler_knows(world, tmp_path):
    result = check(world, world.publish(files.hdfeos5_grid(tmp_path), formats=("HDF-EOS5",)))
    assert result.incompatible_reason is Reason.NO_XY_DIMENSIONS, result.error_message
    assert result.groups and any("Data Fields" in group for group in result.groups)


def test_large_grid_is_read_with_a_stride(world, tmp_path):
    """2,400 × 4,800 float32 (46 MB) renders without holding the whole grid."""
    path = files.large_grid(tmp_path, lat=2400, lon=4800, chunks=(600, 1200))
    concept_id = world.publish(path)
    tracemalloc.start()
    try:
        result = check(world, concept_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.tiling_compatible, result.error_message
    assert peak < 2400 * 4800 * 4, peak


# Formats: the bytes decide


@pytest.mark.parametrize(
    ("make", "container", "formats"),
    [
        (files.netcdf3_grid, "netcdf3", ("netCDF-3",)),
        (files.hdf4_signature, "hdf4", ("HDF4",)),
        (files.zip_archive, "zip", ("ZIP",)),
        (files.gzip_file, "gzip", ("netCDF-4",)),
        (files.text_file, "text", ("ASCII",)),
    ],
)
def test_unsupported_containers(world, tmp_path, make, container, formats):
    result = check(world, world.publish(make(tmp_path), formats=formats))
    assert result.incompatible_reason is Reason.UNSUPPORTED_FORMAT
    assert result.container == container
    assert result.data_requests == 1  # the sniff read decided
    assert result.tile_png is None and result.thumbnail is None


def test_metadata_mismatch_is_explained(world, tmp_path):
    result = check(world, world.publish(files.text_file(tmp_path), formats=("HDF5",)))
    assert result.incompatible_reason is Reason.UNSUPPORTED_FORMAT
    assert "metadata says HDF5, the bytes are text" in result.error_message


def test_wrong_metadata_does_not_reject_a_good_file(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_grid(tmp_path), formats=("ASCII",)))
    assert result.tiling_compatible and result.format == "ASCII" and result.container == "hdf5"


@pytest.mark.parametrize("spelling", ["GeoTIFF", "TIFF"])
def test_plain_striped_geotiff_is_tried_not_rejected(world, tmp_path, spelling):
    result = check(world, world.publish(files.striped_geotiff(tmp_path), formats=(spelling,)))
    assert result.tiling_compatible, result.error_message
    assert result.backend is Backend.RASTERIO


@pytest.mark.parametrize(("name", "renders"), [("cog.tif", True), ("cog.TIF", False), ("cog.tiff", False), ("cog", False)])
def test_titiler_cmrs_rasterio_reader_takes_only_its_extensions(world, tmp_path, name, renders):
    """It picks a media type by the link's extension (.tif, .nc, .h5, case kept); the result says
    when its engines would render a file it refuses for that."""
    result = check(world, world.publish(files.cog(tmp_path, name=name, size=256), formats=("GeoTIFF",)))
    assert result.tiling_compatible is renders, result.error_message
    if not renders:
        assert result.incompatible_reason is Reason.UNSUPPORTED_FORMAT
        assert result.tile_png is None and result.thumbnail is None  # rendered, but no link shows it
        assert "rio-tiler renders this file" in result.error_message
        assert result.titiler_cmr_blocker == (f"the extension {name[3:]!r}" if "." in name else "links without an extension")


# How titiler-cmr takes a granule's files. Each expectation is what titiler-cmr 1.1.2's own app
# answered to the check's tiles URL on the same records and files served the same way (its
# `TestClient` against this fake CMR and data host, obstore allowed plain http on loopback), and
# what its own `Granule.get_assets` and readers did with the records (bench/titiler_cmr_assets.py).


def serve(world, path, folder: str, name: str | None = None) -> str:
    """`path` on the data host as /test-protected/<folder>/<name>; its https URL."""
    url_path = f"/test-protected/{folder}/{name or path.name}"
    world.data.add(url_path, path)
    return world.data.url_for(url_path)


def unnamed(world, concept_id: str) -> str:
    """DataGranule names no file ("Not provided", as most DAACs write): titiler-cmr takes every link."""
    world.cmr.granules[concept_id][0]["umm"]["DataGranule"]["ArchiveAndDistributionInformation"] = [{"Name": "Not provided"}]
    return concept_id


@pytest.mark.parametrize(("make", "formats", "renders"), [
    (files.netcdf4_grid, ("netCDF-4",), "titiler-xarray renders sst of this file"),
    (lambda d: files.cog(d, size=256), ("GeoTIFF",), "rio-tiler renders this file"),
])  # fmt: skip
def test_a_granule_with_https_links_only_is_refused_after_its_file_renders(world, tmp_path, make, formats, renders):
    """As on-premises hosts give them. titiler-cmr 1.1.2 answered 200 with a PNG to the granule
    linked as World.publish links it (https and s3), and 500 to the same granule with its https
    link only: "2 validation errors for Asset: direct_href, ext: Field required" (Granule.get_assets
    builds every file from both links). The check reads the same bytes either way: it renders the
    file first, so the message says titiler-cmr would tile it."""
    path = make(tmp_path)
    linked = check(world, world.publish(path, formats=formats))
    assert linked.tiling_compatible and linked.titiler_cmr_blocker is None, linked.error_message
    https_only = check(world, world.publish(None, urls=[(serve(world, path, "onprem"), "GET DATA")], formats=formats))
    assert https_only.incompatible_reason is Reason.FAILED_TO_EXTRACT_URL
    assert https_only.titiler_cmr_blocker == NO_DIRECT_LINK == "files without a direct-access (s3) link"
    assert "no GET DATA VIA DIRECT ACCESS (s3) link" in https_only.error_message
    assert f"{renders}, so titiler-cmr would tile it if it accepted {NO_DIRECT_LINK}" in https_only.error_message
    assert https_only.tiles_url is None and https_only.tile_png is None and https_only.thumbnail is None
    assert https_only.rescale is None and https_only.backend is linked.backend
    assert (https_only.bytes_read, https_only.data_requests) == (linked.bytes_read, linked.data_requests)


def test_a_checksum_with_an_https_link_only_blocks_the_granule(world, tmp_path):
    """ORNL's Daymet granules: the .nc has both links, its .nc.sha256 only an https one, and
    DataGranule names no file. titiler-cmr 1.1.2's get_assets raised on all 10 real ones (Asset
    "daymet_v4_daily_pr_dayl_1950.nc" lacks direct_href and ext), so it serves none of them."""
    grid = files.netcdf4_grid(tmp_path)
    checksum = tmp_path / "grid.nc.sha256"
    checksum.write_text("0" * 64 + "\n")
    urls = cloud_links(serve(world, grid, "ornl")) + [(serve(world, checksum, "ornl"), "GET DATA")]
    concept_id = unnamed(world, world.publish(None, urls=urls))
    result = check(world, concept_id)
    assert result.incompatible_reason is Reason.FAILED_TO_EXTRACT_URL and result.titiler_cmr_blocker == NO_DIRECT_LINK
    assert result.data_url.endswith("/grid.nc") and "Asset 'grid.nc' lacks direct_href, ext" in result.error_message


def test_xarray_reads_the_granules_first_file_and_so_does_the_check(world, tmp_path):
    """titiler-cmr's /xarray opens the granule's asset "0", its first file, not the check's best.
    A grid listed first (other.h5, before the collection's netCDF): its app answered 200 with
    `variables=chlor_a`, the variable of that first file, so the check judges that file."""
    first = files.netcdf4_grid(tmp_path, "other.h5", ("chlor_a",))
    urls = cloud_links(serve(world, first, "first")) + cloud_links(serve(world, files.netcdf4_grid(tmp_path), "first"))
    result = check(world, world.publish(None, urls=urls))
    assert result.tiling_compatible, result.error_message
    assert result.data_url.endswith("/other.h5") and result.variable == "chlor_a" and "variables=chlor_a" in result.tiles_url
    assert result.file_size == (tmp_path / "other.h5").stat().st_size


@pytest.mark.parametrize(("first", "blocker", "reason_of_first"), [
    ("readme.txt", NOT_FIRST_FILE, "unsupported_format"),
    ("swath.h5", NOT_FIRST_FILE, "no_xy_dimensions"),
])  # fmt: skip
def test_when_the_first_file_does_not_render_the_granule_is_refused(world, tmp_path, first, blocker, reason_of_first):
    """A text file, or a swath, listed before the grid. titiler-cmr's app answered 500 to the
    check's URL for the grid's variable: "Unable to synchronously open file (file signature not
    found)" (it opened readme.txt) and "No variable named 'sst'" (it opened swath.h5). The grid
    renders, so the check says what titiler-cmr would have to accept."""
    path = files.text_file(tmp_path, first) if first.endswith(".txt") else files.netcdf4_swath(tmp_path, first)
    urls = cloud_links(serve(world, path, "first")) + cloud_links(serve(world, files.netcdf4_grid(tmp_path), "first"))
    result = check(world, world.publish(None, urls=urls))
    assert result.incompatible_reason is Reason.FAILED_TO_EXTRACT_URL and result.titiler_cmr_blocker == blocker
    assert result.data_url.endswith("/grid.nc") and result.variable == "sst" and result.tiles_url is None
    assert f'asset "0", {urls[0][0]}' in result.error_message and f"({reason_of_first}:" in result.error_message
    assert "titiler-xarray renders sst" in result.error_message
    assert opens_of(world) == 2  # the grid (its one open reused for the tile) and the first file


def test_files_of_one_name_leave_titiler_cmr_the_last(world, tmp_path):
    """GRACE/GRACE-FO (C2077042612-POCLOUD, 163 real granules): .nc, .tif and .txt of one name.
    get_assets keys files by name without extension, the later link winning: asset "0" is the
    .txt. titiler-cmr's /xarray answered 500 ("file signature not found"), and on the real
    records its /rasterio finds no asset it takes (MissingAssets)."""
    stem = "GRD-3_2002094-2002120_GRAC_JPLEM_BA01_0600_LND_v04"
    made = {"nc": files.netcdf4_grid(tmp_path), "tif": files.cog(tmp_path, size=256), "txt": files.text_file(tmp_path)}
    urls = [link for extension, path in made.items() for link in cloud_links(serve(world, path, "grace", f"{stem}.{extension}"))]
    result = check(world, world.publish(None, urls=urls))
    assert result.incompatible_reason is Reason.FAILED_TO_EXTRACT_URL and result.titiler_cmr_blocker == SHARED_NAME
    assert result.data_url.endswith(f"{stem}.nc") and f"{stem}.txt, not" in result.error_message


def test_a_checksum_listed_before_a_cog_is_passed_over_by_naming_the_files_asset(world, tmp_path):
    """Without a regex titiler-cmr numbers the assets; its /rasterio default "0" is the checksum,
    which it does not list (.md5), so without `assets` it raises InvalidAssetName. Asked with
    `assets=1` its app answered 200 with a PNG."""
    cog = files.cog(tmp_path, size=256)
    checksum = tmp_path / "cog.tif.md5"
    checksum.write_text("0123456789abcdef  cog.tif\n")
    urls = cloud_links(serve(world, checksum, "md5")) + cloud_links(serve(world, cog, "md5"))
    result = check(world, unnamed(world, world.publish(None, urls=urls, formats=("GeoTIFF",))))
    assert result.tiling_compatible, result.error_message
    assert result.assets == ["1"] and "&assets=1&" in result.tiles_url and "assets_regex" not in result.tiles_url


def test_a_check_in_a_local_projection_renders_within_its_memory_bound(world, tmp_path):
    """Tile 0/0/0 of a small file in an unnamed Transverse Mercator warps the world at the
    file's resolution through GDAL's block cache. Sized by the host's RAM, the cache took the
    check past its memory budget (a wrong tile_generation_failed); bounded, it renders."""
    result = check(world, world.publish(files.scaled_local_projection_tiff(tmp_path), formats=("GeoTIFF",)))
    assert result.tiling_compatible, result.error_message


# The link shows what the check's tile showed


@pytest.mark.parametrize(("make", "backend", "formats"), [(files.ramp_grid, Backend.XARRAY, ("netCDF-4",)),
                                                         (files.ramp_geotiff, Backend.RASTERIO, ("GeoTIFF",))])  # fmt: skip
def test_a_float_grid_links_its_value_range_in_a_colormap(world, tmp_path, make, backend, formats):
    """Float data: `rescale` is the valid range tile 0/0/0 holds (here the file's whole range, a
    west-east ramp), and one band is painted with a colormap. The check keeps the tile it
    rendered (256 x 256) and its 64 x 64 thumbnail."""
    path = make(tmp_path)
    if backend is Backend.XARRAY:
        with h5py.File(path, "r") as raw:
            low, high = float(raw["ramp"][...].min()), float(raw["ramp"][...].max())
    else:
        with rasterio.open(path) as raw:
            low, high = float(raw.read().min()), float(raw.read().max())
    assert (low, high) == (-3.25, 41.5)
    result = check(world, world.publish(path, formats=formats))
    assert result.tiling_compatible and result.backend is backend, result.error_message
    assert result.rescale == "-3.25,41.5"
    assert result.tiles_url.endswith("&rescale=-3.25,41.5&colormap_name=viridis")
    assert png_size(result.tile_png) == (256, 256)
    assert png_size(thumbnail_png(result.thumbnail)) == (64, 64) and len(result.thumbnail) <= THUMBNAIL_BUDGET
    assert "tile_png" not in result.to_record() and result.to_record()["thumbnail"] == result.thumbnail


def test_several_float_bands_get_a_range_and_no_colormap(world, tmp_path):
    result = check(world, world.publish(files.ramp_geotiff(tmp_path, bands=3), formats=("GeoTIFF",)))
    assert result.tiling_compatible, result.error_message
    assert result.tiles_url.endswith("&rescale=-3.25,41.5") and "colormap_name" not in result.tiles_url


def test_byte_data_gets_no_rescale(world, tmp_path):
    result = check(world, world.publish(files.cog(tmp_path, size=256), formats=("GeoTIFF",)))
    assert result.tiling_compatible, result.error_message
    assert result.rescale is None and "rescale" not in result.tiles_url
    assert result.tiles_url.endswith("&colormap_name=viridis") and result.assets is None  # one file
    assert png_size(result.tile_png) == (256, 256)


def test_generated_cog_reads_at_most_a_tenth(world, tmp_path):
    result = check(world, world.publish(files.cog(tmp_path)))
    assert result.tiling_compatible, result.error_message
    assert result.bytes_read <= 0.10 * result.file_size


def test_truncated_netcdf_cannot_be_opened(world, tmp_path):
    source = files.netcdf4_grid(tmp_path, lat=180, lon=360)
    result = check(world, world.publish(files.truncated(tmp_path, source, keep_bytes=4096)))
    assert result.incompatible_reason is Reason.CANT_OPEN_FILE
    assert result.container == "hdf5"


# Access: credentials, refusals, hangs


def test_bearer_token_is_sent_and_never_shown(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.data.require_bearer("/test-protected/", "tok-123456")
    refused = check(world, concept_id)
    assert refused.incompatible_reason is Reason.FORBIDDEN
    allowed = check(world, concept_id, settings={"earthdata_token": "tok-123456"})
    assert allowed.tiling_compatible, allowed.error_message
    assert "Bearer tok-123456" in world.data.auth_headers
    wrong = check(world, concept_id, settings={"earthdata_token": "wrong-token-999"})
    assert wrong.incompatible_reason is Reason.FORBIDDEN
    for result in (refused, allowed, wrong):
        text = json.dumps(result.to_record())
        assert "tok-123456" not in text and "wrong-token-999" not in text


def test_403_is_forbidden(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path), name="denied.nc")
    world.data.deny(world.data.url_for(f"/test-protected/TEST_{concept_id[1:5]}/denied.nc")[len(world.data.url):])
    assert check(world, concept_id).incompatible_reason is Reason.FORBIDDEN


def test_login_page_redirect_is_forbidden(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.data.login_redirect("/test-protected/")
    result = check(world, concept_id)
    assert result.incompatible_reason is Reason.FORBIDDEN
    assert "login" in result.error_message


def test_a_hanging_host_ends_as_timeout_in_time(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.data.hang("/test-protected/")
    started = time.monotonic()
    result = check(world, concept_id, timeout=3)
    elapsed = time.monotonic() - started
    assert result.incompatible_reason is Reason.TIMEOUT
    assert elapsed < 3 + 10
    assert result.duration_s < 3 + 10


def test_all_data_files_missing(world):
    concept_id = world.publish(None, name="missing.nc")
    result = check(world, concept_id)
    assert result.incompatible_reason is Reason.DATA_UNAVAILABLE
    assert "404" in result.error_message


# CMR outcomes


def test_no_granules(world):
    result = check(world, world.publish(None, granule_count=0))
    assert result.incompatible_reason is Reason.NO_GRANULE_FOUND


def test_unknown_collection(world):
    result = check(world, "C999999-NOPE")
    assert result.incompatible_reason is Reason.NO_GRANULE_FOUND
    assert "no collection" in result.error_message


def test_ftp_only_links(world):
    concept_id = world.publish(None, urls=[("ftp://ftp.example.gov/data/granule.nc", "GET DATA")])
    result = check(world, concept_id)
    assert result.incompatible_reason is Reason.FAILED_TO_EXTRACT_URL
    assert "ftp://" in result.error_message


def test_cmr_failing_is_a_result_not_an_exception(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.cmr.fail_next(10, status=503)
    result = check(world, concept_id)
    assert result.incompatible_reason is Reason.CMR_ERROR
    assert "503" in result.error_message


def test_a_malformed_granule_record_is_classified(world, tmp_path):
    concept_id = world.publish(files.netcdf4_grid(tmp_path))
    world.cmr.granules[concept_id][0]["umm"]["RelatedUrls"] = "not a list"
    result = check(world, concept_id)
    assert result.incompatible_reason is Reason.FAILED_TO_EXTRACT_URL
    assert result.error_message


def test_result_carries_versions_and_costs(world, tmp_path):
    result = check(world, world.publish(files.netcdf4_grid(tmp_path)))
    assert {"rasterio", "gdal", "rio-tiler", "titiler-xarray", "h5netcdf", "obstore"} <= set(result.engine_versions)
    assert result.checked_at and result.duration_s > 0
    assert result.data_requests >= 1 and result.cmr_requests == 2  # the record and the granule


# Direct (s3://) access with temporary keys, against moto S3


@pytest.fixture
def s3_world(world):
    from tests.support.aws import moto_server, upload_tree

    with moto_server() as endpoint:
        upload_tree(endpoint, fixture_data_dir())
        yield world, endpoint


def _direct_gamssa(world, token_required: str):
    record = world.add_fixture_collection(GAMSSA)
    endpoint = world.data.localize(record["umm"]["DirectDistributionInformation"]["S3CredentialsAPIEndpoint"])
    record["umm"]["DirectDistributionInformation"]["S3CredentialsAPIEndpoint"] = endpoint
    credentials = world.data.add_s3_credentials("/s3credentials")
    world.data.require_bearer("/s3credentials", token_required)
    return record, credentials


def test_direct_access_reads_s3_with_temporary_keys(s3_world):
    world, endpoint = s3_world
    record, credentials = _direct_gamssa(world, "tok-direct-1")
    settings = {"earthdata_token": "tok-direct-1", "s3_endpoint_url": endpoint}
    result = check(world, GAMSSA, collection=record, access_type="direct", settings=settings)
    assert result.tiling_compatible, result.error_message
    assert result.access_type == "direct" and result.data_url.startswith("s3://podaac-ops-cumulus-protected/")
    assert world.data.count("/s3credentials") == 1
    # The keys come back from the check's process: a second check with the same auth reuses them.
    auth = EarthdataAuth(world.settings(**settings))
    for _ in range(2):
        again = check(world, GAMSSA, collection=record, access_type="direct", settings=settings, auth=auth)
        assert again.tiling_compatible, again.error_message
    assert world.data.count("/s3credentials") == 2
    text = json.dumps(result.to_record())
    for secret in (*credentials.values(), "tok-direct-1"):
        if secret != credentials["expiration"]:
            assert secret not in text


def test_direct_access_without_credentials_is_forbidden(s3_world):
    world, endpoint = s3_world
    record, _ = _direct_gamssa(world, "tok-direct-2")
    result = check(world, GAMSSA, collection=record, access_type="direct", settings={"s3_endpoint_url": endpoint})
    assert result.incompatible_reason is Reason.FORBIDDEN
    assert "credentials" in result.error_message


def test_timeout_works_inside_worker_threads(world, tmp_path):
    """The predecessor's signal.alarm never fired off the main thread; this one must."""
    from concurrent.futures import ThreadPoolExecutor

    hanging = [world.publish(files.netcdf4_grid(tmp_path), name=f"hang{i}.nc") for i in range(2)]
    world.data.hang("/test-protected/")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda concept_id: check(world, concept_id, timeout=2), hanging))
    assert [r.incompatible_reason for r in results] == [Reason.TIMEOUT, Reason.TIMEOUT]
    assert time.monotonic() - started < 2 + 10
