"""The tile engines' settings (what GDAL is really told while a check renders), the picture a
check keeps of its tile, and how a tiles URL names the file of a many-file granule."""

from __future__ import annotations

import ctypes
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rio_tiler.models import ImageData

from titiler_cmr_compatibility.tiles import (
    GDAL_CACHE_MB,
    GDAL_OPTIONS,
    THUMBNAIL_BUDGET,
    asset_selector,
    png_rgba,
    render_png,
    rescale_param,
    thumbnail,
)
from titiler_cmr_compatibility.umm import read_granule
from tests.support.fixtures import load_fixture_granules
from tests.support.images import png_size, thumbnail_png

HLS = "C2021957657-LPCLOUD"
GRACE = "C2077042612-POCLOUD"  # each granule: the same name as .nc, .tif and .txt
# The asset keys titiler-cmr 1.1.2 gives an HLS L30 granule's files with the check's regex
# (asked of its own `Granule.get_assets` on these four records: the same 15 keys for each).
HLS_KEYS = {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B09", "B10", "B11", "Fmask", "SAA", "SZA", "VAA", "VZA"}


def test_gdals_block_cache_is_bounded_whatever_the_machine():
    """GDAL's default is 5% of the host's RAM; while a check renders it is GDAL_CACHE_MB (asked
    of GDAL itself: rasterio takes the option in bytes, and 64 would mean 64 bytes)."""
    library = next((Path(rasterio.__file__).parent.parent / "rasterio.libs").glob("libgdal*"))
    gdal = ctypes.CDLL(str(library))
    gdal.GDALGetCacheMax64.restype = ctypes.c_int64
    with rasterio.Env(**GDAL_OPTIONS):
        assert gdal.GDALGetCacheMax64() == GDAL_CACHE_MB * 2**20


# The tile's picture: what the link asks titiler for, and the thumbnail


def test_rescale_is_compact_and_keeps_the_ends_apart():
    assert rescale_param(271.1234567, 303.5) == "271.123,303.5"
    assert rescale_param(-3.25, 41.5) == "-3.25,41.5"
    assert rescale_param(1000.0001, 1000.0002) == "1000.0001,1000.0002"  # 6 digits would say 1000,1000
    assert rescale_param(-1e-7, 2.5e20) == "-1e-07,2.5e+20"


@pytest.mark.filterwarnings("ignore:invalid value encountered in cast")  # the unmasked NaN, as titiler paints it
def test_a_float_tile_is_stretched_over_its_valid_range_and_painted_when_single_band():
    ramp = np.linspace(-2.5, 7.0, 256 * 256, dtype="float32").reshape(1, 256, 256)
    values = np.ma.masked_array(ramp.copy())
    values[0, :10] = np.ma.masked  # masked and non-finite values are not data
    values[0, 20, 20] = np.nan
    tile = render_png(ImageData(values))
    assert tile.rescale == rescale_param(float(ramp[0, 10, 0]), 7.0) and tile.colormap == "viridis"
    assert png_size(tile.png) == (256, 256)
    bands = render_png(ImageData(np.ma.masked_array(np.concatenate([ramp] * 3))))
    assert bands.rescale == "-2.5,7" and bands.colormap is None and bands.count == 3
    byte = render_png(ImageData(np.ma.masked_array(np.full((1, 256, 256), 7, dtype="uint8"))))
    assert byte.rescale is None and byte.colormap == "viridis"


@pytest.mark.parametrize("masked_rows", [0, 128, 256])
def test_the_thumbnail_is_the_tile_at_64_pixels_within_budget(masked_rows):
    """Seeded noise is the hardest picture to compress; a masked half stays transparent."""
    noise = np.random.default_rng(7).random((1, 256, 256)).astype("float32")
    mask = np.zeros(noise.shape, dtype=bool)
    mask[0, :masked_rows] = True
    uri = thumbnail(render_png(ImageData(np.ma.masked_array(noise, mask=mask))).png)
    assert len(uri) <= THUMBNAIL_BUDGET
    png = thumbnail_png(uri)
    assert png_size(png) == (64, 64)
    alpha = png_rgba(png)[3]
    assert (alpha[: masked_rows // 4] == 0).all() and (alpha[masked_rows // 4 :] == 255).all()


# Many files to a granule: the regex titiler-cmr is given, and the key of the file rendered


def titiler_cmr_asset_keys(granule: dict, regex: str) -> dict[str, set[str]]:
    """Granule.get_assets(regex) of titiler-cmr 1.1.2 (models.py), restated: every GET DATA and
    GET DATA VIA DIRECT ACCESS link's file name, without its folder and last extension, is keyed
    by the regex's first match (links it does not match are left out), so a key gathers a file's
    https and s3 links. (Its restriction to DataGranule's file names does not apply: HLS records
    name no files, only "Not provided".)"""
    keys: dict[str, set[str]] = defaultdict(set)
    for related in granule["umm"]["RelatedUrls"]:
        if related["Type"] in ("GET DATA", "GET DATA VIA DIRECT ACCESS"):
            root, _extension = os.path.splitext(related["URL"])
            if match := re.search(regex, root.split("/")[-1]):
                keys[match.group()].add(related["URL"])
    return keys


@pytest.mark.parametrize("access", ["external", "direct"])
def test_each_hls_band_file_gets_the_key_titiler_cmr_gives_it(access):
    granules = load_fixture_granules(HLS)
    assert len(granules) == 4
    for granule in granules:
        info = read_granule(granule, access)
        urls = [link.url for link in info.links]
        assert len(urls) == 15
        for url in urls:
            regex, key = asset_selector(urls, url, info.skipped)
            keys = titiler_cmr_asset_keys(granule, regex)
            assert set(keys) == HLS_KEYS
            assert url in keys[key] and len(keys[key]) == 2 and all(href.endswith(f".v2.0.{key}.tif") for href in keys[key])


def test_files_told_apart_only_by_extension_get_no_regex():
    """GRACE's granules hold one name as .nc, .tif and .txt: titiler-cmr keys files by their name
    without extension, so no regex can pick one; its default asset stands."""
    for granule in load_fixture_granules(GRACE)[:5]:
        info = read_granule(granule, "external")
        urls = [link.url for link in info.links]
        assert len(urls) == 3 and asset_selector(urls, urls[0], info.skipped) is None


def test_the_key_is_the_name_part_that_tells_files_apart():
    names = [f"https://h/p/OPERA_L3_X_T15_2024_{band}_v1.0.tif" for band in ("B01", "B02", "B03")]
    regex, key = asset_selector(names, names[1])
    assert key == "B02" and re.search(regex, "OPERA_L3_X_T16_2025_B02_v1.0").group() == "B02"  # any granule
    assert asset_selector(names[:1], names[0]) is None  # one file: titiler-cmr's default asset
    # A sidecar that would take the rendered file's key: the parts the files share never make
    # a key (T15_B02 would miss the band in tile T16), so there is none.
    assert asset_selector(names, names[1], ["https://h/p/B02_v1.0.xml"]) is None
    pairs = [f"https://h/p/G_{kind}_{band}.tif" for kind in ("LST", "QC") for band in ("day", "night")]
    assert asset_selector(pairs, pairs[2])[1] == "QC_day"  # two parts when one does not tell them apart
