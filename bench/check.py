"""Benchmark of the compatibility check: what one check costs, case by case.

For each recorded fixture, each real file of `fixtures/real/` and each generated case: bytes
read and data requests (counted by the data server, and by the check itself), how many times the
file was opened (range reads that start at byte 0), CMR requests, wall seconds and peak RSS (each
case runs in a fresh process), next to the file size. Baselines in the same run: titiler-xarray's fsspec reader (`FsReader`) on the
same netCDF, and rio-tiler reading the COG straight through GDAL's /vsicurl/.

    .venv/bin/python bench/check.py            # all cases (the large grid is cached in bench/.cache)
    .venv/bin/python bench/check.py --quick    # without the 7,200 x 14,400 grid
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from titiler_cmr_compatibility.sample import files  # noqa: E402
from titiler_cmr_compatibility.sample.cmr import FakeCMR  # noqa: E402
from titiler_cmr_compatibility.sample.data import DataServer  # noqa: E402
from titiler_cmr_compatibility.sample.server import LOOPBACK_SETTINGS  # noqa: E402
from tests.support.fixtures import fixtures_dir, load_real_files  # noqa: E402
from tests.support.launch import own_peak_mb, peak_mb  # noqa: E402
from tests.support.world import World, fixture_data_dir  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
GAMSSA = "C2036881735-POCLOUD"
HLS = "C2021957657-LPCLOUD"
FMASK_PATH = (
    "/lp-prod-protected/HLSL30.020/HLS.L30.T15UWP.2024283T165135.v2.0/HLS.L30.T15UWP.2024283T165135.v2.0.Fmask.tif"
)
GAMSSA_PATH = (
    "/podaac-ops-cumulus-protected/GAMSSA_28km-ABOM-L4-GLOB-v01/"
    "20241011120000-ABOM-L4_GHRSST-SSTfnd-GAMSSA_28km-GLOB-v02.0-fv01.0.nc"
)


@dataclass
class Case:
    name: str
    concept_id: str
    path: str  # URL path on the data server
    local_file: Path | None
    check_kwargs: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def _run_check(queue, concept_id, settings_values, check_kwargs) -> None:
    """In a fresh process, so peak RSS is this check's alone."""
    from titiler_cmr_compatibility.check import check_collection, engine_versions
    from titiler_cmr_compatibility.settings import Settings

    engine_versions()
    before = own_peak_mb()
    started = time.monotonic()
    result = check_collection(concept_id, settings=Settings(_env_file=None, **settings_values), **check_kwargs)
    # The check itself runs in a forked child of this process (sandbox.py), waited for here.
    peak = peak_mb()
    queue.put((result.to_record(), time.monotonic() - started, before, peak))


def _run_baseline(queue, kind: str, url: str) -> None:
    """The engines without this tool's reader, for comparison."""
    import rasterio
    from rio_tiler.io import Reader
    from titiler.xarray.io import FsReader

    before = own_peak_mb()
    started = time.monotonic()
    if kind == "fsspec":
        with FsReader(url, variable="analysed_sst", decode_times=False) as reader:
            reader.tile(0, 0, 0)
    elif kind == "no-stride":
        _tile_without_stride(url)
    else:
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), Reader(url) as reader:
            reader.tile(0, 0, 0)
    queue.put((None, time.monotonic() - started, before, own_peak_mb()))


def _tile_without_stride(url: str) -> None:
    """The same reader and tile as the check, but handing titiler-xarray the whole variable."""
    import h5netcdf
    import xarray as xr
    from titiler.xarray.io import Reader

    from titiler_cmr_compatibility.auth import EarthdataAuth
    from titiler_cmr_compatibility.deadline import Deadline
    from titiler_cmr_compatibility.readers import open_remote
    from titiler_cmr_compatibility.settings import Settings
    from titiler_cmr_compatibility.umm import DataLink

    settings = Settings(_env_file=None, **LOOPBACK_SETTINGS)
    remote = open_remote(DataLink(url, "external"), EarthdataAuth(settings), settings, Deadline(600))
    with h5netcdf.File(remote.open(), "r") as h5:
        ds = xr.open_dataset(xr.backends.H5NetCDFStore(h5, lock=False), decode_times=False).squeeze("time", drop=True)
        with Reader(url, variable="analysed_sst", opener=lambda *_a, **_k: ds) as reader:
            reader.tile(0, 0, 0)


