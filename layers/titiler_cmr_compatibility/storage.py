"""Where the survey keeps its markers and results: a local directory or an S3 prefix.

The survey writes one small JSON object per collection (~10,000 of them) and its workers run in
other processes (Lithops), so a storage must be reopened from a plain string
(`Storage.location`, `open_storage`) and every operation must be safe against writers it cannot
see. The two implementations give the same answers:

- `write` is atomic (a reader never sees half an object); `create` writes only if the key is
  absent; `replace` is a compare-and-swap on the ETag (the hex MD5 of the body locally, S3's
  ETag on S3). A `False` from `create`/`replace` means "someone else got there first": read
  again and decide, never overwrite blindly.
- Keys are "/"-separated relative paths, checked the same way for both, so a key that works
  locally works on S3 and none can escape the root.
- `list` returns every key under a prefix (a string prefix, as on S3), sorted, relative to the
  root.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import hashlib
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCK_DIR = ".locks"  # under a local root; reserved, never listed
TMP_PREFIX = ".tmp-storage-"  # local temporary files; reserved, never listed
LOCK_STRIPES = 256  # lock files per local root: bounded, whatever the number of keys
_S3_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict"}


@dataclass
class StorageStats:
    """Requests a storage made. Incremented from many threads at once, hence the lock."""

    gets: int = 0
    puts: int = 0  # every write/create/replace, including conditional ones that lost
    lists: int = 0  # S3: one per page of up to 1,000 keys; local: one per list() call
    deletes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {"gets": self.gets, "puts": self.puts, "lists": self.lists, "deletes": self.deletes}


def check_key(key: str) -> str:
    """`key` if it is a safe relative key, else ValueError.

    Refused: empty, absolute, `.`/`..` or empty segments (`a//b`, a trailing `/`: a local file
    system could not tell them apart), and the local storage's reserved names (its lock directory
    and temporary files), which are refused on S3 too so that both accept the same keys.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"invalid storage key {key!r}: empty")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid storage key {key!r}: absolute or not '/'-separated")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid storage key {key!r}: empty, '.' or '..' segment")
    if parts[0] == LOCK_DIR or any(part.startswith(TMP_PREFIX) for part in parts):
        raise ValueError(f"invalid storage key {key!r}: reserved name")
    return key


