"""Hostile inputs for the check: data hosts, files and records that try to leak a secret, blow
the memory up, crash or hang the process, or get a wrong reason out of it.

A `Case` stages one collection on a `World` (the fake CMR and data host on 127.0.0.1) and says
which reasons are right for it. `run_case` checks it the way a user does, through the command
line in a process of its own (`tests.support.launch`), and measures what the issue asks of every
case: the reason, the wall time, the peak RSS, the exit, and every place a secret could show up
(stdout, stderr, the result, and the requests a host outside the token's allow-list received).
`tests/test_hostile.py` asserts on each case; `bench/reliability.py` prints the table.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import rasterio
from rasterio.transform import from_bounds

from titiler_cmr_compatibility.sample import files
from titiler_cmr_compatibility.sample.cmr import FakeCMR, cloud_links
from titiler_cmr_compatibility.sample.data import DataServer
from titiler_cmr_compatibility.sample.server import Request, Response, Stream

from .urs_server import FakeURS
from .world import World, fixture_data_dir

ROOT = Path(__file__).resolve().parents[2]

# The secrets in play. None may appear in anything the check prints or writes.
TOKEN = "eyJhostileTOKEN.4f3c9a7e1b2d8c6f0a5e.9b8d7c6e5f4a3b2c"
PASSWORD = "hostile-Pa55word-71c3"
SIGNATURE = "f00dfeed6a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEHostileSessionToken0123456789abcdef"
SECRETS = {"token": TOKEN, "password": PASSWORD, "signature": SIGNATURE, "session token": SESSION_TOKEN}

CHECK_TIMEOUT = 15.0  # the check's own limit in every case
GRACE = 25.0  # process start-up and imports (~3 s), the engines' warm-up, and a busy machine
PEAK_LIMIT_MB = 1024.0  # a check in a 1,024 MB worker
PROTECTED = "/test-protected/"  # where World.publish puts granules; the data host wants the token there

Reasons = frozenset[str]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # secrets, memory, exit, reasons, records
    stage: Callable[[World, Path], str]  # publishes the collection, returns its concept id
    reasons: Reasons  # the right outcomes: incompatible reasons, or "compatible"
    environment: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    case: Case
    reason: str | None
    exit_code: int
    wall: float
    peak_mb: float
    leaks: list[str]
    result: dict[str, Any] | None
    stderr: str

    @property
    def failures(self) -> list[str]:
        """What is wrong with this outcome; empty when the case held."""
        problems = []
        if self.reason not in self.case.reasons:
            detail = (self.result or {}).get("error_message") or self.stderr[-400:]
            problems.append(f"reason {self.reason!r}, expected one of {sorted(self.case.reasons)}: {detail}")
        if self.exit_code != 0:
            problems.append(f"exit code {self.exit_code}" + (" (a signal)" if self.exit_code < 0 else ""))
        if self.wall > CHECK_TIMEOUT + GRACE:
            problems.append(f"{self.wall:.1f} s, more than {CHECK_TIMEOUT + GRACE:.0f} s")
        if self.peak_mb > PEAK_LIMIT_MB:
            problems.append(f"peak RSS {self.peak_mb:.0f} MB, more than {PEAK_LIMIT_MB:.0f} MB")
        problems.extend(f"secret leaked: {leak}" for leak in self.leaks)
        return problems


# ------------------------------------------------------------------------------ the world
@contextmanager
def hostile_world() -> Iterator[World]:
    """A fake CMR and data host whose protected paths want TOKEN, as Earthdata's do, and two
    Earthdata logins for password cases: one that answers with a web page, one that refuses."""
    with (FakeCMR([], {}, strict=False) as cmr, DataServer(fixture_data_dir()) as data,
          FakeURS("alice", PASSWORD, TOKEN, html=True) as urs_html, FakeURS("alice", "other", TOKEN) as urs_401):
        data.require_bearer(PROTECTED, TOKEN)
        world = World(cmr, data)
        world.urls = {"urs_html": urs_html.url, "urs_401": urs_401.url}
        yield world


def run_case(world: World, case: Case, workdir: Path) -> Outcome:
    """Stage the case, run `check --json` on it in a process of its own and measure it."""
    concept_id = stage(world, case, workdir)
    measure = workdir / "measure.json"
    environment = subprocess_environment(world, {"LAUNCH_MEASURE_FILE": str(measure), **case.environment})
    command = [sys.executable, "-m", "tests.support.launch", "check", "--collection-id", concept_id, "--json"]
    started = time.monotonic()
    try:
        process = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=workdir,
                                 timeout=CHECK_TIMEOUT + GRACE * 3)
        exit_code, stdout, stderr = process.returncode, process.stdout, process.stderr
    except subprocess.TimeoutExpired as expired:
        exit_code, stdout, stderr = -9, _text(expired.stdout), _text(expired.stderr)
    wall = time.monotonic() - started
    try:
        result = json.loads(stdout)
    except ValueError:
        result = None
    reason = None
    if result is not None:
        reason = "compatible" if result.get("tiling_compatible") else result.get("incompatible_reason")
    peak = json.loads(measure.read_text())["peak_mb"] if measure.exists() else float("nan")
    leaks = [f"{name} in {where}" for where, text in (("stdout", stdout), ("stderr", stderr))
             for name, secret in SECRETS.items() if secret in text]
    # Every path a case stages holds its collection's short name (World.publish: TEST_<number>).
    own = f"/TEST_{concept_id[1:].split('-')[0]}/"
    leaks += [f"token sent to {request.headers.get('Host')}{request.path}" for request in world.data.requests
              if (own in request.path or "/TEST_" not in request.path) and "Authorization" in request.headers
              and not request.headers.get("Host", "").startswith("127.0.0.1")]
    return Outcome(case, reason, exit_code, wall, peak, leaks, result, stderr)


def stage(world: World, case: Case, workdir: Path) -> str:
    """Publish the case's collection (its files go in `workdir`); returns its concept id."""
    workdir.mkdir(parents=True, exist_ok=True)
    return case.stage(world, workdir)


