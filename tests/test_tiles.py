"""The tile engines' settings: what GDAL is really told while a check renders."""

from __future__ import annotations

import ctypes
from pathlib import Path

import rasterio

from titiler_cmr_compatibility.tiles import GDAL_CACHE_MB, GDAL_OPTIONS


def test_gdals_block_cache_is_bounded_whatever_the_machine():
    """GDAL's default is 5% of the host's RAM; while a check renders it is GDAL_CACHE_MB (asked
    of GDAL itself: rasterio takes the option in bytes, and 64 would mean 64 bytes)."""
    library = next((Path(rasterio.__file__).parent.parent / "rasterio.libs").glob("libgdal*"))
    gdal = ctypes.CDLL(str(library))
    gdal.GDALGetCacheMax64.restype = ctypes.c_int64
    with rasterio.Env(**GDAL_OPTIONS):
        assert gdal.GDALGetCacheMax64() == GDAL_CACHE_MB * 2**20
