"""What `variables.judge` makes of one variable: each rule that keeps a variable from being the
one tiled, and the science variable that wins beside it. Removing a rule fails its row."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from titiler_cmr_compatibility.variables import candidates, judge

GRID = {"lat": np.linspace(-80, 80, 5), "lon": np.linspace(-170, 170, 8)}


def _dataset(name: str, dims=("lat", "lon"), dtype="float32", **attrs) -> xr.Dataset:
    shape = tuple(len(GRID[d]) if d in GRID else 3 for d in dims)
    science = xr.DataArray(np.ones((5, 8), "float32"), dims=("lat", "lon"), attrs={"standard_name": "sea_surface_temperature"})
    odd = xr.DataArray(np.ones(shape, dtype), dims=dims, attrs=attrs) if dims else xr.DataArray(np.array(1, dtype), attrs=attrs)
    return xr.Dataset({name: odd, "sst": science}, coords=GRID)


@pytest.mark.parametrize(
    ("name", "options", "problem"),
    [
        ("crs", {"dims": ()}, "a scalar"),
        ("lat_bnds", {}, "cell-bounds"),
        ("projection", {}, "grid-mapping"),
        ("crs_code", {"dims": ("lat",), "grid_mapping_name": "latitude_longitude"}, "no X/Y"),
        ("mask", {"flag_values": [0, 1], "flag_meanings": "water land"}, "flag"),
        ("sst_quality_level", {}, "quality"),
        ("QC_250m_1_MYD09GQ", {"dtype": "uint16"}, "quality"),
        ("cell_column", {"dtype": "uint32"}, "grid-index"),
        ("row_number", {"long_name": "The row index of each cell"}, "grid-index"),
        ("cell_lat", {"units": "degrees"}, "geolocation"),
        ("nav_longitude", {}, "geolocation"),
        ("grid_y", {"units": "degrees_north"}, "geolocation"),
        ("label", {"dtype": "<U4"}, "not numeric"),
        ("series", {"dims": ("time",)}, "no X/Y dimensions"),
    ],
)
def test_a_variable_that_is_not_science_data_is_never_tiled(name, options, problem):
    options = dict(options)
    ds = _dataset(name, dims=options.pop("dims", ("lat", "lon")), dtype=options.pop("dtype", "float32"), **options)
    assert problem in (judge(ds, name).problem or "")
    assert candidates(ds)[0].name == "sst"  # the science variable beside it wins


def test_data_that_carries_grid_mapping_name_is_data():
    """Harmony copies grid_mapping_name onto data arrays; titiler-cmr takes them (and fails at
    the tile), so they are not put aside as CRS variables."""
    ds = _dataset("analysed", grid_mapping_name="latitude_longitude")
    assert judge(ds, "analysed").tileable
    assert judge(_dataset("analysed", dims=("lat",), grid_mapping_name="latitude_longitude").isel(lat=[0]), "analysed").problem == "a grid-mapping (CRS) variable"


def test_a_plain_data_variable_is_tileable_and_science_ranks_first():
    ds = _dataset("anomaly")
    assert judge(ds, "anomaly").tileable
    assert [c.name for c in candidates(ds)] == ["sst", "anomaly"]
