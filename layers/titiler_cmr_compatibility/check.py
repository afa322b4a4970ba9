"""The compatibility check: can titiler-cmr render a map tile from this collection, and if not, why.

One collection, in order: its record, a random granule, a data link, the format (the first
bytes decide), one open of the file, a tileable variable (and group), and tile 0/0/0 rendered
to PNG with titiler-cmr's engines. Every outcome, including the unexpected, is a `CheckResult`.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache, partial
from importlib.metadata import PackageNotFoundError, version

import h5netcdf
import xarray as xr
from earthaccess.daac import DAACS

from .auth import AuthError, EarthdataAuth
from .cmr import CMRClient, CMRError
from .deadline import CheckTimeout, Deadline
from .formats import (
    BACKEND_FOR_CONTAINER,
    RASTERIO_EXTENSIONS,
    UNSUPPORTED_CONTAINER_REASONS,
    Backend,
    Container,
    describe_mismatch,
    extension_of,
    looks_like_login_page,
    rasterio_extension_refused,
    sniff,
)
from .readers import DataAccessError, RasterioOpener, RemoteFile, open_remote
from .result import CheckResult, Reason
from .sandbox import run_isolated
from .settings import AccessType, Settings, get_settings
from .tiles import (
    Rendered,
    TileFailure,
    asset_selector,
    prepare_variable,
    render_rasterio,
    render_xarray,
    thumbnail,
    tiles_url,
    warm_engines,
)
from .umm import (
    NO_DIRECT_LINK,
    NO_HTTPS_LINK,
    CollectionInfo,
    DataLink,
    GranuleInfo,
    TitilerFile,
    asset_of,
    read_granule,
    titiler_cmr_rasterio_file,
    titiler_cmr_xarray_file,
    unread_because,
)
from .variables import Candidate, candidates, explain

log = logging.getLogger(__name__)

# A granule may list many files (HLS lists 15 bands); missing ones (404) are skipped up to this.
MAX_LINKS_TRIED = 16
# Tileable variables tried in turn before the tile test is declared failed.
MAX_VARIABLES_TRIED = 3
# Groups looked into when the root has nothing to tile (HDF-EOS files can hold hundreds).
MAX_GROUPS = 200


@cache
def engine_versions() -> dict[str, str]:
    import h5py
    import rasterio

    versions = {"gdal": rasterio.__gdal_version__, "hdf5": h5py.version.hdf5_version}
    for package in (
        "titiler-cmr-compatibility", "rasterio", "rio-tiler", "titiler-xarray", "xarray",
        "h5netcdf", "h5py", "obstore", "numpy",
    ):  # fmt: skip
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


class _Progress:
    """What a check has done so far, reported to the waiting process at every stage, so a check
    stopped at its time limit (or killed by a crash) still says where it was."""

    def __init__(self, result: CheckResult, report: Callable[[tuple[str, CheckResult]], None] | None = None):
        self.result = result
        self.report = report
        self._remote: RemoteFile | None = None
        self.opened: list[RemoteFile] = []  # every data file opened, for the bytes and requests
        self.started = time.monotonic()
        self.cmr: CMRClient | None = None
        self.failed_opens = 0  # data links that answered with an error before one opened
        self._stage = "cmr"

    @property
    def stage(self) -> str:
        return self._stage

    @stage.setter
    def stage(self, stage: str) -> None:
        self._stage = stage
        if self.report is not None:
            self.report((stage, self.finish(self.result.model_copy(deep=True))))

    @property
    def remote(self) -> RemoteFile | None:
        """The data file being read now."""
        return self._remote

    @remote.setter
    def remote(self, remote: RemoteFile | None) -> None:
        self._remote = remote
        if remote is not None and all(remote is not other for other in self.opened):
            self.opened.append(remote)

    def finish(self, result: CheckResult | None = None) -> CheckResult:
        result = result or self.result
        result.duration_s = round(time.monotonic() - self.started, 3)
        if self.opened or self.failed_opens:
            result.bytes_read = sum(remote.stats.bytes_read for remote in self.opened)
            result.data_requests = sum(remote.stats.requests for remote in self.opened) + self.failed_opens
        if self.remote is not None:
            result.file_size = self.remote.size
        if self.cmr is not None:
            result.cmr_requests = self.cmr.requests_made
        return result


# What an unexpected error means depends on where it happened.
_REASON_FOR_STAGE = {
    "cmr": Reason.CMR_ERROR,
    "link": Reason.FAILED_TO_EXTRACT_URL,
    "open": Reason.CANT_OPEN_FILE,
    "variables": Reason.CANT_EXTRACT_VARIABLES,
    "tile": Reason.TILE_GENERATION_FAILED,
}


def check_collection(
    collection_concept_id: str,
    *,
    collection: dict | CollectionInfo | None = None,
    granule_id: str | None = None,
    access_type: AccessType | None = None,
    timeout: float | None = None,
    settings: Settings | None = None,
    auth: EarthdataAuth | None = None,
    rng: random.Random | None = None,
) -> CheckResult:
    """Check one collection. `collection` is its UMM-JSON item or the compact record a survey
    marker stores (saves a CMR request); otherwise it is fetched. Never raises.

    The check runs in a child process (`sandbox`): past its time limit it is stopped, past its
    memory budget its allocation fails, and if its engines crash the crash is the result.
    """
    settings = settings or get_settings()
    timeout = timeout or settings.check_timeout
    auth = auth or EarthdataAuth(settings)
    started = time.monotonic()
    base = CheckResult(
        collection_concept_id=collection_concept_id,
        checked_at=datetime.now(UTC).isoformat(timespec="seconds"),
        engine_versions=engine_versions(),
    )
    try:  # once per process, not once per child: a username/password login, an SSM read
        auth.token()
    except AuthError:
        pass  # the child meets the same error and classifies it
    warm_engines()
    run = partial(_check_in_child, base, collection, granule_id, access_type or settings.access_type,
                  settings, auth, timeout, rng)  # fmt: skip
    outcome = run_isolated(run, timeout, settings.check_memory_mb * 1024 * 1024)
    if outcome.value is not None:
        result, s3_credentials = outcome.value
        auth.remember_s3_credentials(s3_credentials)  # the next check need not ask again
        return result
    stage, result = outcome.progress or ("cmr", base)
    if outcome.timed_out:
        result.fail(Reason.TIMEOUT, f"the check ran past its {timeout:g} s limit (while at: {stage})")
    else:
        result.fail(_REASON_FOR_STAGE[stage], f"the check's process {outcome.ended} (while at: {stage})")
    result.duration_s = round(time.monotonic() - started, 3)
    return result


def _check_in_child(
    base: CheckResult,
    collection: dict | CollectionInfo | None,
    granule_id: str | None,
    access_type: AccessType,
    settings: Settings,
    auth: EarthdataAuth,
    timeout: float,
    rng: random.Random | None,
    report: Callable[[tuple[str, CheckResult]], None],
) -> tuple[CheckResult, dict]:
    """The check, in the child: its result, and the temporary S3 keys it holds for the parent."""
    deadline = Deadline(timeout)
    progress = _Progress(base, report)
    progress.cmr = CMRClient(settings, deadline)
    auth = copy.copy(auth)
    try:
        _check(progress, collection, granule_id, access_type, settings, auth, deadline, rng)
    except Exception as error:  # every failure is a result, never an exception out of here
        _record_unexpected(progress, error)
    return progress.finish(), auth.s3_credentials_held()


def _record_unexpected(progress: _Progress, error: Exception) -> None:
    result = progress.result
    remote_failure = progress.remote.failure if progress.remote else None
    if isinstance(error, CheckTimeout):
        result.fail(Reason.TIMEOUT, str(error))
    elif isinstance(error, DataAccessError):
        result.fail(error.reason, str(error))
    elif remote_failure is not None:  # an engine wrapped our read error in its own
        result.fail(remote_failure.reason, str(remote_failure))
    elif isinstance(error, CMRError):
        result.fail(Reason.CMR_ERROR, str(error))
    elif isinstance(error, AuthError):
        result.fail(Reason.FORBIDDEN, str(error))
    elif isinstance(error, MemoryError):
        result.fail(_REASON_FOR_STAGE[progress.stage], f"ran out of memory at stage {progress.stage}")
    else:
        log.exception("unexpected error at %s for %s", progress.stage, result.collection_concept_id)
        result.fail(_REASON_FOR_STAGE[progress.stage], f"{type(error).__name__}: {error}")


def _check(
    progress: _Progress,
    collection: dict | CollectionInfo | None,
    granule_id: str | None,
    access_type: AccessType,
    settings: Settings,
    auth: EarthdataAuth,
    deadline: Deadline,
    rng: random.Random | None,
) -> None:
    result, cmr = progress.result, progress.cmr
    assert cmr is not None
    concept_id = result.collection_concept_id

    info = _collection_info(cmr, concept_id, collection)
    if info is None:
        result.fail(Reason.NO_GRANULE_FOUND, f"CMR has no collection {concept_id}, so no granule")
        return
    result.collection_short_name_and_version = info.short_name_and_version
    result.data_center = info.data_center
    result.format = info.format
    family = info.format_family
    result.format_family = family.value if family else None
    result.processing_level = info.processing_level
    result.num_granules = info.granule_count

    if granule_id:
        granule = cmr.granule(granule_id)
    else:
        granule, hits = cmr.random_granule(concept_id, info.granule_count, rng)
        result.num_granules = hits
    if granule is None:
        what = f"granule {granule_id} was not found" if granule_id else "CMR lists no granule"
        result.fail(Reason.NO_GRANULE_FOUND, f"{what} for {concept_id}")
        return

    progress.stage = "link"
    granule_info = read_granule(granule, access_type, family)
    result.concept_id = granule_info.concept_id
    result.access_type = granule_info.access_type
    if not granule_info.links:
        skipped = f" (only: {', '.join(granule_info.skipped[:3])})" if granule_info.skipped else ""
        result.fail(Reason.FAILED_TO_EXTRACT_URL, f"the granule has no https or s3 data link{skipped}")
        return

    progress.stage = "open"
    credentials_endpoint = (
        info.s3_credentials_endpoint or granule_info.s3_credentials_endpoint or _daac_credentials_endpoint(info)
    )
    remote = _open_first_available(progress, granule_info, auth, settings, deadline, credentials_endpoint)
    if remote is None:
        return

    backend = _backend_for(result, remote, info)
    if backend is None:
        return
    result.backend = backend
    if backend is Backend.RASTERIO:
        _check_rasterio(progress, remote, granule_info, settings)
    else:
        open_link = partial(open_remote, auth=auth, settings=settings, deadline=deadline,
                            s3_credentials_endpoint=credentials_endpoint)  # fmt: skip
        _check_xarray_granule(progress, remote, granule_info, info, settings, open_link)


def _backend_for(result: CheckResult, remote: RemoteFile, info: CollectionInfo) -> Backend | None:
    """The engine for the file's first bytes; None (and the result failed) when there is none."""
    container = sniff(remote.head)
    result.container = container.value
    backend = BACKEND_FOR_CONTAINER.get(container)
    if backend is None:
        if container in (Container.HTML, Container.XML) and looks_like_login_page(remote.head):
            result.fail(Reason.FORBIDDEN, "the data host answered with the Earthdata login page")
        else:
            said = f"; metadata format: {info.format!r}" if info.format else ""
            message = UNSUPPORTED_CONTAINER_REASONS[container] + describe_mismatch(info.format_family, container)
            result.fail(Reason.UNSUPPORTED_FORMAT, message + said)
    return backend


