"""Rendering tile 0/0/0 with titiler-cmr's engines, and the titiler-cmr 1.x URL of that tile."""

from __future__ import annotations

import base64
import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlencode

import h5netcdf
import numpy as np
import rasterio
import rasterio.transform
import xarray as xr
from rasterio.enums import ColorInterp
from rasterio.io import MemoryFile
from rio_tiler.colormap import cmap
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


# What a tiles URL asks titiler to paint single-band data with (rio-tiler's colormap names).
COLORMAP = "viridis"


@dataclass(frozen=True)
class Rendered:
    """Tile 0/0/0 as the check rendered it, and how a tiles URL asks titiler for the same picture."""

    png: bytes
    count: int  # bands
    rescale: str | None = None  # titiler's `rescale`: "low,high" the data were stretched over; None for byte data
    colormap: str | None = None  # titiler's `colormap_name`, for single-band data


def rescale_param(low: float, high: float) -> str:
    """A range in titiler's `rescale` form, "low,high", each number as short as keeps them apart."""
    for digits in range(6, 18):
        text = f"{low:.{digits}g},{high:.{digits}g}"
        shown_low, shown_high = map(float, text.split(","))
        if shown_low < shown_high:
            return text
    return f"{low!r},{high!r}"


def render_png(image: ImageData) -> Rendered:
    """Encode a tile as titiler would when asked with the `Rendered` parameters: non-byte data
    stretched over their own valid range (as written in the URL), single-band data in COLORMAP."""
    rescale = None
    if image.array.dtype != np.uint8:
        valid = image.array.compressed() if np.ma.isMaskedArray(image.array) else image.array.ravel()
        valid = valid[np.isfinite(valid)] if valid.size else valid
        if valid.size:
            low, high = float(valid.min()), float(valid.max())
            if not high > low:  # one value: any wider range paints it the same
                high = low + 1 if low + 1 > low else low + abs(low)
            rescale = rescale_param(low, high)
            image = image.rescale(in_range=(tuple(map(float, rescale.split(","))),))
        else:
            image.array = image.array.astype(np.uint8)
    colormap = COLORMAP if image.count == 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        png = image.render(img_format="PNG", colormap=cmap.get(colormap) if colormap else None)
    return Rendered(png, image.count, rescale, colormap)


class TileFailure(Exception):
    """The file opened but its tile did not render; `bands` says what the file holds."""

    def __init__(self, cause: BaseException, bands: list[str] | None = None):
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause
        self.bands = bands