def subprocess_environment(world: World, extra: dict[str, str]) -> dict[str, str]:
    """What a process checking this world reads: its servers, the token, the cases' limits, and
    nothing of the developer's own credentials or endpoints. `extra` may name the world's other
    servers as `{urs_html}`."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("EARTHDATA_", "CMR_", "AWS_"))}
    return {
        **inherited,
        **world.environment(),
        "EARTHDATA_TOKEN": TOKEN,
        "CHECK_TIMEOUT": str(CHECK_TIMEOUT),
        "DATA_REQUEST_TIMEOUT": "5",
        "CMR_RETRIES": "2",
        "CMR_BACKOFF": "0.05",
        "CMR_TIMEOUT": "5",
        "PYTHONPATH": str(ROOT),
        **{name: value.format(**world.urls) for name, value in extra.items()},
    }


def run_cases(world: World, cases: list[Case], workdir: Path, workers: int = 2) -> list[Outcome]:
    """Every case, `workers` at a time (staging is quick; the checks run in their own processes)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda item: run_case(world, item[1], workdir / f"case{item[0]:03d}"), enumerate(cases)))


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


# ----------------------------------------------------------------------- staging helpers
def _grid(world: World, workdir: Path, **options: Any) -> str:
    return world.publish(files.netcdf4_grid(workdir, **options))


def _served(answer: Callable[[World, str, Path], Callable[[Request], Response | None]], make=files.netcdf4_grid):
    """Stage a good file whose host answers with `answer(world, path)` instead."""

    def stage(world: World, workdir: Path) -> str:
        granule = make(workdir)
        concept_id = world.publish(granule)
        path = world.data_path(concept_id)
        world.data.answer_where(path, answer(world, path, granule))
        return concept_id

    return stage


def _after_first(then: Callable[[World], Callable[[Request], Response | None]]):
    """The host serves reads from the start of the file (the format sniff, the superblock), then
    answers `then`: an open that fails partway."""

    def answer(world: World, path: str, granule: Path) -> Callable[[Request], Response | None]:
        fallback = then(world)
        return lambda request: (world.data.handle(request) if request.headers.get("Range", "bytes=0-").startswith("bytes=0-")
                                else fallback(request))

    return answer


def _status(status: int, body: str = "", headers: dict[str, str] | None = None):
    return lambda world, *_: (lambda request: Response.text(body or f"HTTP {status}", status, headers))


def _hang(world: World, *_: Any) -> Callable[[Request], None]:
    return lambda request: None if world.data.wait_for_stop() else None


def _drop(world: World, *_: Any) -> Callable[[Request], None]:
    return lambda request: None


def _short_body(world: World, *_: Any) -> Callable[[Request], Response]:
    """Promises a megabyte, sends ten bytes, closes."""
    return lambda request: Response(206, Stream([b"\x89HDF\r\n\x1a\n\0\0"]), {
        "Content-Length": str(2**20), "Content-Range": f"bytes 0-{2**20 - 1}/{2**30}"})


def _endless(status: int):
    """The bytes asked for, then zeros forever, under a Content-Length of 10^12: 206 with the
    right Content-Range, or 200 for a host that ignores Range."""

    def answer(world: World, path: str, granule: Path) -> Callable[[Request], Response]:
        content = granule.read_bytes()

        def respond(request: Request) -> Response:
            first, _, last = request.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
            start = int(first) if status == 206 else 0
            stop = int(last) + 1 if last and status == 206 else len(content)
            body = itertools.chain([content[start:stop]], itertools.repeat(b"\0" * 65536))
            headers = {"Content-Length": str(10**12)}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(content)}"
            return Response(status, Stream(body), headers)

        return respond

    return answer


