"""Which variable (and group) of a netCDF/HDF5 file titiler-cmr could tile.

The predecessor took the first "known" variable, even a scalar `crs`, and never looked inside
groups. Here every data variable is judged the way titiler-cmr's xarray reader will treat it
(squeeze size-1 dims, find X/Y by name, at most one extra dim left as bands), and the best
tileable one wins: science variables (CF `standard_name`) on the largest grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

# titiler-cmr 1.x's lists (titiler/cmr/reader.py), NISAR's names included; it also accepts
# dims already called x/y.
X_DIM_NAMES = ["lon", "longitude", "LON", "LONGITUDE", "Lon", "Longitude", "xCoordinates"]
Y_DIM_NAMES = ["lat", "latitude", "LAT", "LATITUDE", "Lat", "Latitude", "yCoordinates"]

_CF_X = {"longitude", "projection_x_coordinate", "grid_longitude"}
_CF_Y = {"latitude", "projection_y_coordinate", "grid_latitude"}
_NOT_SCIENCE_WORDS = ("quality", "qa_", "_qa", "flag", "mask", "uncertainty", "error", "count")


@dataclass
class Candidate:
    """One data variable, as titiler-cmr would see it."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    x_dim: str | None = None
    y_dim: str | None = None
    problem: str | None = None  # why it cannot be tiled; None when it can
    spatial_by_cf: bool = False  # X/Y recognisable by CF attributes even where titiler's names miss
    extra_dims: list[str] = field(default_factory=list)  # non-X/Y dims left after squeezing
    science: bool = False
    lacks_xy: bool = False  # numeric data that fails only for want of X/Y dims titiler-cmr knows

    @property
    def tileable(self) -> bool:
        return self.problem is None

    @property
    def grid_size(self) -> int:
        if self.x_dim is None or self.y_dim is None:
            return 0
        sizes = dict(zip(self.dims, self.shape))
        return sizes[self.x_dim] * sizes[self.y_dim]

    def rank(self) -> tuple:
        """Smaller is better: tileable, then array data that only lacks X/Y (the nearest miss,
        which names the reason), then science variables, larger grids, larger arrays, fewer bands."""
        closeness = 0 if self.tileable else 1 if self.lacks_xy else 2
        return (closeness, not self.science, -self.grid_size, -math.prod(self.shape), len(self.extra_dims))


def _coordinate_attrs(ds: xr.Dataset, dim: str) -> dict:
    return dict(ds[dim].attrs) if dim in ds.variables else {}


def _cf_axis(ds: xr.Dataset, dim: str) -> str | None:
    attrs = _coordinate_attrs(ds, dim)
    standard_name = str(attrs.get("standard_name", "")).lower()
    axis = str(attrs.get("axis", "")).upper()
    units = str(attrs.get("units", "")).lower()
    if axis == "X" or standard_name in _CF_X or units in ("degrees_east", "degree_east", "degrees_e"):
        return "X"
    if axis == "Y" or standard_name in _CF_Y or units in ("degrees_north", "degree_north", "degrees_n"):
        return "Y"
    return None


def _is_auxiliary(name: str, da: xr.DataArray) -> str | None:
    """Why a data variable is not science data to tile (bounds, grid mapping, flags, QA, cell
    indices such as SMAP's cell_row/cell_column)."""
    attrs = da.attrs
    lowered = name.lower()
    if lowered.endswith(("_bnds", "_bounds", "_bnd")) or lowered in ("bnds", "bounds"):
        return "a cell-bounds variable"
    # Some Harmony outputs copy grid_mapping_name onto data arrays: that attribute alone makes a
    # grid mapping only of a variable with no data to speak of (titiler-cmr takes the others).
    if lowered in ("crs", "spatial_ref", "projection") or ("grid_mapping_name" in attrs and da.size <= 1):
        return "a grid-mapping (CRS) variable"
    if any(key in attrs for key in ("flag_values", "flag_masks", "flag_meanings")):
        return "a flag variable"
    if "quality" in lowered or lowered.startswith(("qa_", "qc_")) or lowered.endswith(("_qa", "_qc")):
        return "a quality variable"
    if _cf_axis_of_variable(da) is not None or lowered.endswith(("_lat", "_lon", "latitude", "longitude")):
        return "a geolocation (latitude/longitude) variable"
    if lowered.endswith(("_row", "_column", "_index")) or "index of" in str(attrs.get("long_name", "")).lower():
        return "a grid-index variable (row/column numbers of cells)"
    return None