def in_child(target, *args):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(queue, *args))
    process.start()
    outcome = queue.get(timeout=900)
    process.join()
    return outcome


def needed_bytes(path: Path | None, group: str | None, variable: str | None) -> int | None:
    """What tile 0/0/0 of `variable` must read at the least: the file's metadata (everything
    that is not dataset storage), the dimension coordinates, and the variable's chunks."""
    if path is None or variable is None:
        return None
    try:
        with h5py.File(path, "r") as h5:
            chosen = (h5[group] if group else h5)[variable]
            stored = {"all": 0, "needed": 0}

            def visit(_name: str, node) -> None:
                if isinstance(node, h5py.Dataset):
                    size = node.id.get_storage_size()
                    stored["all"] += size
                    if node == chosen or node.is_scale:
                        stored["needed"] += size

            h5.visititems(visit)
            return path.stat().st_size - stored["all"] + stored["needed"]
    except (OSError, KeyError):
        return None


def build_cases(world: World, work: Path, quick: bool) -> list[Case]:
    cases = []
    record = world.add_fixture_collection(GAMSSA)
    cases.append(Case("GAMSSA netCDF-4 (fixture, record given)", GAMSSA, GAMSSA_PATH,
                      fixture_data_dir() / GAMSSA_PATH.lstrip("/"), {"collection": record}))  # fmt: skip
    record = world.add_fixture_collection(HLS)
    cases.append(Case("HLS Fmask COG (fixture, record given)", HLS, FMASK_PATH, fixture_data_dir() / FMASK_PATH.lstrip("/"),
                      {"collection": record, "granule_id": "G3263856929-LPCLOUD"}))  # fmt: skip
    generated = [
        ("netCDF-4 grid 90x180", files.netcdf4_grid(work, "grid.nc")),
        ("netCDF-4, scalar crs first", files.netcdf4_grid(work, "scalar.nc", first_var_scalar=True)),
        ("netCDF-4, bounds first", files.netcdf4_grid(work, "bounds.nc", with_bounds=True)),
        ("netCDF-4, packed int16", files.netcdf4_grid(work, "packed.nc", packed=True)),
        ("netCDF-4, data only in a group", files.netcdf4_grid(work, "group.nc", group="g")),
        ("netCDF-4, mixed groups", files.netcdf4_mixed_groups(work)),
        ("netCDF-4 swath (2-D lat/lon)", files.netcdf4_swath(work)),
        ("HDF-EOS5 grid", files.hdfeos5_grid(work)),
        ("netCDF-3", files.netcdf3_grid(work)),
        ("HDF4 signature", files.hdf4_signature(work)),
        ("ZIP", files.zip_archive(work)),
        ("text/CSV", files.text_file(work)),
        ("truncated netCDF-4", files.truncated(work, files.netcdf4_grid(work, "whole.nc", lat=360, lon=720))),
        ("striped GeoTIFF", files.striped_geotiff(work)),
        ("COG 2048x2048", files.cog(work)),
        ("netCDF-4 2400x4800 float32", files.large_grid(CACHE, lat=2400, lon=4800)),
    ]
    if not quick:
        generated.append(("netCDF-4 7200x14400 float32", files.large_grid(CACHE)))
    generated += [
        ("netCDF-4 SSMIS-like, time offset first", files.time_offset_grid(work)),
        ("netCDF-4 IMERG-like /Grid, julian time", files.group_grid_lon_lat(work)),
        ("netCDF-4 IMERG-like /Grid, standard time", files.group_grid_lon_lat(work, "imerg_std.nc", "standard")),
        ("GeoTIFF 256x256 in an unnamed TM", files.scaled_local_projection_tiff(work)),
    ]
    generated += [(f"real: {entry['file'][:36]}", fixtures_dir() / "real" / entry["file"]) for entry in load_real_files()]
    for name, path in generated:
        concept_id = world.publish(path)
        cases.append(Case(name, concept_id, world.data_path(concept_id), path))
    concept_id = world.publish(files.netcdf4_grid(work, "hang.nc"))
    hang_path = world.data_path(concept_id)
    world.data.hang(hang_path)
    cases.append(Case("hanging host, timeout 10 s", concept_id, hang_path, None, {"timeout": 10}))
    return cases