def _trickle(world: World, *_: Any) -> Callable[[Request], Response]:
    """One byte a second, forever: every socket read gets its byte in time."""

    def body() -> Iterator[bytes]:
        while not world.data.wait_for_stop(1.0):
            yield b"\0"

    return lambda request: Response(206, Stream(body()), {"Content-Range": "bytes 0-1023/1048576"})


def _redirect(to: Callable[[World, str], str]):
    return lambda world, path, *_: (lambda request: Response.text("Found", 302, {"Location": to(world, path)}))


def _echo_secrets(world: World, *_: Any) -> Callable[[Request], Response]:
    """A 500 whose body repeats the request's headers and URL (the token, a signature)."""
    return lambda request: Response.text(f"error for {request.target}: {dict(request.headers)}", 500)


def _foreign(world: World, path: str) -> str:
    """The same server under another name: a host the token must not go to."""
    return f"http://localhost:{world.data.port}{path}"


def _with_urls(make_urls: Callable[[World, str], list[tuple[str, str]]], make=files.netcdf4_grid):
    """Stage a good file under granule links made from its URL; an http(s) GET DATA link gets its
    s3 twin, as cloud DAACs' records have (titiler-cmr 1.1.2 takes a file only with both)."""

    def stage(world: World, workdir: Path) -> str:
        concept_id = world.publish(make(workdir))
        url = world.data.url_for(world.data_path(concept_id))
        granule = world.cmr.granules[concept_id][0]
        links = [pair for link, kind in make_urls(world, url)
                 for pair in (cloud_links(link) if kind == "GET DATA" and link.startswith("http") else [(link, kind)])]
        granule["umm"]["RelatedUrls"] = [{"URL": link, "Type": kind} for link, kind in links]
        return concept_id

    return stage


def _granule_edit(edit: Callable[[dict], Any]):
    """Stage a good file, then edit its granule record."""

    def stage(world: World, workdir: Path) -> str:
        concept_id = _grid(world, workdir)
        edit(world.cmr.granules[concept_id][0])
        return concept_id

    return stage


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _foreign_open(world: World, workdir: Path) -> str:
    """Open data (no token wanted) on a host outside the allow-list."""
    granule = files.netcdf4_grid(workdir, "open.nc")
    concept_id = world.publish(granule)
    path = world.data_path(concept_id).replace(PROTECTED, "/open/")
    world.data.add(path, granule)
    links = cloud_links(_foreign(world, path))
    world.cmr.granules[concept_id][0]["umm"]["RelatedUrls"] = [{"URL": link, "Type": kind} for link, kind in links]
    return concept_id


def _collection_edit(edit: Callable[[dict], Any]):
    """Stage a good file, then edit its collection record."""

    def stage(world: World, workdir: Path) -> str:
        concept_id = _grid(world, workdir)
        edit(next(item for item in world.cmr.collections if item["meta"]["concept-id"] == concept_id))
        return concept_id

    return stage


# -------------------------------------------------------------------------- hostile files
def _named_with_secret(workdir: Path) -> Path:
    """Variable, group, dimension and attribute names carrying the token."""
    path = workdir / "named.nc"
    with h5netcdf.File(path, "w") as root:
        root.attrs["title"] = f"made with {TOKEN}"
        group = root.create_group(f"grp_{TOKEN}")
        for target in (root, group):
            target.dimensions = {"lat": 30, "lon": 60}
            target.create_variable("lat", ("lat",), "float32", data=np.linspace(-87, 87, 30, dtype="float32"))
            target.create_variable("lon", ("lon",), "float32", data=np.linspace(-177, 177, 60, dtype="float32"))
            variable = target.create_variable(f"sst_{TOKEN}", ("lat", "lon"), "float32", data=np.ones((30, 60), "float32"))
            variable.attrs["long_name"] = TOKEN
    return path


def _declared_huge(workdir: Path) -> Path:
    """386 KB on disk, a 10^6 x 10^6 float32 variable declared (4 million chunks, none written)."""
    path = workdir / "declared_huge.nc"
    size = 10**6
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"lat": size, "lon": size}
        for name, low, high in (("lat", -90, 90), ("lon", -180, 180)):
            root.create_variable(name, (name,), "float32", data=np.linspace(low, high, size, dtype="float32"),
                                 chunks=(size,), compression="gzip")
        root.create_variable("sst", ("lat", "lon"), "float32", chunks=(489, 489), compression="gzip",
                             fillvalue=np.float32(-999))
    return path


def _few_huge_chunks_declared(workdir: Path) -> Path:
    """A 200,000 x 200,000 grid in 1 x 200,000 chunks: a strided read touches every chunk row."""
    path = workdir / "row_chunks.nc"
    size = 200_000
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"lat": size, "lon": size}
        for name, low, high in (("lat", -90, 90), ("lon", -180, 180)):
            root.create_variable(name, (name,), "float64", data=np.linspace(low, high, size), chunks=(size,),
                                 compression="gzip")
        root.create_variable("sst", ("lat", "lon"), "float32", chunks=(1, size), compression="gzip")
    return path


