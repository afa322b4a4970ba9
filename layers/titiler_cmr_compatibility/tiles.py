"""Rendering tile 0/0/0 with titiler-cmr's engines, and the titiler-cmr 1.x URL of that tile."""

from __future__ import annotations

import io
import math
import warnings
from functools import cache
from urllib.parse import urlencode

import h5netcdf
import numpy as np
import rasterio
import rasterio.transform
import xarray as xr
from rasterio.io import MemoryFile
from rio_tiler.io import Reader as RasterioReader
from rio_tiler.models import ImageData
from titiler.xarray.io import Reader as XarrayReader

from .formats import Backend
from .variables import Candidate

TILE = (0, 0, 0)  # x, y, z: the whole world, the tile every compatible collection must render
# At zoom 0 a 256-pixel tile never needs more than this many source pixels per axis; reading
# with a stride keeps a 7,200 × 14,400 grid from being loaded whole (rio-tiler loads the
# clipped array at native resolution before warping it).
MAX_SOURCE_PIXELS = 2048
# GDAL sizes its block cache at 5% of the machine's RAM (1.2 GB on a 24 GB host) the first time
# it is used: a check's memory must not depend on the machine it runs on. 64 MB holds every
# block a zoom-0 tile reads.
GDAL_CACHE_MB = 64
GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_CACHEMAX": GDAL_CACHE_MB * 2**20}  # bytes, to rasterio
# What tile 0/0/0 of one variable may make HDF5 decompress. Every chunk a strided read touches is
# inflated whole: a 10^6 x 10^6 variable in small chunks would mean terabytes from a 400 KB file.
# Real products stay far below (the largest fixture needs ~60 MB).
MAX_CHUNK_BYTES_READ = 1024**3
MAX_CHUNKS_READ = 200_000


