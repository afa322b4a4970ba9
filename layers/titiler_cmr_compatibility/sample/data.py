"""A Range-capable static file server standing in for DAAC https endpoints (and /s3credentials).

GDAL (rasterio) and obstore refuse a server that ignores ``Range``, and ``python -m http.server``
ignores it, hence this server. It maps ``GET /<bucket>/<key>`` onto ``<root>/<bucket>/<key>``,
the layout of ``fixtures/data`` (README §2.2), so a granule's https ``GET DATA`` URL works after
swapping scheme and host (``localize``). Per-path behaviours reproduce what the survey meets in
the wild: bearer-token protection (401), outright denial (403), the Earthdata-login redirect that
returns an HTML page instead of data, endpoints that hang or answer slowly, and the
``/s3credentials`` endpoint. Request and byte accounting lets a test assert that a check read
only part of a file.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .server import FileSlice, LocalHTTPServer, Request, Response

__all__ = ["EARTHDATA_LOGIN_HTML", "DataServer"]

#: What a data URL answers when Earthdata login intercepts it: a 200 HTML page, not the data.
EARTHDATA_LOGIN_HTML = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Earthdata Login</title>
</head>
<body>
<div id="header"><a href="/">Earthdata Login</a></div>
<div id="login">
<h1>Earthdata Login</h1>
<form id="login-form" action="/login" accept-charset="UTF-8" method="post">
<input type="hidden" name="client_id" value="fake-client-id">
<input type="hidden" name="response_type" value="code">
<label for="username">Username</label>
<input type="text" name="username" id="username" autocomplete="username">
<label for="password">Password</label>
<input type="password" name="password" id="password" autocomplete="current-password">
<input type="submit" name="commit" value="Log in">
</form>
<p><a href="/users/new">Register</a> | <a href="/reset_passwords/new">Forgot password?</a></p>
</div>
</body>
</html>
"""

LOGIN_PATH = "/oauth/authorize"


@dataclass(frozen=True)
class _Entry:
    data: bytes | Path
    content_type: str | None = None


class _Unsatisfiable(Exception):
    """The Range header cannot be served for this size (416)."""