def _collection_info(cmr: CMRClient, concept_id: str, given: dict | CollectionInfo | None) -> CollectionInfo | None:
    if isinstance(given, CollectionInfo):
        return given
    if given is not None:
        return CollectionInfo.from_umm(given)
    item = cmr.collection(concept_id)
    return CollectionInfo.from_umm(item) if item else None


def _daac_credentials_endpoint(info: CollectionInfo) -> str | None:
    for daac in DAACS:
        if info.provider in daac["cloud-providers"] + daac["on-prem-providers"] and daac.get("s3-credentials"):
            return daac["s3-credentials"]
    return None


def _open_first_available(
    progress: _Progress,
    granule_info: GranuleInfo,
    auth: EarthdataAuth,
    settings: Settings,
    deadline: Deadline,
    credentials_endpoint: str | None,
) -> RemoteFile | None:
    """Open the best link; a missing file (404) moves on to the granule's next link."""
    result = progress.result
    missing: list[str] = []
    for link in granule_info.links[:MAX_LINKS_TRIED]:
        result.data_url = link.url
        result.extension = extension_of(link.url)
        try:
            progress.remote = open_remote(link, auth, settings, deadline, credentials_endpoint)
            return progress.remote
        except DataAccessError as error:
            progress.failed_opens += 1
            if error.reason is Reason.DATA_UNAVAILABLE and "404" in str(error):
                missing.append(link.url)
                continue
            result.fail(error.reason, str(error))
            return None
    result.fail(
        Reason.DATA_UNAVAILABLE,
        f"none of the granule's {len(missing)} data files exists (404); first: {missing[0]}",
    )
    return None