def opens(world: World, path: str) -> int:
    """Range reads that start at byte 0: each is one open of the file."""
    return sum(
        1 for request in world.data.requests
        if request.path == path and request.method == "GET" and request.headers.get("Range", "").startswith("bytes=0-")
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="skip the 7,200 x 14,400 grid")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    header = (
        f"{'case':<42} {'verdict':<24} {'size':>12} {'read':>12} {'read%':>6} {'needed':>11} "
        f"{'req':>4} {'opens':>5} {'cmr':>4} {'s':>6} {'peak MB':>8} {'+MB':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp, FakeCMR([], {}, strict=False) as cmr, DataServer(fixture_data_dir()) as data:
        world = World(cmr, data)
        cases = build_cases(world, Path(tmp), args.quick)
        settings = {"cmr_url": cmr.search_url, "access_type": "external", "check_timeout": 120, **LOOPBACK_SETTINGS}
        print(header)
        print("-" * len(header))
        for case in cases:
            data.reset_stats()
            before_requests = len(data.requests)
            record, seconds, rss_before, rss_peak = in_child(
                _run_check, case.concept_id, {**settings, **case.settings}, case.check_kwargs
            )
            served = data.stats(case.path)
            verdict = ("ok " + (record["backend"] or "")) if record["tiling_compatible"] else record["incompatible_reason"]
            size = record["file_size"] or (case.local_file.stat().st_size if case.local_file else 0)
            stored = needed_bytes(case.local_file, record["group"], record["variable"])
            percent = f"{100 * served.bytes_sent / size:5.1f}" if size else "-"
            opened = opens(world, case.path) if len(data.requests) > before_requests else 0
            print(
                f"{case.name:<42} {verdict:<24} {size:>12,} {served.bytes_sent:>12,} {percent:>6} "
                f"{stored if stored is not None else '-':>11} {served.requests:>4} {opened:>5} "
                f"{record['cmr_requests']:>4} {seconds:>6.2f} {rss_peak:>8.0f} {rss_peak - rss_before:>6.0f}"
            )
            assert served.bytes_sent == (record["bytes_read"] or 0) or record["incompatible_reason"] == "timeout", (
                "the check's own byte count disagrees with the server's"
            )
        print()
        print("Baselines, same run (same files, same server):")
        baselines = [
            ("GAMSSA via titiler-xarray FsReader (fsspec)", "fsspec", GAMSSA_PATH),
            ("HLS Fmask via rio-tiler Reader (/vsicurl/)", "vsicurl", FMASK_PATH),
        ]
        large = [case for case in cases if case.name.startswith("netCDF-4 7200")]
        if large:
            baselines.append(("7200x14400 grid without the stride", "no-stride", large[0].path))
        for name, kind, path in baselines:
            data.reset_stats()
            _, seconds, rss_before, rss_peak = in_child(_run_baseline, kind, data.url + path)
            served = data.stats(path)
            print(
                f"{name:<48} read {served.bytes_sent:>12,} in {served.requests:>3} requests, "
                f"{seconds:6.2f} s, peak {rss_peak:6.0f} MB (+{rss_peak - rss_before:.0f})"
            )


if __name__ == "__main__":
    main()