def _deflate_bomb(workdir: Path) -> Path:
    """One deflate chunk of ~4 GiB of zeros, 4 MB on disk."""
    path = workdir / "bomb.nc"
    shape = (32768, 32767)  # HDF5 chunks are below 4 GiB
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"lat": shape[0], "lon": shape[1]}
        root.create_variable("lat", ("lat",), "float32", data=np.linspace(-90, 90, shape[0], dtype="float32"))
        root.create_variable("lon", ("lon",), "float32", data=np.linspace(-180, 180, shape[1], dtype="float32"))
        root.create_variable("sst", ("lat", "lon"), "float32", chunks=shape, compression="gzip")
    with h5py.File(path, "r+") as raw:
        raw["sst"].id.write_direct_chunk((0, 0), _zeros_deflated(shape[0] * shape[1] * 4))
    return path


def _zeros_deflated(size: int) -> bytes:
    """A zlib stream of `size` zero bytes, built from one flushed block repeated (seconds, not
    the minute that compressing 4 GiB takes)."""
    block = 64 * 2**20
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    middle = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    whole, rest = divmod(size, block)
    last = compressor.compress(bytes(rest)) + compressor.flush(zlib.Z_FULL_FLUSH) if rest else b""
    checksum = 1
    for length in [block] * whole + ([rest] if rest else []):
        checksum = zlib.adler32(bytes(length), checksum)
    return first + middle * (whole - 1) + last + b"\x03\x00" + checksum.to_bytes(4, "big")


def _many_groups(count: int):
    def make(workdir: Path) -> Path:
        path = workdir / f"groups_{count}.nc"
        with h5py.File(path, "w") as raw:
            for index in range(count):
                raw.create_group(f"g{index:06d}")
        return path

    return make


def _many_variables(workdir: Path) -> Path:
    path = workdir / "variables.nc"
    with h5netcdf.File(path, "w") as root:
        root.dimensions = {"lat": 4, "lon": 8}
        root.create_variable("lat", ("lat",), "float32", data=np.linspace(-60, 60, 4, dtype="float32"))
        root.create_variable("lon", ("lon",), "float32", data=np.linspace(-160, 160, 8, dtype="float32"))
        for index in range(5000):
            root.create_variable(f"v{index:05d}", ("lat", "lon"), "float32", data=np.zeros((4, 8), "float32"))
    return path


def _only(kind: str):
    """A netCDF-4 whose only variables are strings, or scalars, or 1-D."""

    def make(workdir: Path) -> Path:
        path = workdir / f"only_{kind}.nc"
        with h5netcdf.File(path, "w") as root:
            root.dimensions = {"n": 5}
            if kind == "strings":
                root.create_variable("names", ("n",), h5py.string_dtype(), data=np.array(["a"] * 5, dtype=object))
            elif kind == "scalars":
                root.create_variable("crs", (), "int32", data=np.int32(0))
                root.create_variable("version", (), "float32", data=np.float32(1))
            else:
                root.create_variable("series", ("n",), "float32", data=np.arange(5, dtype="float32"))
        return path

    return make


def _tiny_grid(workdir: Path) -> Path:
    return files.netcdf4_grid(workdir, "tiny.nc", lat=1, lon=1, time=0)


def _all_fill(workdir: Path) -> Path:
    path = files.netcdf4_grid(workdir, "all_fill.nc", time=0)
    with h5py.File(path, "r+") as raw:
        raw["sst"][...] = -999.0
    return path


def _nan_grid(workdir: Path) -> Path:
    path = files.netcdf4_grid(workdir, "nan.nc", time=0)
    with h5py.File(path, "r+") as raw:
        raw["sst"][...] = np.nan
    return path


def _odd_names(workdir: Path) -> Path:
    return files.netcdf4_grid(workdir, "odd.nc", variables=("sea surface temp ü&x=1#%2F?",), time=0)


def _geotiff(workdir: Path, name: str, width: int, height: int, crs: str | None = "EPSG:4326",
             data: np.ndarray | None = None, **profile: Any) -> Path:
    path = workdir / name
    options = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8",
               "transform": from_bounds(-180, -90, 180, 90, width, height), **profile}
    if crs:
        options["crs"] = crs
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **options) as raster:
        if data is not None:
            raster.write(data, 1)
    return path


def _sparse_huge_tiff(workdir: Path) -> Path:
    """200,000 x 100,000 pixels declared, tiled and sparse: kilobytes on disk, no overviews."""
    with rasterio.Env(SPARSE_OK=True):
        return _geotiff(workdir, "huge.tif", 200_000, 100_000, tiled=True, blockxsize=512, blockysize=512,
                        compress="deflate", SPARSE_OK=True)