def render_png(image: ImageData) -> bytes:
    """Encode a tile as titiler would, stretching non-byte data over its own valid range."""
    if image.array.dtype != np.uint8:
        valid = image.array.compressed() if np.ma.isMaskedArray(image.array) else image.array.ravel()
        valid = valid[np.isfinite(valid)] if valid.size else valid
        if valid.size:
            low, high = float(valid.min()), float(valid.max())
            image = image.rescale(in_range=((low, high if high > low else low + 1),))
        else:
            image.array = image.array.astype(np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return image.render(img_format="PNG")


class TileFailure(Exception):
    """The file opened but its tile did not render; `bands` says what the file holds."""

    def __init__(self, cause: BaseException, bands: list[str] | None = None):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.bands = bands


def render_rasterio(opener, name: str) -> tuple[bytes, list[str]]:
    """rio-tiler's Reader on a dataset opened through our ranged reader (one open, no sidecar
    probes). Returns the PNG and the band names; open errors propagate, tile errors are a
    `TileFailure`."""
    with rasterio.Env(**GDAL_OPTIONS):
        with rasterio.open(name, opener=opener) as dataset:
            bands = [desc or f"b{index}" for index, desc in enumerate(dataset.descriptions, start=1)]
            try:
                with RasterioReader(None, dataset=dataset) as reader:
                    x, y, z = TILE
                    return render_png(reader.tile(x, y, z)), bands
            except Exception as error:
                raise TileFailure(error, bands) from error


def prepare_variable(ds: xr.Dataset, candidate: Candidate) -> tuple[xr.Dataset, list[str]]:
    """What titiler-cmr's reader does before tiling (squeeze size-1 dims), plus what a tile
    request would say with `sel` (the first index of every extra dim), plus a stride that
    bounds memory. Returns the one-variable dataset and the `sel` selectors used. A variable
    whose chunks would make the read too large is a `TileFailure` before anything is read."""
    da = ds[candidate.name]
    squeeze = [d for d in da.dims if da.sizes[d] == 1]
    if squeeze:
        da = da.squeeze(squeeze, drop=True)
    selectors: list[str] = []
    for dim in candidate.extra_dims:
        if dim in da.coords:
            selectors.append(f"{dim}={_label(ds, dim)}")
        da = da.isel({dim: 0}, drop=True)
    strides = {
        dim: max(1, math.ceil(da.sizes[dim] / MAX_SOURCE_PIXELS)) for dim in (candidate.x_dim, candidate.y_dim)
    }
    _judge_read(ds[candidate.name], strides)
    if any(step > 1 for step in strides.values()):
        da = da.isel({dim: slice(None, None, step) for dim, step in strides.items()})
    return da.to_dataset(name=candidate.name), selectors


def _judge_read(variable: xr.DataArray, strides: dict[str, int]) -> None:
    """Refuse a read whose chunk layout makes it unboundedly large, from the declared sizes alone."""
    chunks = variable.encoding.get("chunksizes")
    if not chunks or variable.encoding.get("contiguous"):
        return
    count = 1
    for dim, size, chunk in zip(variable.dims, variable.shape, chunks, strict=False):
        step = strides.get(dim)
        # Along X and Y every stride-th index is read; along any other dim, one index.
        count *= min(math.ceil(size / chunk), math.ceil(size / step)) if step else 1
    chunk_bytes = math.prod(chunks) * variable.dtype.itemsize
    if count > MAX_CHUNKS_READ or count * chunk_bytes > MAX_CHUNK_BYTES_READ:
        shape = " x ".join(f"{size:,}" for size in variable.shape)
        layout = " x ".join(str(chunk) for chunk in chunks)
        raise TileFailure(ValueError(
            f"variable {variable.name} ({shape} {variable.dtype} in {layout} chunks) is too large to tile: "
            f"tile 0/0/0 would decompress {count:,} chunks ({count * chunk_bytes / 1024**3:,.1f} GiB)"
        ))


def _label(ds: xr.Dataset, dim: str) -> str:
    """The first value of a coordinate as a tile request would write it (times in ISO 8601)."""
    coordinate = ds[dim]
    try:
        decoded = xr.decode_cf(coordinate.to_dataset(name="_"))["_"]
        value = decoded.values[0]
    except Exception:  # undecodable units: the raw number still selects
        value = coordinate.values[0]
    if isinstance(value, np.datetime64):
        return np.datetime_as_string(value, unit="s") + "Z"
    return str(value.item() if hasattr(value, "item") else value)


def render_xarray(url: str, prepared: xr.Dataset, variable: str) -> bytes:
    """titiler-xarray's Reader, handed the dataset we already opened instead of reopening it.

    The (strided, so bounded) data are read first: rioxarray deep-copies the array, and a lazy
    array still tied to the open file cannot be copied ("cannot pickle 'module' object");
    titiler-cmr's own arrays are dask arrays, which can."""
    try:
        prepared = prepared.load()
        with XarrayReader(url, variable=variable, opener=lambda *_args, **_kwargs: prepared) as reader:
            x, y, z = TILE
            return render_png(reader.tile(x, y, z))
    except Exception as error:
        raise TileFailure(error) from error


def tiles_url(
    endpoint: str,
    backend: Backend,
    collection_concept_id: str,
    temporal: tuple[str | None, str | None],
    variable: str | None = None,
    group: str | None = None,
    selectors: list[str] | None = None,
) -> str:
    """titiler-cmr 1.x: the backend is in the path; the granule is found again by its time."""
    x, y, z = TILE
    params: list[tuple[str, str]] = [("collection_concept_id", collection_concept_id)]
    start, end = temporal
    if start:
        params.append(("temporal", f"{start}/{end or start}"))
    if variable:
        params.append(("variables", variable))
    if group and group != "/":
        params.append(("group", group))
    params += [("sel", selector) for selector in selectors or ()]
    query = urlencode(params, safe="/:,")
    return f"{endpoint}/{backend.value}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{query}"


@cache
def warm_engines() -> None:
    """Render a tiny netCDF-4 and a tiny GeoTIFF once, in memory, in this process.

    Each check runs in a forked child (sandbox.py), and what a child initialises dies with it:
    without this, every check would pay again for the engines' first use (the PROJ database,
    GDAL's drivers, xarray's backends, the tile matrix sets), ~0.8 s of a 0.4 s check.
    """
    lat = np.linspace(-80, 80, 8)
    lon = np.linspace(-170, 170, 16)
    values = np.outer(np.cos(np.radians(lat)), np.ones(lon.size)).astype("float32")
    buffer = io.BytesIO()
    with h5netcdf.File(buffer, "w") as file:
        file.dimensions = {"lat": lat.size, "lon": lon.size}
        file.create_variable("lat", ("lat",), data=lat).attrs.update(units="degrees_north", standard_name="latitude")
        file.create_variable("lon", ("lon",), data=lon).attrs.update(units="degrees_east", standard_name="longitude")
        file.create_variable("v", ("lat", "lon"), data=values)
    profile = {"driver": "GTiff", "width": 16, "height": 8, "count": 1, "dtype": "float32", "crs": "EPSG:4326",
               "transform": rasterio.transform.from_bounds(-180, -90, 180, 90, 16, 8)}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rio-tiler's note on latitudes near the poles
        with h5netcdf.File(buffer, "r") as file:
            store = xr.backends.H5NetCDFStore(file, lock=False)
            dataset = xr.open_dataset(store, decode_times=False, decode_coords="all")
            render_xarray("memory://warm.nc", dataset[["v"]], "v")
        with rasterio.Env(**GDAL_OPTIONS), MemoryFile() as memory:
            with memory.open(**profile) as dataset:
                dataset.write(values, 1)
            with memory.open() as dataset, RasterioReader(None, dataset=dataset) as reader:
                render_png(reader.tile(*TILE))