def check_prefix(prefix: str) -> str:
    """A list prefix: "" (everything), a key, or a key with a trailing "/"."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def etag_of(body: bytes) -> str:
    """The hex MD5 of `body`: what S3 gives a single-part upload, and the local ETag."""
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


class Storage(ABC):
    """Small objects under string keys; see the module docstring for the guarantees."""

    location: str  # what open_storage() takes to reopen this storage in another process
    stats: StorageStats

    @abstractmethod
    def read(self, key: str) -> bytes | None:
        """The body, or None when the key is absent."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """(body, etag) for a later `replace`, or None when the key is absent."""

    @abstractmethod
    def write(self, key: str, body: bytes) -> None:
        """Store `body` unconditionally and atomically."""

    @abstractmethod
    def create(self, key: str, body: bytes) -> bool:
        """Store `body` only if `key` is absent; False (nothing written) when it existed."""

    @abstractmethod
    def replace(self, key: str, body: bytes, etag: str | None) -> bool:
        """Store `body` only if the current ETag is `etag` (absent when `etag` is None).

        False when another writer changed, created or deleted the object first.
        """

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with `prefix` (at any depth), sorted, relative to the root."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove `key`; an absent key is not an error."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Workers get a storage through (cloud)pickle: send the location, not clients or locks.
        # The copy starts with fresh stats.
        return (open_storage, (self.location,))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.location!r})"


class LocalStorage(Storage):
    """A directory. Safe across threads and processes of one machine (POSIX, `fcntl.flock`).

    Objects are written to a temporary file in the target's directory and renamed into place,
    so readers see the old or the new body, never a partial one. Not fsynced: a crash of the
    machine may lose recent writes (never half-write them), which a re-run of the survey
    repairs; an fsync per object would cost more than the write.
    """

    def __init__(self, root: str | Path):
        self.root = Path(os.path.abspath(os.path.expanduser(root)))
        self.location = str(self.root)
        self.stats = StorageStats()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def read(self, key: str) -> bytes | None:
        path = self._path(key)
        self.stats.add("gets")
        return self._read(path)

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        self.stats.add("gets")
        body = self._read(path)
        return None if body is None else (body, etag_of(body))

    def write(self, key: str, body: bytes) -> None:
        path = self._path(key)
        self.stats.add("puts")
        tmp = self._write_temporary(path, body)
        try:
            with self._locked(key):  # so that a concurrent replace() stays a compare-and-swap
                os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def create(self, key: str, body: bytes) -> bool:
        path = self._path(key)
        self.stats.add("puts")
        return self._create(path, body)

    def replace(self, key: str, body: bytes, etag: str | None) -> bool:
        path = self._path(key)
        self.stats.add("puts")
        if etag is None:
            return self._create(path, body)
        tmp = self._write_temporary(path, body)  # before the lock: hold it as briefly as possible
        try:
            with self._locked(key):
                current = self._read(path)
                if current is None or etag_of(current) != etag.strip('"'):
                    return False
                os.replace(tmp, path)
                return True
        finally:
            _unlink_quietly(tmp)  # a no-op once renamed

    def list(self, prefix: str = "") -> Iterator[str]:
        """A string prefix, as on S3: "2026-11/coll" matches "2026-11/collections/…".

        One `lists` per call (a local walk has no pages). os.scandir tells files from
        directories without a stat per entry, which keeps ~20,000 files well under a second.
        """
        check_prefix(prefix)
        self.stats.add("lists")
        directory, _, _ = prefix.rpartition("/")
        start = self.root / directory if directory else self.root
        keys: list[str] = []
        _walk(str(start), f"{directory}/" if directory else "", keys)
        return iter(sorted(key for key in keys if key.startswith(prefix)))

    def delete(self, key: str) -> None:
        path = self._path(key)
        self.stats.add("deletes")
        with self._locked(key):  # so that a replace() that already compared cannot resurrect it
            _unlink_quietly(path)

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            with open(path, "rb") as file:
                return file.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None  # a "directory" key does not exist as an object, as on S3

    def _write_temporary(self, path: Path, body: bytes) -> str:
        """A new file holding `body`, next to `path` (same file system, so renames are atomic)."""
        tmp = str(path.parent / f"{TMP_PREFIX}{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:  # first object in this directory: create it, only now
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)
            raise
        os.close(fd)
        return tmp

    def _create(self, path: Path, body: bytes) -> bool:
        # link(2) fails if the target exists, atomically, against every process; the linked file
        # is already complete. No lock needed: replace() and delete() never create a missing key.
        tmp = self._write_temporary(path, body)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            _unlink_quietly(tmp)

    def _locked(self, key: str) -> _FileLock:
        stripe = int(etag_of(key.encode())[:8], 16) % LOCK_STRIPES
        return _FileLock(self.root / LOCK_DIR / f"{stripe:03d}.lock")


class _FileLock:
    """An exclusive `flock` on a file, for one `with` block.

    Each acquisition opens the file anew: flock excludes other open file descriptions, so this
    serialises threads of one process as well as separate processes.
    """

    def __init__(self, path: Path):
        self.path = path
        self.fd = -1

    def __enter__(self) -> _FileLock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, flags, 0o666)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, flags, 0o666)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the last descriptor releases the lock


def _walk(directory: str, relative: str, keys: list[str]) -> None:
    try:
        entries = os.scandir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        for entry in entries:
            name = entry.name
            if name.startswith(TMP_PREFIX) or (not relative and name == LOCK_DIR):
                continue
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, f"{relative}{name}/", keys)
            else:
                keys.append(relative + name)


def _unlink_quietly(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError as error:
        if error.errno != errno.ENOENT:
            raise


class S3Storage(Storage):
    """An S3 bucket, or a prefix in one. Conditional puts do the compare-and-swap on S3's side.

    The client comes from the standard boto3 configuration chain, so AWS_ENDPOINT_URL(_S3)
    points it at moto or another S3; it is made from its own Session because boto3's default
    session is not thread-safe, and one storage may be opened in many worker threads. Its pool
    holds 64 connections so ~32 threads never wait for one.

    A conditional put retried by botocore after a lost response can report a lost race for a
    write that in fact landed; a `False` therefore means "read again", which handles that too.
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None):
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self._root = f"{prefix}/" if prefix else ""
        self.location = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self.stats = StorageStats()
        self.client = client if client is not None else _s3_client()

    def _object_key(self, key: str) -> str:
        return self._root + check_key(key)

    def read(self, key: str) -> bytes | None:
        found = self.read_versioned(key)
        return None if found is None else found[0]

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        object_key = self._object_key(key)
        self.stats.add("gets")
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
        except self.client.exceptions.NoSuchKey:
            return None
        with response["Body"] as stream:
            body = stream.read()
        return body, response["ETag"].strip('"')

    def write(self, key: str, body: bytes) -> None:
        self._put(key, body)

    def create(self, key: str, body: bytes) -> bool:
        return self._conditional_put(key, body, IfNoneMatch="*")

    def replace(self, key: str, body: bytes, etag: str | None) -> bool:
        if etag is None:
            return self.create(key, body)
        return self._conditional_put(key, body, IfMatch=f'"{etag.strip(chr(34))}"')

    def list(self, prefix: str = "") -> Iterator[str]:
        """Lazily, one list_objects_v2 request (and one `lists`) per 1,000 keys."""
        check_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=self._root + prefix, PaginationConfig={"PageSize": 1000}
        )
        cut = len(self._root)
        for page in pages:
            self.stats.add("lists")
            for item in page.get("Contents", ()):
                key = item["Key"][cut:]
                if not key.endswith("/"):  # "folder" placeholders made by consoles are no objects
                    yield key

    def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        self.stats.add("deletes")
        self.client.delete_object(Bucket=self.bucket, Key=object_key)

    def _put(self, key: str, body: bytes, **conditions: str) -> None:
        object_key = self._object_key(key)
        self.stats.add("puts")
        self.client.put_object(Bucket=self.bucket, Key=object_key, Body=body, **conditions)

    def _conditional_put(self, key: str, body: bytes, **conditions: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._put(key, body, **conditions)
            return True
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _S3_LOST_RACE or status == 412:
                # A retried request (after a 500 or a reset) may have lost to its own first try,
                # which landed before its answer was lost: then the object holds exactly this body.
                retried = error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
                return retried and self.read(key) == body
            if "IfMatch" in conditions and code == "NoSuchKey":
                return False  # deleted since it was read (not NoSuchBucket: that propagates)
            raise


def _s3_client() -> Any:
    """One client per process and AWS configuration, shared by every storage (botocore clients
    are thread-safe): a warm Lambda, or a worker checking a batch, does not build a new one,
    with its own copy of S3's service model, for each storage it opens."""
    names = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
             "AWS_ACCESS_KEY_ID")  # fmt: skip
    return _configured_s3_client(tuple(os.environ.get(name) for name in names))


@functools.lru_cache(maxsize=8)
def _configured_s3_client(configuration: tuple[str | None, ...]) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 5})
    return boto3.session.Session().client("s3", config=config)


def open_storage(location: str | Path) -> Storage:
    """The storage at `location`: "s3://bucket[/prefix]", or a local directory.

    A local directory is created on the first write. "file://" URLs are local paths; any other
    "scheme://" is refused rather than silently becoming a local directory named after it.
    """
    if isinstance(location, Path):
        return LocalStorage(location)
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://") :].partition("/")
        return S3Storage(bucket, prefix)
    if location.startswith("file://"):
        return LocalStorage(location[len("file://") :])
    if "://" in location:
        raise ValueError(f"unsupported storage location {location!r}: use s3://… or a local path")
    return LocalStorage(location)