def _tiff_without_crs(workdir: Path) -> Path:
    return _geotiff(workdir, "nocrs.tif", 256, 128, crs=None, data=np.full((128, 256), 7, "uint8"))


def _tiff_bomb(workdir: Path) -> Path:
    """One 32,768 x 32,768 deflate strip of zeros (1 GiB inflated) in a 1 MB file."""
    return _geotiff(workdir, "bomb.tif", 32768, 32768, tiled=True, blockxsize=32768, blockysize=32768,
                    compress="deflate", data=np.zeros((32768, 32768), "uint8"))


def _bytes(content: bytes, name: str):
    def make(workdir: Path) -> Path:
        path = workdir / name
        path.write_bytes(content)
        return path

    return make


def _cached(make: Callable[[Path], Path], name: str) -> Callable[[Path], Path]:
    """Files that take seconds to make are made once per machine user and kept (as `name`)."""

    def cached(workdir: Path) -> Path:
        cache = Path(tempfile.gettempdir()) / f"titiler-cmr-compat-hostile-{os.getuid()}"
        cache.mkdir(exist_ok=True)
        final = cache / name
        if not final.exists():
            with tempfile.TemporaryDirectory(dir=cache) as scratch:
                os.replace(make(Path(scratch)), final)  # atomic: a concurrent run sees all or nothing
        return final

    return cached


def _file(make: Callable[[Path], Path], **publish: Any) -> Callable[[World, Path], str]:
    return lambda world, workdir: world.publish(make(workdir), **publish)


# ---------------------------------------------------------------------------- CMR faults
def _cmr(fault: Callable[[FakeCMR], None]) -> Callable[[World, Path], str]:
    """A good collection whose granule search meets `fault`."""

    def stage(world: World, workdir: Path) -> str:
        concept_id = _grid(world, workdir)
        fault(world.cmr, concept_id)
        return concept_id

    return stage


def _cmr_answer(answer: Callable[[Request], Response | None]):
    return lambda cmr, concept_id: cmr.answer_where(f"collection_concept_id={concept_id}", answer)


def _redirect_chain(hops: int):
    """The data host redirects to a foreign host, which redirects to itself `hops - 1` times and
    then serves the protected file: reqwest puts the token back on a foreign hop that stays on
    its host, unless it was never given."""

    def stage(world: World, workdir: Path) -> str:
        granule = files.netcdf4_grid(workdir)
        concept_id = world.publish(granule)
        path = world.data_path(concept_id)
        final = path.replace(PROTECTED, PROTECTED + "moved/")
        world.data.add(final, granule)
        stops = [path] + [path.replace(PROTECTED, f"{PROTECTED}hop{index}/") for index in range(1, hops)]
        for here, there in zip(stops, stops[1:] + [final]):
            world.data.answer_where(here, lambda request, there=there: Response.text("Found", 302, {"Location": _foreign(world, there)}))
        return concept_id

    return stage


def _login_redirect(world: World, workdir: Path) -> str:
    concept_id = _grid(world, workdir)
    world.data.login_redirect(world.data_path(concept_id))
    return concept_id


# ----------------------------------------------------------------------------- the cases
UNREADABLE = frozenset({"data_unavailable"})
REFUSED = frozenset({"data_unavailable", "failed_to_extract_url"})
COMPATIBLE = frozenset({"compatible"})
FORBIDDEN = frozenset({"forbidden"})
TIMEOUT = frozenset({"timeout"})
NOT_OPENED = frozenset({"cant_open_file", "unsupported_format"})
TOO_BIG = frozenset({"tile_generation_failed"})
UNTAKEN = frozenset({"failed_to_extract_url"})  # rendered, but titiler-cmr cannot take the granule's file


def _case(kind: str, name: str, stage: Callable[[World, Path], str], reasons: Reasons, **environment: str) -> Case:
    return Case(name, kind, stage, reasons, environment)