def _check_rasterio(progress: _Progress, remote: RemoteFile, granule_info: GranuleInfo, settings: Settings) -> None:
    result = progress.result
    name = remote.url.split("://", 1)[-1]
    try:
        progress.stage = "tile"
        tile, bands = render_rasterio(RasterioOpener(remote, name), name)
    except TileFailure as failure:
        result.data_variables = failure.bands
        _fail_tile(progress, failure)
        return
    except Exception as error:
        _fail_open(progress, error)
        return
    result.data_variables = bands
    # One file of several (HLS: a band each): titiler-cmr is told which, by a key in its name.
    assets = asset_selector([link.url for link in granule_info.links], remote.url, granule_info.skipped)
    regex, key = assets or (None, None)
    reads = titiler_cmr_rasterio_file(granule_info, regex, key)
    if assets is None and reads.incomplete is None and not _same_link(reads.href, remote.url):
        # Its default asset "0" is another file (a sidecar listed first): name this file's own key.
        own = asset_of(granule_info, remote.url)
        named = titiler_cmr_rasterio_file(granule_info, None, own.key) if own is not None else None
        if named is not None and _same_link(named.href, remote.url):
            assets, reads = (None, own.key), named
    if reads.incomplete is not None:
        _refuse_unbuilt(progress, reads, granule_info, "rio-tiler renders this file")
        return
    own = asset_of(granule_info, remote.url, regex)
    refused = rasterio_extension_refused(remote.url) if own is None or own.ext is None else (
        None if own.ext in RASTERIO_EXTENSIONS else own.ext)  # fmt: skip
    if refused is not None:  # its engines render it; titiler-cmr's reader never opens it
        _refuse(progress, Reason.UNSUPPORTED_FORMAT,
                f"titiler-cmr's rasterio reader accepts only links ending {', '.join(RASTERIO_EXTENSIONS)} "
                f"(case-sensitive), not {refused or 'no extension'!r}; rio-tiler renders this file, so "
                f"titiler-cmr would tile it if it accepted {refused or 'links without an extension'!r}",
                f"the extension {refused!r}" if refused else "links without an extension")  # fmt: skip
        return
    if not _same_link(reads.href, remote.url):
        blocker = unread_because(granule_info, remote.url)
        instead = reads.refusal or f"reads {reads.href}"
        _refuse(progress, Reason.FAILED_TO_EXTRACT_URL,
                f"titiler-cmr's rasterio reader does not read this file of the granule ({instead}); rio-tiler "
                f"renders it, so titiler-cmr would tile it if it accepted {blocker}", blocker)  # fmt: skip
        return
    result.assets = [assets[1]] if assets else None
    url = tiles_url(settings.titiler_endpoint, Backend.RASTERIO, result.collection_concept_id, granule_info.temporal,
                    assets=assets, tile=tile)  # fmt: skip
    _compatible(progress, url, tile)


