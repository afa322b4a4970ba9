"""Generators of small, real data files for the layouts the survey must classify.

Each generator is ``(directory, **options) -> Path``: it writes one file into ``directory`` and
returns its path. Content is deterministic (fixed formulas and seeded noise), so a test can
assert values and the demo shows the same sample every time, and every file opens with its real
reader (h5py, h5netcdf, xarray, scipy, rasterio). The layouts mirror the earlier survey's
failure modes (README §8, ENGINEERING_NOTES): a scalar ``crs`` listed before the data
variables, bounds variables, packed integers with ``valid_min``/``valid_max`` in packed units,
grids that live only inside a group, swaths with 2-D coordinates, HDF-EOS5 grids without CF
coordinates, non-data files behind data URLs (HTML login pages, text, archives, truncated
downloads), and GeoTIFFs with and without the cloud-optimised layout.

h5netcdf, h5py, numpy and rasterio are runtime dependencies of the package; scipy is only a
test dependency, so ``netcdf3_grid`` imports it when called.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_bounds

from .data import EARTHDATA_LOGIN_HTML

__all__ = [
    "cog",
    "group_grid_lon_lat",
    "gzip_file",
    "hdf4_signature",
    "hdfeos5_grid",
    "html_login_page",
    "large_grid",
    "netcdf3_grid",
    "netcdf4_grid",
    "netcdf4_mixed_groups",
    "netcdf4_swath",
    "ramp_geotiff",
    "ramp_grid",
    "scaled_local_projection_tiff",
    "striped_geotiff",
    "text_file",
    "time_offset_grid",
    "truncated",
    "zip_archive",
]

#: Bytes of an Earthdata-login HTML page, as served instead of data by a misconfigured host.
html_login_page: bytes = EARTHDATA_LOGIN_HTML

HDF4_MAGIC = b"\x0e\x03\x13\x01"
TIME_UNITS = "seconds since 1981-01-01 00:00:00"
#: 2024-10-11T12:00:00Z in TIME_UNITS, the first GAMSSA fixture's time stamp.
FIRST_TIME = 1381492800

# name -> (standard_name, units, long_name); unknown names get a generic description.
# Every data variable holds the same SST-like field in kelvin (phase-shifted per variable), so
# other names default to kelvin too; the names only matter for variable-selection tests.
_KNOWN_VARIABLES: dict[str, tuple[str, str, str]] = {
    "sst": ("sea_surface_temperature", "kelvin", "sea surface temperature"),
    "analysed_sst": ("sea_surface_foundation_temperature", "kelvin", "analysed SST"),
    "chlor_a": (
        "mass_concentration_of_chlorophyll_a_in_sea_water",
        "mg m-3",
        "chlorophyll-a concentration",
    ),
}


def _describe(name: str) -> tuple[str, str, str]:
    return _KNOWN_VARIABLES.get(name, (name, "kelvin", name.replace("_", " ")))


def _centres(count: int, low: float, high: float) -> np.ndarray:
    """Cell centres of ``count`` equal cells between ``low`` and ``high`` (like GAMSSA's)."""
    step = (high - low) / count
    return (low + step / 2 + step * np.arange(count)).astype("float32")


def _field(lat: np.ndarray, lon: np.ndarray, phase: float = 0.0) -> np.ndarray:
    """A smooth SST-like field in kelvin, ~271-303 K; cheap and deterministic."""
    lat_r, lon_r = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    return (
        287.0
        + 15.0 * np.cos(lat_r) ** 2 * np.cos(lat_r)
        + 1.5 * np.sin(3 * lon_r + phase)
        - 4.0 * np.sin(lat_r) ** 2
    ).astype("float32")


def _lat_lon(group: Any, lat: int, lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Write CF latitude/longitude coordinate variables (dims must exist) and return values."""
    lats, lons = _centres(lat, -90.0, 90.0), _centres(lon, -180.0, 180.0)
    for name, values, units, standard, axis in (
        ("lat", lats, "degrees_north", "latitude", "Y"),
        ("lon", lons, "degrees_east", "longitude", "X"),
    ):
        var = group.create_variable(name, (name,), "float32", data=values)
        var.attrs.update(
            {"units": units, "standard_name": standard, "long_name": standard, "axis": axis}
        )
    return lats, lons


def netcdf4_grid(
    directory: Path,
    name: str = "grid.nc",
    variables: Sequence[str] = ("sst",),
    lat: int = 90,
    lon: int = 180,
    time: int = 1,
    first_var_scalar: bool = False,
    with_bounds: bool = False,
    packed: bool = False,
    group: str | None = None,
    chunks: tuple[int, ...] | None = None,
) -> Path:
    """A CF netCDF-4 (HDF5) lat/lon grid written with h5netcdf.

    Data variables have dims ``(time, lat, lon)`` (``time=0`` drops the time dimension).
    ``first_var_scalar`` writes a scalar ``crs`` grid-mapping variable before the data
    variables, so it is the first data variable xarray lists (the GAMSSA trap);
    ``with_bounds`` adds ``lat_bnds``/``lon_bnds`` (also before the data variables);
    ``packed`` stores int16 with ``scale_factor``/``add_offset`` and ``valid_min``/
    ``valid_max`` in packed units (as GAMSSA's ``analysed_sst``); ``group`` puts every
    dimension and variable in that group, leaving only global attributes at the root;
    ``chunks`` chunks and zlib-compresses the data variables.
    """
    path = Path(directory) / name
    with h5netcdf.File(path, "w") as root:
        root.attrs.update(
            {"Conventions": "CF-1.8", "title": f"Synthetic grid {name}", "source": "synthetic"}
        )
        target = root.create_group(group) if group else root
        dims: dict[str, int] = {"lat": lat, "lon": lon}
        if time:
            dims = {"time": time, **dims}
        target.dimensions = dims
        if time:
            times = target.create_variable(
                "time", ("time",), "int32", data=FIRST_TIME + 86400 * np.arange(time, dtype="int32")
            )
            times.attrs.update(
                {"units": TIME_UNITS, "standard_name": "time", "axis": "T", "calendar": "standard"}
            )
        lats, lons = _lat_lon(target, lat, lon)
        if first_var_scalar:
            crs = target.create_variable("crs", (), "int32", data=np.int32(0))
            crs.attrs.update(
                {
                    "grid_mapping_name": "latitude_longitude",
                    "long_name": "coordinate reference system",
                    "semi_major_axis": 6378137.0,
                    "inverse_flattening": 298.257223563,
                    "epsg_code": "EPSG:4326",
                }
            )
        if with_bounds:
            target.dimensions["nv"] = 2
            target["lat"].attrs["bounds"] = "lat_bnds"
            target["lon"].attrs["bounds"] = "lon_bnds"
            for coord, values, span in (("lat", lats, 180.0 / lat), ("lon", lons, 360.0 / lon)):
                bounds = np.stack([values - span / 2, values + span / 2], axis=1)
                target.create_variable(f"{coord}_bnds", (coord, "nv"), "float32", data=bounds)
        data_dims = ("time", "lat", "lon") if time else ("lat", "lon")
        for index, variable in enumerate(variables):
            steps = [_field(lats, lons, phase=0.1 * (t + index)) for t in range(max(time, 1))]
            values = np.stack(steps) if time else steps[0]
            kwargs: dict[str, Any] = {}
            if chunks is not None:
                kwargs.update(chunks=tuple(chunks), compression="gzip", compression_opts=4)
            standard, units, long_name = _describe(variable)
            if packed:
                packed_values = np.round((values - 273.15) / 0.01).astype("int16")
                var = target.create_variable(
                    variable,
                    data_dims,
                    "int16",
                    data=packed_values,
                    fillvalue=np.int16(-32768),
                    **kwargs,
                )
                var.attrs.update(
                    {
                        "scale_factor": np.float64(0.01),
                        "add_offset": np.float64(273.15),
                        "valid_min": np.int16(-300),
                        "valid_max": np.int16(4500),
                    }
                )
            else:
                var = target.create_variable(
                    variable,
                    data_dims,
                    "float32",
                    data=values,
                    fillvalue=np.float32(-999.0),
                    **kwargs,
                )
            var.attrs.update({"standard_name": standard, "units": units, "long_name": long_name})
            if first_var_scalar:
                var.attrs["grid_mapping"] = "crs"
    return path


def time_offset_grid(directory: Path, name: str = "ssmis_like.nc") -> Path:
    """An RSS SSMIS-like daily grid: packed int16 variables beside a time-offset variable
    (`sst_dtime`, "hours since ...") listed first. Decoded as titiler-cmr decodes it, the offset
    is datetime64, which titiler-cmr cannot render; the packed variables render."""
    path = Path(directory) / name
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"time": 1, "lat": 90, "lon": 180}
        times = root.create_variable("time", ("time",), "float64", data=np.array([0.0]))
        times.attrs.update({"units": "days since 2020-01-01", "standard_name": "time", "axis": "T"})
        lats, lons = _lat_lon(root, 90, 180)
        offset = root.create_variable("sst_dtime", ("time", "lat", "lon"), "float32",
                                      data=np.full((1, 90, 180), 5.5, "float32"))  # fmt: skip
        offset.attrs.update({"units": "hours since 2020-01-01", "long_name": "time of observation"})
        for index, variable in enumerate(("wind", "vapor", "rain")):
            packed = np.round((_field(lats, lons, phase=0.1 * index) - 273.15) / 0.15).astype("int16")[None]
            var = root.create_variable(variable, ("time", "lat", "lon"), "int16", data=packed, fillvalue=np.int16(-32768))
            var.attrs.update({"scale_factor": 0.15, "add_offset": 0.0, "long_name": variable})
    return path


def group_grid_lon_lat(directory: Path, name: str = "imerg_like.nc", calendar: str = "julian") -> Path:
    """A GPM IMERG-like file: data only in group `/Grid`, dimensions ordered (time, lon, lat),
    a time in `calendar` with bounds, and `lat_bnds`/`lon_bnds`. titiler-cmr (without cftime)
    cannot decode a julian time, so it renders only with decoding off."""
    path = Path(directory) / name
    with h5netcdf.File(path, "w") as root:
        grid = root.create_group("Grid")
        grid.dimensions = {"time": 1, "lon": 72, "lat": 36, "nv": 2}
        times = grid.create_variable("time", ("time",), "int32", data=np.array([1600000000], "int32"))
        times.attrs.update({"units": "seconds since 1970-01-01 00:00:00 UTC", "calendar": calendar,
                            "standard_name": "time", "bounds": "time_bnds"})  # fmt: skip
        grid.create_variable("time_bnds", ("time", "nv"), "int32", data=np.array([[1600000000, 1600001800]], "int32"))
        lats, lons = _lat_lon(grid, 36, 72)
        for coord, values, span in (("lat", lats, 5.0), ("lon", lons, 5.0)):
            grid[coord].attrs["bounds"] = f"{coord}_bnds"
            grid.create_variable(f"{coord}_bnds", (coord, "nv"), "float32",
                                 data=np.stack([values - span / 2, values + span / 2], axis=1))  # fmt: skip
        field = _field(lats, lons).T[None].astype("float32")  # (time, lon, lat)
        precipitation = grid.create_variable("precipitation", ("time", "lon", "lat"), "float32", data=field)
        precipitation.attrs.update({"units": "mm/hr", "long_name": "precipitation rate"})
    return path


def netcdf4_mixed_groups(directory: Path, name: str = "mixed_groups.nc") -> Path:
    """A hierarchical netCDF-4 file whose only grid sits in ``/science/grids``.

    The root holds a scalar and a 1-D non-spatial variable (what a reader opening the root
    sees), ``/science/grids`` a CF lat/lon grid variable ``chlor_a``, and ``/meta`` non-spatial
    variables: the "group_structure" case of the earlier survey.
    """
    path = Path(directory) / name
    with h5netcdf.File(path, "w") as root:
        root.attrs.update({"Conventions": "CF-1.8", "title": "Synthetic hierarchical file"})
        root.dimensions = {"band": 4}
        root.create_variable("processing_version", (), "int32", data=np.int32(3))
        wavelengths = root.create_variable(
            "band_wavelengths", ("band",), "float32", data=np.array([412, 443, 490, 555], "f4")
        )
        wavelengths.attrs["units"] = "nm"
        grids = root.create_group("science").create_group("grids")
        grids.dimensions = {"lat": 45, "lon": 90}
        lats, lons = _lat_lon(grids, 45, 90)
        chl = grids.create_variable(
            "chlor_a", ("lat", "lon"), "float32", data=np.exp((_field(lats, lons) - 290.0) / 10.0)
        )
        standard, units, long_name = _describe("chlor_a")
        chl.attrs.update({"standard_name": standard, "units": units, "long_name": long_name})
        meta = root.create_group("meta")
        meta.dimensions = {"flag": 3}
        meta.create_variable("flag_counts", ("flag",), "int32", data=np.array([10, 5, 1], "i4"))
        meta.create_variable("granule_number", (), "int32", data=np.int32(42))
    return path


def netcdf4_swath(
    directory: Path, name: str = "swath.nc", along_track: int = 200, cross_track: int = 100
) -> Path:
    """A level-2-like swath: data on (along_track, cross_track) with 2-D lat/lon variables.

    There are no 1-D lat/lon coordinates, so a tiler that finds X/Y by dimension name must
    reject it ("no_xy_dimensions"), although ``coordinates`` points at the geolocation.
    """
    path = Path(directory) / name
    rows, cols = np.meshgrid(np.arange(along_track), np.arange(cross_track), indexing="ij")
    latitude = (-40.0 + 0.4 * rows + 0.05 * cols).astype("float32")
    longitude = (10.0 + 0.3 * cols - 0.02 * rows).astype("float32")
    with h5netcdf.File(path, "w") as root:
        root.attrs.update({"Conventions": "CF-1.8", "title": "Synthetic swath"})
        root.dimensions = {"along_track": along_track, "cross_track": cross_track}
        dims = ("along_track", "cross_track")
        for var_name, values, units in (
            ("latitude", latitude, "degrees_north"),
            ("longitude", longitude, "degrees_east"),
        ):
            var = root.create_variable(var_name, dims, "float32", data=values)
            var.attrs.update({"units": units, "standard_name": var_name})
        radiance = root.create_variable(
            "radiance", dims, "float32", data=(50 + 10 * np.sin(rows / 20.0) * np.cos(cols / 15.0))
        )
        radiance.attrs.update(
            {
                "units": "W m-2 sr-1 um-1",
                "long_name": "top of atmosphere radiance",
                "coordinates": "latitude longitude",
            }
        )
    return path


def _struct_metadata(grid_name: str, fields: Sequence[str], ydim: int, xdim: int) -> str:
    """HDF-EOS5 ``StructMetadata.0`` ODL for one geographic grid (as in OMI/MLS L3 files).

    Corner coordinates of HE5_GCTP_GEO grids are in packed DMS (DDDMMMSSS.SS), hence
    -180000000.000000 for -180°.
    """
    data_fields = "".join(
        f"\t\t\tOBJECT=DataField_{i}\n"
        f'\t\t\t\tDataFieldName="{field}"\n'
        "\t\t\t\tDataType=H5T_NATIVE_FLOAT\n"
        '\t\t\t\tDimList=("YDim","XDim")\n'
        '\t\t\t\tMaxdimList=("YDim","XDim")\n'
        f"\t\t\tEND_OBJECT=DataField_{i}\n"
        for i, field in enumerate(fields, start=1)
    )
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\n"
        "GROUP=GridStructure\n"
        "\tGROUP=GRID_1\n"
        f'\t\tGridName="{grid_name}"\n'
        f"\t\tXDim={xdim}\n"
        f"\t\tYDim={ydim}\n"
        "\t\tUpperLeftPointMtrs=(-180000000.000000,90000000.000000)\n"
        "\t\tLowerRightMtrs=(180000000.000000,-90000000.000000)\n"
        "\t\tProjection=HE5_GCTP_GEO\n"
        "\t\tGridOrigin=HE5_HDFE_GD_UL\n"
        "\t\tPixelRegistration=HE5_HDFE_CENTER\n"
        "\t\tGROUP=Dimension\n\t\tEND_GROUP=Dimension\n"
        f"\t\tGROUP=DataField\n{data_fields}\t\tEND_GROUP=DataField\n"
        "\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n"
        "\tEND_GROUP=GRID_1\n"
        "END_GROUP=GridStructure\n"
        "GROUP=PointStructure\nEND_GROUP=PointStructure\n"
        "GROUP=ZaStructure\nEND_GROUP=ZaStructure\n"
        "END\n"
    )


def hdfeos5_grid(
    directory: Path,
    name: str = "hdfeos5_grid.he5",
    grid_name: str = "ColumnAmountO3",
    fields: Sequence[str] = ("ColumnAmountO3",),
    ydim: int = 180,
    xdim: int = 360,
) -> Path:
    """An HDF-EOS5 grid file (h5py): ``HDFEOS/GRIDS/<grid>/Data Fields/<field>`` (YDim, XDim)
    float32 and ``HDFEOS INFORMATION/StructMetadata.0``; no CF coordinates or dimension scales,
    so the geolocation exists only in the ODL text.
    """
    path = Path(directory) / name
    lats, lons = _centres(ydim, 90.0, -90.0), _centres(xdim, -180.0, 180.0)
    odl = _struct_metadata(grid_name, fields, ydim, xdim)
    with h5py.File(path, "w") as handle:
        info = handle.create_group("HDFEOS INFORMATION")
        info.attrs["HDFEOSVersion"] = np.bytes_("HDFEOS_5.1.15")
        info.create_dataset("StructMetadata.0", data=np.bytes_(odl.encode()))
        handle.create_group("HDFEOS/ADDITIONAL/FILE_ATTRIBUTES").attrs["InstrumentName"] = (
            np.bytes_("TEST")
        )
        data_fields = handle.create_group(f"HDFEOS/GRIDS/{grid_name}/Data Fields")
        for index, field in enumerate(fields):
            values = 250.0 + 80.0 * (_field(lats, lons, phase=index) - 271.0) / 32.0
            dataset = data_fields.create_dataset(field, data=values.astype("float32"))
            dataset.attrs.update(
                {
                    "_FillValue": np.float32(-1.2676506e30),
                    "MissingValue": np.float32(-1.2676506e30),
                    "Units": np.bytes_("DU"),
                    "Title": np.bytes_(f"{field} (synthetic)"),
                }
            )
    return path


def netcdf3_grid(directory: Path, name: str = "grid3.nc", lat: int = 45, lon: int = 90) -> Path:
    """A classic netCDF-3 file (``CDF\\x01``) with a CF lat/lon grid, via scipy.

    scipy is imported here, not at module level: it is a test dependency, not a runtime one.
    """
    from scipy.io import netcdf_file

    path = Path(directory) / name
    lats, lons = _centres(lat, -90.0, 90.0), _centres(lon, -180.0, 180.0)
    with netcdf_file(path, "w", version=1) as handle:
        handle.Conventions = "CF-1.6"
        handle.title = "Synthetic netCDF-3 grid"
        handle.createDimension("time", 1)
        handle.createDimension("lat", lat)
        handle.createDimension("lon", lon)
        times = handle.createVariable("time", "i", ("time",))
        times[:] = [FIRST_TIME]
        times.units, times.standard_name, times.axis = TIME_UNITS, "time", "T"
        for coord, values, units, axis in (
            ("lat", lats, "degrees_north", "Y"),
            ("lon", lons, "degrees_east", "X"),
        ):
            var = handle.createVariable(coord, "f", (coord,))
            var[:] = values
            standard = "latitude" if coord == "lat" else "longitude"
            var.units, var.standard_name, var.axis = units, standard, axis
        temperature = handle.createVariable("temperature", "f", ("time", "lat", "lon"))
        temperature[:] = _field(lats, lons)[None]
        temperature.units, temperature.standard_name = "kelvin", "air_temperature"
    return path


def hdf4_signature(directory: Path, name: str = "granule.hdf", size: int = 4096) -> Path:
    """A file that starts like HDF4 (magic ``0e 03 13 01``, then a DD-block header) and is
    padded with a fixed pattern. It is not a valid HDF4 file; it only tests sniffing."""
    header = HDF4_MAGIC + struct.pack(">hI", 16, 0)
    padding = bytes(range(256)) * (size // 256 + 1)
    path = Path(directory) / name
    path.write_bytes((header + padding)[:size])
    return path


def zip_archive(directory: Path, name: str = "granule.zip") -> Path:
    """A zip archive holding one small netCDF-4 grid (``grid.nc``), as many DAACs ship."""
    path = Path(directory) / name
    with tempfile.TemporaryDirectory() as scratch:
        inner = netcdf4_grid(Path(scratch), lat=18, lon=36)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.write(inner, arcname=inner.name)
    return path


def gzip_file(directory: Path, name: str = "granule.nc.gz") -> Path:
    """A gzip-compressed netCDF-4 grid (``.nc.gz``); mtime fixed so bytes are reproducible."""
    path = Path(directory) / name
    with tempfile.TemporaryDirectory() as scratch:
        inner = netcdf4_grid(Path(scratch), lat=18, lon=36)
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename=inner.name, mode="wb", fileobj=raw, mtime=0) as compressed,
        ):
            compressed.write(inner.read_bytes())
    return path


def text_file(directory: Path, name: str = "data.txt", rows: int = 50) -> Path:
    """CSV-like ASCII, modelled on the HAQES county PM2.5 text granules."""
    lines = ["FIPS,latitude,longitude,pm25_bc"]
    for index in range(rows):
        lines.append(
            f"{1001 + 2 * index:05d},{30 + index * 0.37:.4f},{-100 + index * 0.51:.4f},"
            f"{0.1 + (index % 7) * 0.05:.3f}"
        )
    path = Path(directory) / name
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def truncated(directory: Path, source: Path, keep_bytes: int = 4096) -> Path:
    """The first ``keep_bytes`` of ``source`` (an interrupted download), same extension."""
    source = Path(source)
    path = Path(directory) / f"{source.stem}.truncated{source.suffix}"
    with source.open("rb") as handle:
        path.write_bytes(handle.read(keep_bytes))
    return path


def striped_geotiff(
    directory: Path, name: str = "striped.tif", width: int = 1024, height: int = 512
) -> Path:
    """A plain GeoTIFF: EPSG:4326, uint16, strips (not tiled), no compression or overviews."""
    path = Path(directory) / name
    rows, cols = np.mgrid[0:height, 0:width]
    data = ((rows * 37 + cols * 11) % 4096 + 1000).astype("uint16")
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint16",
        "crs": CRS.from_epsg(4326),
        "transform": from_bounds(-180.0, -90.0, 180.0, 90.0, width, height),
        "tiled": False,
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(data, 1)
    return path


def cog(directory: Path, name: str = "cog.tif", size: int = 2048) -> Path:
    """A Cloud-Optimised GeoTIFF (GDAL COG driver): EPSG:3857 world extent, 256x256 deflate
    tiles, internal overviews down to one tile, uint8 with nodata 0."""
    path = Path(directory) / name
    extent = 20037508.342789244
    rows, cols = np.mgrid[0:size, 0:size].astype("float32")
    data = (1 + 127 * (1 + np.sin(rows / 97.0) * np.cos(cols / 131.0))).astype("uint8")
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS.from_epsg(3857),
        "transform": from_bounds(-extent, -extent, extent, extent, size, size),
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with tempfile.TemporaryDirectory() as scratch:
        staging = Path(scratch) / "staging.tif"
        with rasterio.open(staging, "w", **profile) as dataset:
            dataset.write(data, 1)
        rasterio.shutil.copy(
            staging,
            path,
            driver="COG",
            BLOCKSIZE=256,
            COMPRESS="DEFLATE",
            OVERVIEWS="AUTO",
            OVERVIEW_RESAMPLING=Resampling.average.name.upper(),
        )
    return path


def ramp_grid(
    directory: Path, name: str = "ramp.nc", low: float = -3.25, high: float = 41.5, lat: int = 8, lon: int = 16
) -> Path:
    """A CF netCDF-4 float32 grid ``ramp (lat, lon)`` rising from ``low`` (west) to ``high``
    (east) and constant along latitude, so tile 0/0/0, which samples every column, sees exactly
    ``low`` to ``high``."""
    path = Path(directory) / name
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"lat": lat, "lon": lon}
        _lat_lon(root, lat, lon)
        values = np.tile(np.linspace(low, high, lon, dtype="float32"), (lat, 1))
        variable = root.create_variable("ramp", ("lat", "lon"), "float32", data=values, fillvalue=np.float32(-999.0))
        variable.attrs.update({"long_name": "west-east ramp", "units": "1"})
    return path


def ramp_geotiff(
    directory: Path, name: str = "ramp.tif", low: float = -3.25, high: float = 41.5, bands: int = 1,
    width: int = 16, height: int = 8,
) -> Path:
    """A float32 GeoTIFF over the world (EPSG:4326), each band rising from ``low`` (west) to
    ``high`` (east) and constant along latitude, like ``ramp_grid``; nodata -9999."""
    path = Path(directory) / name
    values = np.tile(np.linspace(low, high, width, dtype="float32"), (bands, height, 1))
    profile = {"driver": "GTiff", "width": width, "height": height, "count": bands, "dtype": "float32",
               "crs": CRS.from_epsg(4326), "transform": from_bounds(-180.0, -90.0, 180.0, 90.0, width, height),
               "nodata": -9999.0}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(values)
    return path


# An unnamed Transverse Mercator on an unnamed ellipsoid, as in rio-tiler's `cog_scale.tif`.
_UNNAMED_TRANSVERSE_MERCATOR = (
    'PROJCS["unnamed",GEOGCS["unnamed ellipse",DATUM["unknown",SPHEROID["unnamed",6378137,298.257223563]],'
    'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
    'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",-75],PARAMETER["scale_factor",0.9996],'
    'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'
)


def scaled_local_projection_tiff(directory: Path, name: str = "scaled_tm.tif", pixel: float = 2000.0) -> Path:
    """256 x 256, two int16 bands with per-band scale/offset, in an unnamed projected CRS and no
    overviews. Tile 0/0/0 warps the whole world at the file's own resolution through GDAL's
    block cache: with GDAL's default cache (5% of the host's RAM) a read takes ~1.8 GB here."""
    path = Path(directory) / name
    profile = {"driver": "GTiff", "width": 256, "height": 256, "count": 2, "dtype": "int16", "nodata": -9999,
               "crs": CRS.from_wkt(_UNNAMED_TRANSVERSE_MERCATOR), "transform": from_bounds(
                   400_000, 4_000_000 - 256 * pixel, 400_000 + 256 * pixel, 4_000_000, 256, 256),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}  # fmt: skip
    rows, cols = np.mgrid[0:256, 0:256]
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(np.stack([rows * 3 + cols, rows + cols * 3]).astype("int16"))
        dataset.scales, dataset.offsets = (0.0001, 0.001), (1000.0, 2000.0)
    return path


def large_grid(
    directory: Path,
    lat: int = 7200,
    lon: int = 14400,
    name: str | None = None,
    chunks: tuple[int, int] = (600, 1200),
) -> Path:
    """A large netCDF-4 float32 grid ``analysed_sst (time=1, lat, lon)``, zlib-chunked.

    Written one band of chunk rows at a time, so memory stays at one band (600 x 14,400 x
    4 B, about 35 MB) whatever the size. Values are a smooth field plus seeded noise, quantised to
    ~0.01 K by zeroing low mantissa bits, so the file compresses to about a quarter (the full
    7,200 x 14,400 grid is ~113 MB instead of 415 MB raw; ~7 s to write on 2 cores). The file
    is written under a temporary name and renamed when complete, so an existing file at the
    path with the requested shape is reused instead of rewritten (pass a cache directory to
    keep it between sessions).
    """
    path = Path(directory) / (name or f"large_grid_{lat}x{lon}.nc")
    if _has_grid_shape(path, (1, lat, lon)):
        return path
    chunk_lat, chunk_lon = min(chunks[0], lat), min(chunks[1], lon)
    lats, lons = _centres(lat, -90.0, 90.0), _centres(lon, -180.0, 180.0)
    partial = path.with_name(path.name + f".partial-{os.getpid()}")
    try:
        with h5netcdf.File(partial, "w") as root:
            root.attrs.update({"Conventions": "CF-1.8", "title": "Synthetic large grid"})
            root.dimensions = {"time": 1, "lat": lat, "lon": lon}
            times = root.create_variable(
                "time", ("time",), "int32", data=np.array([FIRST_TIME], dtype="int32")
            )
            times.attrs.update({"units": TIME_UNITS, "standard_name": "time", "axis": "T"})
            _lat_lon(root, lat, lon)
            sst = root.create_variable(
                "analysed_sst",
                ("time", "lat", "lon"),
                "float32",
                chunks=(1, chunk_lat, chunk_lon),
                compression="gzip",
                compression_opts=1,
                shuffle=True,
                fillvalue=np.float32(-999.0),
            )
            sst.attrs.update(
                {
                    "standard_name": "sea_surface_temperature",
                    "units": "kelvin",
                    "long_name": "analysed sea surface temperature",
                }
            )
            for band, start in enumerate(range(0, lat, chunk_lat)):
                stop = min(start + chunk_lat, lat)
                values = _field(lats[start:stop], lons)
                noise = np.random.default_rng(band).standard_normal(values.shape, "float32")
                values += 0.2 * noise
                # Keep 15 of 23 mantissa bits (~0.008 K near 300 K): compressible, still noisy.
                values.view("uint32")[...] &= np.uint32(0xFFFFFF00)
                sst[0, start:stop, :] = values
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _has_grid_shape(path: Path, shape: tuple[int, ...]) -> bool:
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as handle:
            return tuple(handle["analysed_sst"].shape) == shape
    except (OSError, KeyError):
        return False