CASES: list[Case] = [
    # Secrets: the token goes to Earthdata hosts only, and nothing that comes out carries one.
    _case("secrets", "token host sees the token, data compatible", _grid, COMPATIBLE),
    _case("secrets", "open data on a host outside the allow-list", _foreign_open, COMPATIBLE),
    _case("secrets", "protected data on a host outside the allow-list", _with_urls(lambda w, url: [(_foreign(w, url.removeprefix(w.data.url)), "GET DATA")]), FORBIDDEN),
    _case("secrets", "instance metadata link", _with_urls(lambda w, url: [("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "GET DATA")]), REFUSED),
    _case("secrets", "private address link", _with_urls(lambda w, url: [("http://10.0.0.1/granule.nc", "GET DATA")]), REFUSED),
    _case("secrets", "IPv6 link-local link", _with_urls(lambda w, url: [("http://[fe80::1]/granule.nc", "GET DATA")]), REFUSED),
    _case("secrets", "IPv4-mapped metadata address", _with_urls(lambda w, url: [("http://[::ffff:169.254.169.254]/latest/meta-data/", "GET DATA")]), REFUSED),
    _case("secrets", "s3credentials on a foreign host", _with_urls(lambda w, url: [(url, "GET DATA"), (f"http://localhost:{w.data.port}/s3credentials", "VIEW RELATED INFORMATION")]), COMPATIBLE),
    _case("secrets", "redirect to a foreign host", _redirect_chain(hops=1), FORBIDDEN),
    _case("secrets", "redirect chain on a foreign host", _redirect_chain(hops=3), FORBIDDEN),
    _case("secrets", "redirect to the metadata service", _served(_redirect(lambda w, path: "http://169.254.169.254/latest/meta-data/")), REFUSED),
    _case("secrets", "redirect to a private address", _served(_redirect(lambda w, path: "http://192.168.0.1/granule.nc")), REFUSED),
    _case("secrets", "names carry the token", _file(_named_with_secret), COMPATIBLE),
    _case("secrets", "file name carries the token", _file(lambda d: files.netcdf4_grid(d, f"{TOKEN}.nc")), COMPATIBLE),
    _case("secrets", "user and password in the data URL", _with_urls(lambda w, url: [(url.replace("http://", f"http://alice:{PASSWORD}@"), "GET DATA")]), COMPATIBLE | FORBIDDEN),
    # titiler-cmr 1.1.2 matches DataGranule's file names against the whole link, query included:
    # it leaves the https link out, and the file without it (Granule.get_assets raises).
    _case("secrets", "signed query string in the data URL", _with_urls(lambda w, url: [(f"{url}?X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={SESSION_TOKEN}&X-Amz-Credential=ASIAHOSTILE0000000000", "GET DATA")]), UNTAKEN),
    _case("secrets", "signed URL that fails", _with_urls(lambda w, url: [(f"{url}.missing?X-Amz-Signature={SIGNATURE}&X-Amz-Security-Token={SESSION_TOKEN}", "GET DATA")]), UNREADABLE),
    _case("secrets", "error body echoes the request", _served(_echo_secrets), UNREADABLE),
    _case("secrets", "401 echoing the token", _served(lambda w, p, _: lambda r: Response.text(f"bad token {r.headers.get('Authorization')}", 401, {"WWW-Authenticate": f"Bearer error={TOKEN}"})), FORBIDDEN),
    _case("secrets", "short name carries the token", _granule_edit(lambda g: g["umm"]["CollectionReference"].update(ShortName=TOKEN)), COMPATIBLE),
    _case("secrets", "password login to a URS answering a page", _grid, FORBIDDEN,
          EARTHDATA_TOKEN="", EARTHDATA_USERNAME="alice", EARTHDATA_PASSWORD=PASSWORD, URS_URL="{urs_html}"),
    _case("secrets", "password login refused", _grid, FORBIDDEN,
          EARTHDATA_TOKEN="", EARTHDATA_USERNAME="alice", EARTHDATA_PASSWORD=PASSWORD, URS_URL="{urs_401}"),

    # Memory: every read capped by what was asked, sizes judged before reading.
    _case("memory", "206: the bytes asked for, then no end", _served(_endless(206)), COMPATIBLE),
    _case("memory", "200 ignoring Range, no end", _served(_endless(200)), frozenset({"cant_open_file"})),
    _case("memory", "COG: the bytes asked for, then no end", _served(_endless(206), make=files.cog), COMPATIBLE),
    _case("memory", "10^6 x 10^6 variable declared", _file(_cached(_declared_huge, "declared_huge.nc")), TOO_BIG),
    _case("memory", "200,000-row chunk grid", _file(_cached(_few_huge_chunks_declared, "row_chunks.nc")), TOO_BIG),
    _case("memory", "4 GiB deflate bomb", _file(_cached(_deflate_bomb, "bomb.nc")), TOO_BIG),
    _case("memory", "1 GiB GeoTIFF deflate block", _file(_cached(_tiff_bomb, "bomb.tif"), formats=("GeoTIFF",)), TOO_BIG),
    _case("memory", "sparse 200,000 x 100,000 GeoTIFF", _file(_cached(_sparse_huge_tiff, "huge.tif"), formats=("GeoTIFF",)), COMPATIBLE | TOO_BIG),
    _case("memory", "5,000 variables", _file(_cached(_many_variables, "variables.nc")), TIMEOUT),  # h5py's names are O(n): minutes
    _case("memory", "CMR granule search answers forever", _cmr(_cmr_answer(lambda r: Response(200, Stream(itertools.repeat(b" " * 65536))))), frozenset({"cmr_error"})),
    _case("memory", "CMR granule record of 20 MB", _granule_edit(lambda g: g["umm"].update(Padding="x" * 20_000_000)), COMPATIBLE),

    # Exit: files closed on every path, a clean exit, in time.
    _case("exit", "first read, then 500", _served(_after_first(_status(500))), UNREADABLE),
    _case("exit", "first read, then the host stalls", _served(_after_first(_hang)), TIMEOUT | UNREADABLE),
    _case("exit", "first read, then connections drop", _served(_after_first(_drop)), UNREADABLE),
    _case("exit", "first read, then a short body", _served(_after_first(_short_body)), UNREADABLE | NOT_OPENED),
    _case("exit", "first read, then one byte a second", _served(_after_first(_trickle)), TIMEOUT | UNREADABLE),
    _case("exit", "COG: first read, then 500", _served(_after_first(_status(500)), make=files.cog), UNREADABLE | frozenset({"tile_generation_failed"})),
    _case("exit", "COG: first read, then the host stalls", _served(_after_first(_hang), make=files.cog), TIMEOUT | UNREADABLE | frozenset({"tile_generation_failed"})),
    _case("exit", "host stalls from the start", _served(_hang), TIMEOUT | UNREADABLE),
    _case("exit", "one byte a second from the start", _served(_trickle), TIMEOUT | UNREADABLE),
    _case("exit", "100,000 groups", _file(_cached(_many_groups(100_000), "groups.nc")), frozenset({"cant_extract_variables", "group_structure", "timeout"})),
    _case("exit", "truncated netCDF-4", _file(lambda d: files.truncated(d, files.netcdf4_grid(d, chunks=(1, 30, 60)), keep_bytes=20_000)), NOT_OPENED),
    _case("exit", "truncated COG", _file(lambda d: files.truncated(d, files.cog(d), keep_bytes=1_500), formats=("GeoTIFF",)), NOT_OPENED | TOO_BIG),
    _case("exit", "CMR stalls on the granule search", _cmr(lambda cmr, cid: cmr.hang(f"collection_concept_id={cid}")), frozenset({"cmr_error", "timeout"})),

    # Reasons: each failure named for what it is.
    _case("reasons", "HTTP 500 always", _served(_status(500)), UNREADABLE),
    _case("reasons", "HTTP 503 with a Retry-After of a day", _served(_status(503, headers={"Retry-After": "86400"})), UNREADABLE),
    _case("reasons", "HTTP 429 always", _served(_status(429)), UNREADABLE),
    _case("reasons", "HTTP 404", _served(_status(404)), UNREADABLE),
    _case("reasons", "HTTP 410", _served(_status(410)), UNREADABLE),
    _case("reasons", "HTTP 401", _served(_status(401)), FORBIDDEN),
    _case("reasons", "HTTP 403", _served(_status(403)), FORBIDDEN),
    _case("reasons", "a wrong token, redirected to the login page", _login_redirect, FORBIDDEN, EARTHDATA_TOKEN="not-the-token"),
    _case("reasons", "login page served as the file", _file(_bytes(files.html_login_page, "granule.nc")), FORBIDDEN),
    _case("reasons", "redirect loop", _served(_redirect(lambda w, path: w.data.url + path)), UNREADABLE),
    _case("reasons", "connection refused", _with_urls(lambda w, url: [(f"http://127.0.0.1:{_closed_port()}/granule.nc", "GET DATA")]), UNREADABLE),
    _case("reasons", "TLS to a plain HTTP host", _with_urls(lambda w, url: [(url.replace("http://", "https://"), "GET DATA")]), UNREADABLE),
    _case("reasons", "connection dropped every time", _served(_drop), UNREADABLE),
    _case("reasons", "empty file", _file(_bytes(b"", "empty.nc")), NOT_OPENED | UNREADABLE),
    _case("reasons", "random bytes named .nc", _file(_bytes(np.random.default_rng(7).bytes(50_000), "random.nc")), NOT_OPENED),
    _case("reasons", "HDF5 signature, then garbage", _file(_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 100, "garbage.h5")), NOT_OPENED),
    _case("reasons", "TIFF signature, then garbage", _file(_bytes(b"II*\x00" + bytes(range(256)) * 100, "garbage.tif"), formats=("GeoTIFF",)), NOT_OPENED),
    _case("reasons", "JSON served as data", _file(_bytes(b'{"error": "maintenance"}', "granule.nc")), NOT_OPENED),
    _case("reasons", "zip archive", _file(files.zip_archive, formats=("ZIP",)), frozenset({"unsupported_format"})),
    _case("reasons", "only string variables", _file(_only("strings")), frozenset({"cant_extract_variables"})),
    _case("reasons", "only scalar variables", _file(_only("scalars")), frozenset({"cant_extract_variables"})),
    _case("reasons", "only 1-D variables", _file(_only("series")), frozenset({"no_xy_dimensions", "cant_extract_variables"})),
    _case("reasons", "a 1 x 1 grid", _file(_tiny_grid), frozenset({"cant_extract_variables"})),
    _case("reasons", "all values are fill", _file(_all_fill), COMPATIBLE),
    _case("reasons", "all values are NaN", _file(_nan_grid), COMPATIBLE),
    _case("reasons", "a variable name with spaces, & # ? % and ü", _file(_odd_names), COMPATIBLE),
    _case("reasons", "GeoTIFF without a CRS", _file(_tiff_without_crs, formats=("GeoTIFF",)), TOO_BIG),
    _case("reasons", "CMR 500 on the granule search", _cmr(_cmr_answer(lambda r: Response.text("boom", 500))), frozenset({"cmr_error"})),
    _case("reasons", "CMR 429 forever", _cmr(lambda cmr, cid: cmr.rate_limit("1", f"collection_concept_id={cid}")), frozenset({"cmr_error"})),
    _case("reasons", "CMR answers a web page", _cmr(_cmr_answer(lambda r: Response.text("<html>maintenance</html>", 200, content_type="text/html"))), frozenset({"cmr_error"})),
    _case("reasons", "CMR drops the connection", _cmr(_cmr_answer(lambda r: None)), frozenset({"cmr_error"})),

    # Records: a granule record of any shape is a classified result.
    _case("records", "no RelatedUrls", _granule_edit(lambda g: g["umm"].pop("RelatedUrls")), frozenset({"failed_to_extract_url"})),
    _case("records", "RelatedUrls is a string", _granule_edit(lambda g: g["umm"].update(RelatedUrls="abc")), frozenset({"failed_to_extract_url"})),
    _case("records", "RelatedUrls items are not objects", _granule_edit(lambda g: g["umm"].update(RelatedUrls=[1, None, "x"])), frozenset({"failed_to_extract_url"})),
    _case("records", "temporal extent of the wrong shape", _granule_edit(lambda g: g["umm"].update(TemporalExtent={"RangeDateTime": "yesterday"})), COMPATIBLE),
    _case("records", "URL is a number", _granule_edit(lambda g: g["umm"].update(RelatedUrls=[{"URL": 12, "Type": "GET DATA"}])), frozenset({"failed_to_extract_url"})),
    _case("records", "granule without umm", _granule_edit(lambda g: g.pop("umm")), frozenset({"failed_to_extract_url"})),
    _case("records", "granule without meta", _granule_edit(lambda g: g.pop("meta")), COMPATIBLE),
    _case("records", "file:// link to /etc/passwd", _with_urls(lambda w, url: [("file:///etc/passwd", "GET DATA")]), frozenset({"failed_to_extract_url"})),
    _case("records", "javascript: link", _with_urls(lambda w, url: [("javascript:alert(1)", "GET DATA")]), frozenset({"failed_to_extract_url"})),
    _case("records", "relative link", _with_urls(lambda w, url: [("/granule.nc", "GET DATA")]), frozenset({"failed_to_extract_url"})),
    _case("records", "ftp link only", _with_urls(lambda w, url: [("ftp://127.0.0.1/granule.nc", "GET DATA")]), frozenset({"failed_to_extract_url"})),
    _case("records", "a 10,000-character link", _with_urls(lambda w, url: [(f"{url}?pad={'a' * 10_000}", "GET DATA")]), UNTAKEN),  # a query: as above
    _case("records", "a link with CR LF in it", _with_urls(lambda w, url: [(url + "\r\nX-Injected: 1", "GET DATA")]), REFUSED),
    _case("records", "a link with a NUL byte", _with_urls(lambda w, url: [(url + "\0.nc", "GET DATA")]), REFUSED),
    _case("records", "a link with spaces", _with_urls(lambda w, url: [(url.replace("grid.nc", "my grid.nc"), "GET DATA")]), UNREADABLE),
    _case("records", "an internationalised host name", _with_urls(lambda w, url: [("http://exämple.invalid/granule.nc", "GET DATA")]), REFUSED),
    _case("records", "a host name that does not resolve", _with_urls(lambda w, url: [("https://nowhere.invalid/granule.nc", "GET DATA")]), REFUSED),
    _case("records", "s3 link only, external access", _with_urls(lambda w, url: [("s3://bucket/granule.nc", "GET DATA VIA DIRECT ACCESS")]), frozenset({"failed_to_extract_url"})),
    _case("records", "collection format is a number", _collection_edit(lambda c: c["umm"].update(ArchiveAndDistributionInformation={"FileDistributionInformation": [{"Format": 12345}]})), COMPATIBLE),
    _case("records", "collection fields of the wrong types", _collection_edit(lambda c: c["umm"].update(ShortName=123, Version=["1"], DataCenters="NASA")), COMPATIBLE),
    _case("records", "granule record is a list", _granule_edit(lambda g: g.update(umm=[1, 2, 3])), frozenset({"failed_to_extract_url"})),
]