def _same_link(href: str | None, url: str) -> bool:
    return href is not None and href.strip() == url


def _refuse(progress: _Progress, reason: Reason, message: str, blocker: str) -> None:
    """A file titiler-cmr's engines render that titiler-cmr itself would not serve: no link, no
    tile, and what titiler-cmr would have to accept (`titiler_cmr_blocker`)."""
    result = progress.result
    result.tiles_url = result.rescale = result.thumbnail = None
    result.tile_png = None
    result.titiler_cmr_blocker = blocker
    result.fail(reason, message)


def _refuse_unbuilt(progress: _Progress, reads: TitilerFile, granule_info: GranuleInfo, rendered: str) -> None:
    """titiler-cmr cannot take the granule's files at all (`Granule.get_assets` raises, or finds
    none): after the engines rendered the file, say so, and what it would have to accept."""
    if reads.incomplete is not None:
        blocker = NO_HTTPS_LINK if reads.incomplete.direct_href else NO_DIRECT_LINK
    else:
        blocker = unread_because(granule_info, progress.result.data_url or "")
    _refuse(progress, Reason.FAILED_TO_EXTRACT_URL,
            f"titiler-cmr 1.1.2 cannot take this granule's files: {reads.refusal}; {rendered}, so titiler-cmr "
            f"would tile it if it accepted {blocker}", blocker)  # fmt: skip