def judge(ds: xr.Dataset, name: str) -> Candidate:
    da = ds[name]
    candidate = Candidate(name=name, dims=tuple(map(str, da.dims)), shape=tuple(da.shape))
    attrs = da.attrs
    lowered = name.lower()
    candidate.science = "standard_name" in attrs and not any(w in lowered for w in _NOT_SCIENCE_WORDS)
    if da.ndim == 0:
        candidate.problem = "a scalar"
        return candidate
    if not np.issubdtype(da.dtype, np.number) or np.issubdtype(da.dtype, np.complexfloating):
        candidate.problem = f"not numeric ({da.dtype})"
        return candidate
    if auxiliary := _is_auxiliary(name, da):
        candidate.problem = auxiliary
        return candidate
    dims = candidate.dims
    if "x" in dims and "y" in dims:
        candidate.x_dim, candidate.y_dim = "x", "y"
    else:
        candidate.x_dim = next((d for d in X_DIM_NAMES if d in dims), None)
        candidate.y_dim = next((d for d in Y_DIM_NAMES if d in dims), None)
    if candidate.x_dim is None or candidate.y_dim is None:
        candidate.lacks_xy = True
        axes = {d: _cf_axis(ds, d) for d in dims}
        candidate.spatial_by_cf = "X" in axes.values() and "Y" in axes.values()
        two_d_coords = [
            c for c in da.coords if ds[c].ndim == 2 and _cf_axis_of_variable(ds[c]) is not None
        ]
        if candidate.spatial_by_cf:
            candidate.problem = (
                f"its X/Y dims {dims} are spatial by CF attributes, but titiler-cmr only "
                f"recognises X/Y dims named {X_DIM_NAMES[:2]}/{Y_DIM_NAMES[:2]} (or x/y)"
            )
        elif two_d_coords:
            candidate.problem = (
                f"a swath: 2-D latitude/longitude ({', '.join(two_d_coords)}) on dims {dims}; "
                "titiler-cmr needs a regular grid with 1-D X/Y dims"
            )
        else:
            candidate.problem = f"no X/Y dimensions in {dims}"
        return candidate
    sizes = dict(zip(dims, candidate.shape))
    if sizes[candidate.x_dim] < 2 or sizes[candidate.y_dim] < 2:
        candidate.problem = f"a single row or column of pixels ({sizes[candidate.y_dim]}×{sizes[candidate.x_dim]})"
        return candidate
    candidate.extra_dims = [d for d in dims if d not in (candidate.x_dim, candidate.y_dim) and sizes[d] > 1]
    return candidate


def _cf_axis_of_variable(da: xr.DataArray) -> str | None:
    standard_name = str(da.attrs.get("standard_name", "")).lower()
    units = str(da.attrs.get("units", "")).lower()
    if standard_name in _CF_X or units.startswith("degrees_e") or da.name in ("lon", "longitude", "Longitude"):
        return "X"
    if standard_name in _CF_Y or units.startswith("degrees_n") or da.name in ("lat", "latitude", "Latitude"):
        return "Y"
    return None


def candidates(ds: xr.Dataset) -> list[Candidate]:
    """Every data variable judged, best first."""
    judged = [judge(ds, str(name)) for name in ds.data_vars]
    return sorted(judged, key=Candidate.rank)


def explain(judged: list[Candidate], limit: int = 5) -> str:
    """Why none of these variables can be tiled, variable by variable (bounded)."""
    lines = [f"{c.name}: {c.problem}" for c in judged[:limit]]
    if len(judged) > limit:
        lines.append(f"... and {len(judged) - limit} more")
    return "; ".join(lines)