def render_rasterio(opener, name: str) -> tuple[Rendered, list[str]]:
    """rio-tiler's Reader on a dataset opened through our ranged reader (one open, no sidecar
    probes). Returns the tile and the band names; open errors propagate, tile errors are a
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


def render_xarray(url: str, prepared: xr.Dataset, variable: str) -> Rendered:
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
    assets: tuple[str | None, str] | None = None,
    tile: Rendered | None = None,
) -> str:
    """titiler-cmr 1.x: the backend is in the path; the granule is found again by its time.

    Its query parameters (titiler-cmr 1.1.2): `variables`, `group`, `sel` for /xarray;
    `assets_regex` and `assets` (`assets`: the (regex, key) of `asset_selector`, or (None, key)
    for a key titiler-cmr numbers itself) for /rasterio;
    and for both titiler's `rescale` ("low,high") and `colormap_name`, taken from the `tile`
    the check rendered, so the link shows what it showed."""
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
    if assets:
        regex, key = assets
        params += [("assets_regex", regex)] if regex else []
        params.append(("assets", key))
    if tile is not None and tile.rescale:
        params.append(("rescale", tile.rescale))
    if tile is not None and tile.colormap:
        params.append(("colormap_name", tile.colormap))
    query = urlencode(params, safe="/:,")
    return f"{endpoint}/{backend.value}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?{query}"


# A granule of several files (HLS: one GeoTIFF per band) is one asset per file to titiler-cmr's
# rasterio route, keyed by what `assets_regex` finds in the file's name: here a run of name parts
# counted from the end.
_SEPARATOR = "[._-]"
_PART = "[^._-]+"
MAX_KEY_PARTS = 3


def file_stem(url: str) -> str:
    """A data file's name as titiler-cmr's `Granule.get_assets` matches `assets_regex` against it
    (no folder, no last extension)."""
    return os.path.splitext(url)[0].split("/")[-1]


def _key_regex(parts: int, after: int) -> str:
    """`parts` name parts, then exactly `after` more before the end of the name."""
    key = _PART + (f"(?:{_SEPARATOR}{_PART}){{{parts - 1}}}" if parts > 1 else "")
    return key + (f"(?=(?:{_SEPARATOR}{_PART}){{{after}}}$)" if after else "$")


def asset_selector(data_urls: list[str], rendered: str, other_urls: list[str] = ()) -> tuple[str, str] | None:
    """For a granule of more than one data file: titiler-cmr's `assets_regex`, and the `assets`
    key it gives the file the check rendered (`rendered`), e.g. ("[^._-]+$", "B04") for
    HLS.L30.T15UWP.2024283T165135.v2.0.B04.tif.

    The key is made only of name parts that differ between the granule's files (the band), never
    of parts they share (granule id, date, version), so the regex finds the same band in the
    other granules a tile request mosaics. It gives every data file a key of its own, and no
    other link of the granule (`other_urls`: sidecars) the rendered file's key. None for a single
    file, or files whose names no such regex tells apart."""
    stems = list(dict.fromkeys(file_stem(url) for url in data_urls))
    target = file_stem(rendered)
    if len(stems) < 2 or target not in stems:
        return None
    others = {file_stem(url) for url in other_urls} - {target}
    names = [re.findall(_PART, stem) for stem in stems]
    # Whether the part this far from the end of the name differs between the files.
    varies = [len({parts[-1 - back] for parts in names if len(parts) > back}) > 1 for back in range(max(map(len, names)))]
    for size in range(1, MAX_KEY_PARTS + 1):
        for after in range(len(varies) - size + 1):
            if not all(varies[after : after + size]):
                continue
            regex = _key_regex(size, after)
            keys = {stem: match.group() for stem in stems if (match := re.search(regex, stem))}
            if len(set(keys.values())) < len(stems):
                continue  # a file left out, or two files under one key
            key = keys[target]
            if not any((match := re.search(regex, stem)) and match.group() == key for stem in others):
                return regex, key
    return None


# The report page shows each compatible collection's tile this small, embedded in the page.
THUMBNAIL_PIXELS = 64
THUMBNAIL_COLOURS = (64, 16)  # palette sizes tried in turn until the URI fits the budget
THUMBNAIL_BUDGET = 4096  # characters of the data URI
THUMBNAIL_PREFIX = "data:image/png;base64,"


def thumbnail(png: bytes, pixels: int = THUMBNAIL_PIXELS) -> str:
    """The tile shrunk to `pixels` x `pixels` as a `data:image/png;base64,...` URI: each pixel
    the alpha-weighted mean of the pixels it covers, drawn from a palette of the tile's most
    common colours with one transparent entry (1-4 KB)."""
    rgba = png_rgba(png)
    step = max(1, rgba.shape[1] // pixels, rgba.shape[2] // pixels)
    blocks = rgba[:, : pixels * step, : pixels * step].astype("float64").reshape(4, pixels, step, pixels, step)
    weight = blocks[3].sum(axis=(1, 3))
    colour = (blocks[:3] * blocks[3]).sum(axis=(2, 4)) / np.maximum(weight, 1)
    opaque = weight / step**2 >= 128
    uris = []
    for colours in THUMBNAIL_COLOURS:
        uris.append(THUMBNAIL_PREFIX + base64.b64encode(_palette_png(colour, opaque, colours)).decode())
        if len(uris[-1]) <= THUMBNAIL_BUDGET:
            break
    return min(uris, key=len)


def png_rgba(png: bytes) -> np.ndarray:
    """A PNG's pixels as 4 x height x width bytes (grey, grey + alpha, RGB, RGBA and paletted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not georeferenced
        with MemoryFile(png) as memory, memory.open() as dataset:
            bands = dataset.read()
            if dataset.colorinterp[0] is ColorInterp.palette:
                table = np.zeros((256, 4), dtype=np.uint8)
                for index, entry in dataset.colormap(1).items():
                    table[index] = entry
                return table[bands[0]].transpose(2, 0, 1)
    opaque = np.full(bands.shape[1:], 255, dtype=np.uint8)
    colour = bands[:1].repeat(3, axis=0) if bands.shape[0] <= 2 else bands[:3]
    alpha = bands[-1] if bands.shape[0] in (2, 4) else opaque
    return np.concatenate([colour.astype(np.uint8), alpha[None].astype(np.uint8)])


def _palette_png(colour: np.ndarray, opaque: np.ndarray, colours: int) -> bytes:
    """A paletted PNG: index 0 transparent, the others the means of the most common colours
    (at 4 bits a channel), each opaque pixel the nearest of them."""
    pixels = colour[:, opaque].T  # opaque pixels x RGB
    indexes = np.zeros(opaque.shape, dtype=np.uint8)
    palette = np.zeros((0, 3))
    if len(pixels):
        bins = (np.round(pixels).astype(np.int64) >> 4) @ np.array([256, 16, 1])
        _bins, inverse, counts = np.unique(bins, return_inverse=True, return_counts=True)
        chosen = np.argsort(-counts, kind="stable")[: colours - 1]
        palette = np.stack([pixels[inverse == index].mean(axis=0) for index in chosen])
        nearest = ((pixels[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        indexes[opaque] = nearest + 1
    table = {0: (0, 0, 0, 0)} | {
        index: (*(int(round(value)) for value in rgb), 255) for index, rgb in enumerate(palette, start=1)
    }
    nbits = next(bits for bits in (1, 2, 4, 8) if len(table) <= 2**bits)
    profile = {"driver": "PNG", "width": opaque.shape[1], "height": opaque.shape[0], "count": 1, "dtype": "uint8"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not georeferenced
        with MemoryFile() as memory:
            with memory.open(**profile, **({"NBITS": nbits} if nbits < 8 else {})) as dataset:
                dataset.write(indexes, 1)
                dataset.write_colormap(1, table)
            return memory.read()


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