def _check_xarray_granule(
    progress: _Progress,
    remote: RemoteFile,
    granule_info: GranuleInfo,
    info: CollectionInfo,
    settings: Settings,
    open_link: Callable[[DataLink], RemoteFile],
) -> None:
    """titiler-cmr's /xarray route opens the granule's asset "0", whichever file that is: when it
    is the file opened here (the usual case), that file decides; when it is another, that one
    does, and the file opened here only says whether titiler-cmr would tile the granule if it
    took it instead."""
    temporal = granule_info.temporal
    reads = titiler_cmr_xarray_file(granule_info)
    if reads.href is None or _same_link(reads.href, remote.url):
        _check_xarray(progress, remote, temporal, settings)
        if reads.href is None and progress.result.tiling_compatible:
            _refuse_unbuilt(progress, reads, granule_info,
                            f"titiler-xarray renders {progress.result.variable} of this file")  # fmt: skip
        return
    start = progress.result
    first = progress.result = start.model_copy(deep=True)
    first.data_url, first.extension, first.backend, first.container = reads.href, extension_of(reads.href), None, None
    try:
        other = open_link(DataLink(reads.href.strip(), granule_info.access_type))
    except DataAccessError as error:
        other = None
        progress.failed_opens += 1
        first.fail(error.reason, str(error))
    else:
        progress.remote = other
        backend = _backend_for(first, other, info)
        if backend is Backend.XARRAY:
            first.backend = backend
            _check_xarray(progress, other, temporal, settings)
            if first.tiling_compatible:
                return
        elif backend is not None:
            first.fail(Reason.UNSUPPORTED_FORMAT,
                       f"titiler-cmr's xarray reader opens it with h5netcdf, and it is {first.container}")  # fmt: skip
    where = f"titiler-cmr's xarray reader opens the granule's asset \"0\", {reads.href}, not {remote.url}"
    mine = progress.result = start.model_copy(deep=True)
    progress.remote = remote
    _check_xarray(progress, remote, temporal, settings)
    if mine.tiling_compatible:
        blocker = unread_because(granule_info, remote.url)
        _refuse(progress, Reason.FAILED_TO_EXTRACT_URL,
                f"{where}, and that file does not render ({first.incompatible_reason}: {first.error_message}); "
                f"titiler-xarray renders {mine.variable} of {remote.url}, so titiler-cmr would tile it if it "
                f"accepted {blocker}", blocker)  # fmt: skip
        return
    progress.result = first
    progress.remote = other or remote
    assert first.incompatible_reason is not None
    first.fail(first.incompatible_reason,
               f"{where}: {first.error_message} ({remote.url} does not render either: {mine.incompatible_reason})")