def _path_matcher(path: str) -> Callable[[str], bool]:
    """Exact URL path, or a prefix when ``path`` ends with ``/`` (a whole bucket or folder)."""
    normalised = path if path.startswith("/") else "/" + path
    if normalised.endswith("/"):
        return lambda candidate: candidate.startswith(normalised)
    return lambda candidate: candidate == normalised


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive ``(first, last)`` byte positions for a single ``bytes=`` range, or None.

    None means "ignore the header and send the whole body", which RFC 9110 requires for a
    malformed header and permits for multiple ranges (no client used here asks for those).
    Raises ``_Unsatisfiable`` when the range lies entirely beyond the end.
    """
    if not header or not header.strip().lower().startswith("bytes="):
        return None
    spec = header.split("=", 1)[1].strip()
    if "," in spec or "-" not in spec:
        return None
    first_text, last_text = (part.strip() for part in spec.split("-", 1))
    try:
        if not first_text:  # suffix range: the last n bytes
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                raise _Unsatisfiable
            return max(0, size - suffix), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first < 0:
        return None
    if first >= size:
        raise _Unsatisfiable
    if last < first:
        return None
    return first, min(last, size - 1)


class DataServer(LocalHTTPServer):
    """Static files over HTTP with Range, auth and fault behaviours.

    Args:
        root: directory served as ``GET /<relative path>`` (e.g. the recorded ``fixtures/data``).
            Paths added with ``add`` take precedence.
    """

    def __init__(self, root: Path | None = None) -> None:
        super().__init__()
        self.root = root.resolve() if root is not None else None
        login_page = _Entry(EARTHDATA_LOGIN_HTML, "text/html; charset=utf-8")
        self._entries: dict[str, _Entry] = {LOGIN_PATH: login_page}
        self._bearer: list[tuple[str, str]] = []
        self._login_redirects: list[Callable[[str], bool]] = []

    # -------------------------------------------------------------------------- content
    def add(self, path: str, data: bytes | Path, content_type: str | None = None) -> None:
        """Serve ``data`` (bytes, or a file streamed from disk) at ``path``."""
        self._entries[_normalise(path)] = _Entry(data, content_type)

    def add_s3_credentials(
        self, path: str = "/s3credentials", creds: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Answer ``path`` like a DAAC ``/s3credentials`` endpoint; returns the credentials.

        The endpoint obeys ``require_bearer``/``login_redirect`` like any other path, so a test
        can check that the token is sent.
        """
        if creds is None:
            expiration = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
            creds = {
                "accessKeyId": "ASIAFAKEACCESSKEYID00",
                "secretAccessKey": "fake/secret/access/key/0000000000000000",
                "sessionToken": "FakeSessionToken//////////wEaCXVzLXdlc3QtMiJHMEUCIQ==",
                "expiration": expiration.isoformat(sep=" "),
            }
        self.add(path, json.dumps(creds).encode(), "application/json")
        return creds

    def url_for(self, path: str) -> str:
        return self.url + quote(_normalise(path))

    def localize(self, url: str) -> str:
        """Point a real granule URL at this server, keeping ``/<bucket>/<key>``.

        ``https://archive.podaac.earthdata.nasa.gov/<bucket>/<key>`` and
        ``s3://<bucket>/<key>`` both become ``<self.url>/<bucket>/<key>``.
        """
        split = urlsplit(url)
        path = f"/{split.netloc}{split.path}" if split.scheme == "s3" else split.path
        return self.url + path + (f"?{split.query}" if split.query else "")

    # ------------------------------------------------------------------------ behaviours
    def require_bearer(self, path_prefix: str, token: str) -> None:
        """Paths under ``path_prefix`` need ``Authorization: Bearer <token>`` (else 401)."""
        self._bearer.append((_normalise(path_prefix), token))

    def deny(self, path: str, status: int = 403) -> None:
        """Always answer ``status`` for ``path`` (a trailing ``/`` makes it a prefix)."""
        matches = _path_matcher(path)
        self._status_where(lambda request: matches(request.path), status)

    def login_redirect(self, path: str) -> None:
        """Unauthenticated requests to ``path`` get a 302 to an Earthdata-login-like page.

        "Unauthenticated" means no token accepted by a ``require_bearer`` rule covering the
        path; with no such rule every request is redirected, which is what a data URL does
        when the caller's token is not honoured. The page itself answers 200 ``text/html``.
        """
        self._login_redirects.append(_path_matcher(path))

    def hang(self, path: str) -> None:
        """Requests for ``path`` block until ``stop()``, then the connection is dropped."""
        matches = _path_matcher(path)
        self._hang_where(lambda request: matches(request.path))

    def slow(self, path: str, seconds: float) -> None:
        """Requests for ``path`` wait ``seconds`` before anything is sent."""
        matches = _path_matcher(path)
        self._delay_where(lambda request: matches(request.path), seconds)

    # --------------------------------------------------------------------------- serving
    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response.text("Method not allowed", 405, {"Allow": "GET, HEAD"})
        authorized = self._authorized(request)
        if authorized is not True and any(m(request.path) for m in self._login_redirects):
            return self._redirect_to_login(request)
        if authorized is False:
            return Response.text(
                "Unauthorized", 401, {"WWW-Authenticate": 'Bearer realm="Earthdata Login"'}
            )
        entry = self._lookup(request.path)
        if entry is None:
            return Response.text(f"Not found: {request.path}", 404)
        return _serve(request, entry)

    def _authorized(self, request: Request) -> bool | None:
        """True/False when a bearer rule covers the path, None when none does."""
        tokens = [token for prefix, token in self._bearer if request.path.startswith(prefix)]
        if not tokens:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        return scheme.lower() == "bearer" and credential.strip() in tokens

    def _redirect_to_login(self, request: Request) -> Response:
        query = urlencode(
            {
                "client_id": "fake-client-id",
                "response_type": "code",
                "redirect_uri": f"{self.url}/redirect",
                "state": request.target,
            }
        )
        return Response.text("Found", 302, {"Location": f"{self.url}{LOGIN_PATH}?{query}"})

    def _lookup(self, path: str) -> _Entry | None:
        entry = self._entries.get(path)
        if entry is not None or self.root is None:
            return entry
        candidate = (self.root / PurePosixPath(path).relative_to("/")).resolve()
        if candidate.is_relative_to(self.root) and candidate.is_file():
            return _Entry(candidate)
        return None


def _normalise(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def _serve(request: Request, entry: _Entry) -> Response:
    """Whole body (200) or one byte range (206/416), with validators GDAL and obstore like."""
    data = entry.data
    if isinstance(data, Path):
        stat = data.stat()
        size, mtime = stat.st_size, stat.st_mtime
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    else:
        size, mtime = len(data), 0.0
        etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    content_type = (
        entry.content_type
        or mimetypes.guess_type(str(PurePosixPath(request.path).name))[0]
        or "application/octet-stream"
    )
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "Last-Modified": formatdate(mtime, usegmt=True),
    }
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except _Unsatisfiable:
        headers["Content-Range"] = f"bytes */{size}"
        return Response(416, b"", headers, None)
    first, last = byte_range if byte_range is not None else (0, size - 1)
    length = max(0, last - first + 1)
    body: Any = (
        FileSlice(data, first, length) if isinstance(data, Path) else data[first : first + length]
    )
    if byte_range is None:
        return Response(200, body, headers, content_type)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return Response(206, body, headers, content_type)
