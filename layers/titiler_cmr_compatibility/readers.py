"""Bounded, counted reads of one data file, shared by every engine that opens it.

titiler-cmr reads granules through obstore (https with an Earthdata bearer token, or s3 with
temporary keys). Here one `RemoteFile` wraps that store: the first range read sniffs the format
and learns the size, small reads are cached with a little read-ahead (HDF5 and TIFF metadata are
many small reads), large reads go straight through, and every byte and request is counted.
h5netcdf and GDAL (through rasterio's Python opener) both read from it, so a file is opened once
and never downloaded whole unless the engine asks for every byte.
"""

from __future__ import annotations

import bisect
import io
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlparse

import obstore
import requests
from obstore.exceptions import (
    BaseError as ObstoreError,
    NotSupportedError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import HTTPStore, S3Store
from rasterio.abc import FileContainer

from .auth import AuthError, EarthdataAuth, UnsafeHost, may_receive_token, walk_redirects
from .deadline import CheckTimeout, Deadline
from .formats import SNIFF_BYTES, looks_like_login_page
from .result import Reason, scrub
from .sandbox import mark_fork_unsafe
from .settings import Settings
from .umm import DataLink

# The first request: enough for a TIFF header and its first IFDs, or an HDF5 superblock and
# root group; format sniffing reads from it too.
FIRST_READ_BYTES = 16 * 1024
# Reads smaller than this are extended forward to it and cached; larger ones are not cached.
DEFAULT_READ_AHEAD = 64 * 1024
# A safety valve: metadata caches never grow past this (chunk data are never cached).
_CACHE_LIMIT_BYTES = 64 * 1024 * 1024
# Large reads arrive in pieces of at most this size, so a body longer than asked is cut off early.
_STREAM_CHUNK_BYTES = 8 * 1024 * 1024
_STATUS = re.compile(r"status code: (\d{3})")
# How obstore's debug text says a request ran out of time. Its retry errors always mention
# "retry_timeout", so the bare word "timeout" says nothing: 500s and refusals say it too.
_TIMED_OUT = re.compile(r"kind: Timeout|TimedOut|timed out")


class DataAccessError(Exception):
    """Reading the data file failed; `reason` classifies it for the result."""

    def __init__(self, reason: Reason, message: str):
        super().__init__(scrub(message))
        self.reason = reason


@dataclass
class ReadStats:
    bytes_read: int = 0
    requests: int = 0


class RemoteFile:
    """One data file behind an obstore store: size, cached small reads, counters, a deadline."""

    def __init__(self, store, path: str, url: str, deadline: Deadline, read_ahead: int = DEFAULT_READ_AHEAD):
        self._store = store
        self._path = path
        self.url = url
        self.deadline = deadline
        self.read_ahead = read_ahead
        self.stats = ReadStats()
        self._lock = threading.RLock()
        self._starts: list[int] = []  # sorted starts of cached, non-overlapping ranges
        self._blocks: dict[int, bytes] = {}
        self._cached_bytes = 0
        self.failure: DataAccessError | None = None
        self.head, self.size = self._first_read()

    def _first_read(self) -> tuple[bytes, int]:
        self.deadline.check()
        try:
            data, size = self._get(0, FIRST_READ_BYTES)
        except NotSupportedError:
            raise self._diagnose_range_refusal() from None
        except ValueError as error:  # obstore: a zero-length range, i.e. an empty object
            if "range" in str(error).lower():
                return b"", 0
            raise self._classify(error) from None
        except Exception as error:
            raise self._classify(error) from None
        self.stats.requests += 1
        self.stats.bytes_read += len(data)
        self._remember(0, data)
        return data[:SNIFF_BYTES], size

    def _get(self, start: int, end: int) -> tuple[bytes, int]:
        """Bytes [start, end) and the object's size, taking no more than was asked for: a host
        may promise a terabyte, or send forever, after the bytes we wanted."""
        result = obstore.get(self._store, self._path, options={"range": (start, end)})
        wanted = end - start
        pieces: list[bytes] = []
        received = 0
        for chunk in result.stream(min_chunk_size=min(wanted, _STREAM_CHUNK_BYTES)):
            pieces.append(bytes(chunk))
            received += len(pieces[-1])
            if received >= wanted:
                break
        data = b"".join(pieces)
        return data[:wanted], int(result.meta["size"])

    def _diagnose_range_refusal(self) -> DataAccessError:
        """obstore refuses a 200 answer to a Range request. Either the host ignores Range, or an
        unauthenticated request was redirected to the Earthdata login page: look at a little."""
        self.stats.requests += 1
        try:
            with requests.get(self.url, stream=True, timeout=self.deadline.cap(10)) as response:
                sample = next(response.iter_content(SNIFF_BYTES * 4), b"")
                final_url = response.url
        except requests.RequestException as error:
            return DataAccessError(Reason.DATA_UNAVAILABLE, f"{type(error).__name__}: {error}")
        self.stats.bytes_read += len(sample)
        if looks_like_login_page(sample) or "urs.earthdata" in final_url:
            return DataAccessError(Reason.FORBIDDEN, "the data host answered with the Earthdata login page")
        return DataAccessError(
            Reason.CANT_OPEN_FILE, "the data host ignores HTTP Range requests, which titiler-cmr needs"
        )

    def _classify(self, error: Exception) -> DataAccessError:
        full = f"{type(error).__name__}: {error}"
        message = full.split("\n\nDebug source")[0]
        if isinstance(error, CheckTimeout):
            return DataAccessError(Reason.TIMEOUT, str(error))
        if isinstance(error, FileNotFoundError):
            return DataAccessError(Reason.DATA_UNAVAILABLE, f"the data file does not exist (404): {message}")
        if isinstance(error, PermissionDeniedError | UnauthenticatedError):
            return DataAccessError(Reason.FORBIDDEN, message)
        if _TIMED_OUT.search(full):
            return DataAccessError(Reason.TIMEOUT, message)
        status = _STATUS.search(message)
        if status and status.group(1) in ("401", "403"):
            return DataAccessError(Reason.FORBIDDEN, message)
        return DataAccessError(Reason.DATA_UNAVAILABLE, message)

    # The byte cache

    def _remember(self, start: int, data: bytes) -> None:
        if self._cached_bytes + len(data) > _CACHE_LIMIT_BYTES:
            self._starts.clear()
            self._blocks.clear()
            self._cached_bytes = 0
        bisect.insort(self._starts, start)
        self._blocks[start] = data
        self._cached_bytes += len(data)

    def _cached_at(self, position: int) -> tuple[int, bytes] | None:
        index = bisect.bisect_right(self._starts, position) - 1
        if index >= 0:
            start = self._starts[index]
            block = self._blocks[start]
            if position < start + len(block):
                return start, block
        return None

    def _next_cached_start(self, position: int) -> int:
        index = bisect.bisect_right(self._starts, position)
        return self._starts[index] if index < len(self._starts) else self.size

    def _fetch(self, start: int, end: int) -> bytes:
        try:
            self.deadline.check()
            data, _ = self._get(start, end)
        except Exception as error:
            # Engines (h5py, GDAL) turn errors raised in their read callbacks into their own
            # generic ones; keep the classified cause where the check can find it.
            self.failure = self._classify(error)
            raise self.failure from None
        self.stats.requests += 1
        self.stats.bytes_read += len(data)
        return data

    def read_at(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (fewer at the end of the file)."""
        end = min(offset + max(length, 0), self.size)
        pieces: list[bytes] = []
        position = offset
        with self._lock:
            while position < end:
                hit = self._cached_at(position)
                if hit:
                    start, block = hit
                    piece = block[position - start : min(end, start + len(block)) - start]
                else:
                    gap_end = min(end, self._next_cached_start(position))
                    if gap_end - position >= self.read_ahead:
                        piece = self._fetch(position, gap_end)  # bulk data: not worth caching
                    else:
                        fetch_end = min(max(gap_end, position + self.read_ahead), self._next_cached_start(position))
                        block = self._fetch(position, fetch_end)
                        self._remember(position, block)
                        piece = block[: gap_end - position]
                if not piece:
                    break
                pieces.append(piece)
                position += len(piece)
        return b"".join(pieces)

    def open(self) -> RangeFile:
        return RangeFile(self)


class RangeFile(io.RawIOBase):
    """A seekable, read-only file object over a `RemoteFile`; each has its own position."""

    def __init__(self, remote: RemoteFile):
        super().__init__()
        self._remote = remote
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._remote.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        data = self._remote.read_at(self._position, len(buffer))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._remote.size - self._position
        data = self._remote.read_at(self._position, size)
        self._position += len(data)
        return data


class RasterioOpener(FileContainer):
    """Lets GDAL read the one data file through `RemoteFile`; every other path (sidecar probes
    such as .aux.xml or .msk) does not exist, so GDAL makes no request for it."""

    def __init__(self, remote: RemoteFile, name: str):
        self._remote = remote
        self.name = name

    def _known(self, path: str) -> bool:
        return path.lstrip("/") == self.name.lstrip("/")

    def open(self, path: str, mode: str = "r", **kwds):
        if not self._known(path):
            raise FileNotFoundError(path)
        return self._remote.open()

    def isfile(self, path: str) -> bool:
        return self._known(path)

    def isdir(self, path: str) -> bool:
        return False

    def ls(self, path: str) -> list[str]:
        return []

    def mtime(self, path: str) -> int:
        return 0

    def rm(self, path: str) -> None:
        raise PermissionError("read-only")

    def size(self, path: str) -> int:
        if not self._known(path):
            raise FileNotFoundError(path)
        return self._remote.size


def open_remote(
    link: DataLink,
    auth: EarthdataAuth,
    settings: Settings,
    deadline: Deadline,
    s3_credentials_endpoint: str | None = None,
) -> RemoteFile:
    """Open a data link for ranged reads, with the credentials its access type needs."""
    parsed = urlparse(link.url)
    timeout = timedelta(seconds=deadline.cap(settings.data_request_timeout))
    client_options: dict = {"timeout": timeout, "connect_timeout": timedelta(seconds=min(10, timeout.total_seconds()))}
    # obstore retries 10 times over 3 minutes by default: far more than a check can wait.
    retry_config = {"max_retries": 2, "retry_timeout": timeout}
    if parsed.scheme == "s3":
        if not s3_credentials_endpoint:
            raise DataAccessError(Reason.FORBIDDEN, "no s3credentials endpoint is known for this s3:// link")
        try:
            credentials = auth.s3_credentials(s3_credentials_endpoint, timeout=deadline.cap(30))
        except AuthError as error:
            raise DataAccessError(Reason.FORBIDDEN, str(error)) from None
        endpoint = settings.s3_endpoint_url
        if endpoint and endpoint.startswith("http://"):
            client_options["allow_http"] = True
        store = S3Store(
            parsed.netloc,
            region="us-west-2",
            endpoint=endpoint,
            access_key_id=credentials.access_key_id,
            secret_access_key=credentials.secret_access_key,
            session_token=credentials.session_token,
            client_options=client_options,
            retry_config=retry_config,
        )
    elif parsed.scheme in ("http", "https"):
        token = auth.token() if may_receive_token(link.url, settings) else None
        try:
            if not walk_redirects(link.url, token, settings, timeout.total_seconds()):
                token = None
        except UnsafeHost as error:
            raise DataAccessError(Reason.FAILED_TO_EXTRACT_URL, f"the data link was not followed: {error}") from None
        if parsed.scheme == "http":
            client_options["allow_http"] = True
        if token:
            client_options["default_headers"] = {"Authorization": f"Bearer {token}"}
        # The host alone: credentials written into a link (user:password@) are never used.
        origin = f"{parsed.scheme}://{parsed.netloc.rpartition('@')[2]}"
        store = HTTPStore.from_url(origin, client_options=client_options, retry_config=retry_config)
    else:
        raise DataAccessError(Reason.FAILED_TO_EXTRACT_URL, f"cannot read a {parsed.scheme or 'schemeless'} link")
    mark_fork_unsafe("it has started obstore's runtime (readers.open_remote)")
    try:
        return RemoteFile(store, parsed.path.lstrip("/"), link.url, deadline)
    except ObstoreError as error:  # anything _first_read did not classify
        raise DataAccessError(Reason.DATA_UNAVAILABLE, f"{type(error).__name__}: {error}") from None