def _check_xarray(progress: _Progress, remote: RemoteFile, temporal, settings: Settings) -> None:
    result = progress.result
    try:
        h5file = h5netcdf.File(remote.open(), "r", phony_dims="sort")
    except Exception as error:
        _fail_open(progress, error)
        return
    with h5file:
        progress.stage = "variables"
        found = _find_variable(progress, h5file)
        if found is None:
            return
        group, ds, tileable = found
        progress.stage = "tile"
        first_failure: TileFailure | None = None
        for candidate in tileable[:MAX_VARIABLES_TRIED]:
            try:
                prepared, selectors = prepare_variable(ds, candidate)
                tile = render_xarray(remote.url, prepared, candidate.name)
            except TileFailure as failure:
                first_failure = first_failure or failure
                if remote.failure is not None:
                    break  # the data host failed, not the variable: another one will not help
                continue
            result.variable = candidate.name
            result.sel = selectors or None
            if selectors and not temporal[0]:
                result.titiler_cmr_blocker = "sel without temporal"
                result.fail(Reason.TILE_GENERATION_FAILED,
                            f"{candidate.name} renders with sel {', '.join(selectors)}, but titiler-cmr's "
                            "/xarray/tiles answers 400 (\"A 'temporal' parameter is required\") to a sel "
                            "without temporal, and the granule has no temporal extent: titiler-cmr would tile "
                            "it if it accepted sel without temporal")  # fmt: skip
                return
            url = tiles_url(settings.titiler_endpoint, Backend.XARRAY, result.collection_concept_id, temporal,
                            variable=candidate.name, group=group, selectors=selectors, tile=tile)  # fmt: skip
            _compatible(progress, url, tile)
            return
        result.variable = tileable[0].name
        assert first_failure is not None
        _fail_tile(progress, first_failure)


class DecodeError(ValueError):
    """xarray could not decode the group as titiler-cmr opens it (e.g. a calendar it cannot
    decode without cftime, which titiler-cmr does not install)."""


def _open_group(h5file: h5netcdf.File, group: str | None) -> xr.Dataset:
    """A lazily loaded dataset of one group of the already open file (no new file handle),
    decoded as titiler-cmr's `reader.open_dataset` decodes: CF times and time deltas decoded,
    so a variable titiler-cmr sees as datetime is never the one chosen."""
    store = xr.backends.H5NetCDFStore(h5file, group=group, lock=False)
    try:
        return xr.open_dataset(store, decode_times=True, decode_timedelta=True, decode_coords="all", chunks=None)
    except ValueError as error:
        if "decode" in str(error):
            raise DecodeError(str(error).split(" Try opening")[0]) from None
        raise


def _group_paths(h5file: h5netcdf.File) -> list[str]:
    paths: list[str] = []
    pending = [h5file]
    while pending and len(paths) < MAX_GROUPS:
        node = pending.pop(0)
        for child in node.groups.values():
            paths.append(child.name)
            pending.append(child)
    return paths[:MAX_GROUPS]


