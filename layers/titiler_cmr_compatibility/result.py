"""The record a check produces: the predecessor's 17 report keys, plus what users need now."""

from __future__ import annotations

import logging
import re
import traceback
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr, model_serializer

from .formats import Backend


class Reason(StrEnum):
    """Why a collection is not tiling-compatible.

    The first twelve are the predecessor's values, same names and meanings, so old and new
    reports can be compared. The ones after them are new, each for a case none of those fits.
    """

    UNSUPPORTED_FORMAT = "unsupported_format"  # the bytes are a format titiler-cmr cannot read
    CANT_OPEN_FILE = "cant_open_file"  # a supported format that its engine failed to open
    TILE_GENERATION_FAILED = "tile_generation_failed"  # opened, variable found, tile failed
    NO_GRANULE_FOUND = "no_granule_found"  # CMR lists no granule for the collection
    FAILED_TO_EXTRACT_URL = "failed_to_extract_url"  # the granule has no usable data link
    TIMEOUT = "timeout"  # the check ran past its time limit
    CANT_EXTRACT_VARIABLES = "cant_extract_variables"  # the file holds no data variables
    GROUP_STRUCTURE = "group_structure"  # the data sit in groups and no group can be tiled
    NO_XY_DIMENSIONS = "no_xy_dimensions"  # no variable has two dimensions titiler-cmr sees as X/Y
    FORBIDDEN = "forbidden"  # 401/403 or the Earthdata login page instead of data
    DECODE_ERROR = "decode_error"  # xarray could not decode the chosen variable
    GROUP_NOT_ALIGNED_WITH_PARENTS = "group_not_aligned_with_parents"  # xarray's datatree refuses
    # New: CMR itself failed (5xx/429/connection) after all retries. Says nothing about the
    # collection, so a re-run should retry it (`--reprocess-reason cmr_error`).
    CMR_ERROR = "cmr_error"
    # New: the data host failed (404, 5xx, connection) after retries; the data may be fine.
    DATA_UNAVAILABLE = "data_unavailable"
    # New, written by the survey (not the check): still pending after the last attempt.
    PROCESSING_FAILED = "processing_failed"


class CheckResult(BaseModel):
    """One collection's verdict. Field order is the report's column order."""

    # The predecessor's 17 keys, same names and meanings.
    collection_concept_id: str
    collection_short_name_and_version: str | None = None
    concept_id: str | None = None  # the granule that was sampled
    data_center: str | None = None
    data_url: str | None = None
    backend: Backend | None = None
    format: str | None = None  # the metadata format string as found
    extension: str | None = None
    tiling_compatible: bool = False
    incompatible_reason: Reason | None = None
    error_message: str | None = None
    tiles_url: str | None = None
    variable: str | None = None
    data_variables: list[str] | None = None
    num_granules: int | None = None
    processing_level: str | None = None
    groups: list[str] | None = None
    # New.
    group: str | None = None  # the group the chosen variable lives in
    container: str | None = None  # what the first bytes of the file are
    format_family: str | None = None  # the metadata format, normalised
    access_type: str | None = None  # direct (s3) or external (https), as actually used
    checked_at: str | None = None  # ISO 8601, UTC
    duration_s: float | None = None
    bytes_read: int | None = None  # data bytes fetched from the file
    data_requests: int | None = None  # range requests to the data host
    cmr_requests: int | None = None
    file_size: int | None = None
    # What titiler-cmr itself would have to accept for its engines' rendering of this file to
    # reach a user (e.g. "the extension '.TIF'"): the report counts collections per such fix.
    titiler_cmr_blocker: str | None = None
    # How the tile was asked for, as in `tiles_url` (its titiler-cmr query parameters):
    sel: list[str] | None = None  # `sel` selectors, "dim=value" (the first index of each extra dim)
    assets: list[str] | None = None  # `assets`: the key of the file rendered, in a granule of several files
    rescale: str | None = None  # `rescale`, "low,high": the valid data range of tile 0/0/0; None for bytes
    # Tile 0/0/0 as the check rendered it, 64 x 64, "data:image/png;base64,...": compatible results only.
    thumbnail: str | None = None
    engine_versions: dict[str, str] = Field(default_factory=dict)
    # The PNG of tile 0/0/0 (256 x 256), for `tile.png` beside result.json: never in the record.
    _tile_png: bytes | None = PrivateAttr(default=None)

    @property
    def tile_png(self) -> bytes | None:
        """The PNG of tile 0/0/0 the check rendered, for a compatible result; not serialised."""
        return self._tile_png

    @tile_png.setter
    def tile_png(self, png: bytes | None) -> None:
        self._tile_png = png

    def fail(self, reason: Reason, message: str) -> CheckResult:
        """Record a failure (the message is scrubbed of secrets) and return self."""
        self.tiling_compatible = False
        self.incompatible_reason = reason
        self.error_message = scrub(message)
        return self

    def to_record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def scrubbed(self) -> CheckResult:
        """A copy as it would be written out, for printing its fields one by one."""
        return CheckResult.model_validate(self.to_record())

    @model_serializer(mode="wrap")
    def _scrubbed(self, handler) -> dict[str, Any]:
        """Every field is scrubbed on its way out: a file's variable names, a record's links and a
        host's error text are all chosen by someone else and may carry a secret. The thumbnail is
        the check's own pixels, and the scrubber's length bound would cut it."""
        return {key: value if key in _OWN_VALUES else _scrub_value(value) for key, value in handler(self).items()}