def _find_variable(progress: _Progress, h5file: h5netcdf.File) -> tuple[str | None, xr.Dataset, list[Candidate]] | None:
    """The root if it has a tileable variable, else the group whose best variable is best."""
    result = progress.result
    try:
        root = _open_group(h5file, None)
    except DecodeError as error:
        result.fail(Reason.DECODE_ERROR, f"titiler-cmr cannot decode this file: {error}")
        return None
    judged = candidates(root)
    result.data_variables = [c.name for c in judged]
    groups = _group_paths(h5file)
    result.groups = groups or None
    if judged and judged[0].tileable:
        return None, root, [c for c in judged if c.tileable]

    best: tuple[str | None, xr.Dataset, list[Candidate]] = (None, root, judged)
    unopenable: list[str] = []
    undecodable: list[str] = []
    for path in groups:
        try:
            ds = _open_group(h5file, path)
        except DecodeError as error:
            undecodable.append(f"{path}: {error}")
            continue
        except Exception as error:  # one odd group must not hide the others
            unopenable.append(f"{path}: {type(error).__name__}: {error}")
            continue
        group_judged = candidates(ds)
        if group_judged and (not best[2] or group_judged[0].rank() < best[2][0].rank()):
            best = (path, ds, group_judged)
    group, ds, judged = best
    if judged and judged[0].tileable:
        result.group = group
        result.data_variables = [c.name for c in judged]
        return group, ds, [c for c in judged if c.tileable]

    if group is not None:
        result.group = group
        result.data_variables = [c.name for c in judged]
    where = f" in group {group}" if group else ""
    if any(c.lacks_xy for c in judged):
        result.fail(Reason.NO_XY_DIMENSIONS, f"no variable{where} has X/Y dimensions titiler-cmr recognises: {explain(judged)}")
    elif undecodable:
        result.fail(Reason.DECODE_ERROR, f"titiler-cmr cannot decode group {'; '.join(undecodable[:3])}")
    elif judged:
        result.fail(Reason.CANT_EXTRACT_VARIABLES, f"no variable{where} can be tiled: {explain(judged)}")
    elif unopenable:
        result.fail(Reason.GROUP_STRUCTURE, f"the data sit in groups that cannot be opened: {'; '.join(unopenable[:3])}")
    else:
        result.fail(Reason.CANT_EXTRACT_VARIABLES, "the file holds no data variables")
    return None


def _fail_open(progress: _Progress, error: Exception) -> None:
    remote = progress.remote
    if remote is not None and remote.failure is not None:
        progress.result.fail(remote.failure.reason, str(remote.failure))
        return
    message = f"{type(error).__name__}: {error}"
    container = progress.result.container
    if container:
        message = f"the {container} file could not be opened: {message}"
    progress.result.fail(Reason.CANT_OPEN_FILE, message)


def _fail_tile(progress: _Progress, failure: TileFailure) -> None:
    remote = progress.remote
    if remote is not None and remote.failure is not None:
        progress.result.fail(remote.failure.reason, str(remote.failure))
        return
    text = str(failure)
    lowered = text.lower()
    if "x and y" in lowered or "x/y" in lowered:
        reason = Reason.NO_XY_DIMENSIONS
    elif "decode" in lowered or "can only convert an array of size 1" in lowered:
        reason = Reason.DECODE_ERROR
    elif "not aligned with its parents" in lowered:
        reason = Reason.GROUP_NOT_ALIGNED_WITH_PARENTS
    else:
        reason = Reason.TILE_GENERATION_FAILED
    progress.result.fail(reason, f"tile 0/0/0 failed: {text}")


def _compatible(progress: _Progress, url: str, tile: Rendered) -> None:
    """A compatible result: its link, how the link asks for the picture, and the picture."""
    result = progress.result
    result.tiling_compatible = True
    result.incompatible_reason = None
    result.error_message = None
    result.tiles_url = url
    result.rescale = tile.rescale
    result.tile_png = tile.png
    try:
        result.thumbnail = thumbnail(tile.png)
    except Exception:  # the picture is for the page; the verdict stands without it
        log.exception("no thumbnail for %s", result.collection_concept_id)