_OWN_VALUES = frozenset({"thumbnail"})


# A file may hold 100,000 variables or groups; a record lists this many and says how many more.
MAX_LISTED = 500


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        listed = [_scrub_value(item) for item in value[:MAX_LISTED]]
        if len(value) > MAX_LISTED:
            listed.append(f"... and {len(value) - MAX_LISTED} more")
        return listed
    if isinstance(value, dict):
        return {key: _scrub_value(item) for key, item in value.items()}
    return value


REPORT_KEYS = list(CheckResult.model_fields)

_SECRET_PATTERNS = [
    # Signed-URL and token query parameters (X-Amz-Signature, X-Amz-Credential, Signature, ...).
    (
        re.compile(
            r"([?&](?:X-Amz-[A-Za-z-]+|Signature|Policy|Key-Pair-Id|Expires|(?:access_)?token|"
            r"code|state)=)[^&\s'\"]+",
            re.IGNORECASE,
        ),
        r"\1<redacted>",
    ),
    (re.compile(r"(authorization\s*[:=]\s*)(bearer\s+)?[^\s,'\"}]+", re.IGNORECASE), r"\1<redacted>"),
    (re.compile(r"\bbearer\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), "Bearer <redacted>"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), "<redacted-jwt>"),
    (re.compile(r"\b(ASIA|AKIA)[A-Z0-9]{12,}\b"), "<redacted-access-key>"),
    (
        re.compile(
            r"((?:secret_?access_?key|session_?token|access_?key_?id|password|token)"
            r"['\"]?\s*[:=]\s*['\"]?)[^\s,'\"}]+",
            re.IGNORECASE,
        ),
        r"\1<redacted>",
    ),
    # user:password@ (or a lone user or token) before a URL's host.
    (re.compile(r"(://)[^/\s@]+@"), r"\1<redacted>@"),
]

# Exact secret values seen in this process (tokens, passwords, temporary keys); see `register_secret`.
_KNOWN_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so `scrub` removes it wherever it appears, whatever its shape."""
    if value and len(value) >= 4:
        _KNOWN_SECRETS.add(value)


def scrub(message: str | None, limit: int = 2000) -> str | None:
    """Remove tokens, credentials and signed-URL queries from a message, and bound its length."""
    if message is None:
        return None
    text = str(message)
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _scrubbing_record_factory(default_factory):
    def factory(*args, **kwargs) -> logging.LogRecord:
        record = default_factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is logged as it is, not lost
            message = f"{record.msg} {record.args}"
        record.msg, record.args = scrub(message, limit=20_000), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip(), limit=50_000)
        return record

    return factory


# Every log line of the process, whichever library writes it and whichever handler prints it,
# is scrubbed when the record is made: installed once, when any part of the tool is imported.
if not getattr(logging.getLogRecordFactory(), "scrubs_secrets", False):
    _factory = _scrubbing_record_factory(logging.getLogRecordFactory())
    _factory.scrubs_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(_factory)
