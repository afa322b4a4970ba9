"""Shared machinery for the loopback HTTP servers (``FakeCMR``, ``DataServer``).

Both fakes need the same things: a threaded loopback server with a clean lifecycle, a log of
every request, per-path byte accounting and fault injection. They live here once, so that each
server module only describes *what* it answers (``LocalHTTPServer.handle``), never *how* the
bytes travel.

Design points, each one a failure mode seen with real clients:

* ``stop()`` never waits for handler threads. A handler that was told to hang, or a client
  that keeps a pooled keep-alive connection open, must not stall a test suite or the demo, so
  ``stop()`` wakes every waiting handler, shuts down every open client socket and does not
  join handler threads (``block_on_close = False``; they are daemon threads).
* Clients such as GDAL and obstore close connections as soon as they have the bytes they want.
  A broken pipe or reset while writing is therefore normal and is swallowed, not printed.
* ``HTTPServer.server_bind`` calls ``socket.getfqdn``, a reverse DNS lookup that can take
  seconds on a machine without a resolver; binding skips it.
* The handler speaks HTTP/1.1 with an explicit ``Content-Length`` on every response, so that
  keep-alive works as it does against real servers.
* The client runs in this same process, and the garbage collector runs in whichever thread
  happens to allocate. A collection in a server thread that frees a leftover h5py object needs
  h5py's global lock, which the check's thread holds while h5py waits for bytes from this very
  server: both wait until the client's timeout (30 s, then a wrong ``data_unavailable``). So
  while any server runs, automatic collection is paused; it resumes when the last one stops.
"""

from __future__ import annotations

import contextlib
import gc
import json
import socket
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, NamedTuple, Self
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "FileSlice",
    "Headers",
    "LocalHTTPServer",
    "RecordedRequest",
    "Request",
    "Response",
    "Stats",
    "Stream",
]

#: Errors that mean "the client went away"; they are expected and never reported.
# What a check needs to read from these servers: production settings refuse loopback hosts and
# send the Earthdata token to Earthdata hosts only; the stand-in NASA is both, on 127.0.0.1.
LOOPBACK_SETTINGS: dict[str, Any] = {"allow_loopback_hosts": True, "token_hosts": ["127.0.0.1"]}

_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_WRITE_CHUNK = 256 * 1024


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive view of request headers.

    HTTP header names are case-insensitive and clients differ (``requests`` sends
    ``Authorization``, httpx sends ``authorization``); tests should not care.
    Repeated headers are joined with ``", "`` as RFC 9110 allows.
    """

    def __init__(self, items: Mapping[str, str] | Message | None = None) -> None:
        self._data: dict[str, tuple[str, str]] = {}
        pairs = list(items.items()) if isinstance(items, Message) else list((items or {}).items())
        for name, value in pairs:
            key = name.lower()
            if key in self._data:
                value = f"{self._data[key][1]}, {value}"
            self._data[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._data[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._data

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class Request:
    """One parsed request as handed to ``LocalHTTPServer.handle``.

    ``query`` holds the URL query parameters and, for a form-encoded POST, the body parameters
    too: CMR treats both the same, so handlers never need to know which one was used.
    """

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes = b""

    def param(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter, or ``default``."""
        values = self.query.get(name)
        return values[0] if values else default

    def values(self, *names: str) -> list[str]:
        """All values of several parameter spellings, e.g. ``provider`` and ``provider[]``."""
        return [value for name in names for value in self.query.get(name, [])]


class RecordedRequest(NamedTuple):
    """Entry of ``LocalHTTPServer.requests``: a plain tuple so tests can unpack it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers


@dataclass(frozen=True)
class FileSlice:
    """A byte range of a file on disk, streamed instead of loaded (files can be hundreds of MB)."""

    path: Any  # pathlib.Path; Any keeps this module free of pathlib-only typing noise
    start: int
    length: int


@dataclass(frozen=True)
class Stream:
    """A body of unknown length, written chunk by chunk as ``chunks`` yields them (an answer that
    never ends, or trickles). It has no ``Content-Length``: closing the connection ends it."""

    chunks: Iterable[bytes]


@dataclass
class Response:
    """What a handler answers. The base sets ``Content-Length`` (``Connection: close`` for a
    ``Stream``) and omits the body for HEAD."""

    status: int = 200
    body: bytes | FileSlice | Stream = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/octet-stream"

    @property
    def length(self) -> int | None:
        if isinstance(self.body, Stream):
            return None
        return self.body.length if isinstance(self.body, FileSlice) else len(self.body)

    @classmethod
    def json(
        cls,
        payload: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> Response:
        return cls(status, json.dumps(payload).encode(), dict(headers or {}), content_type)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> Response:
        return cls(status, text.encode(), dict(headers or {}), content_type)


@dataclass
class Stats:
    """Traffic for one path or for the whole server.

    ``requests`` counts GETs only (HEADs carry no body and would blur "how many reads did the
    check make"); ``bytes_sent`` counts body bytes handed to the socket. When a client hangs
    up mid-body, writing stops at the first failed write, but up to a few MB may already sit
    in loopback socket buffers, so use Range sizes, not early hang-ups, to assert small reads.
    """

    requests: int = 0
    bytes_sent: int = 0
    head_requests: int = 0

    def __getitem__(self, key: str) -> int:  # allow ``stats()["bytes_sent"]`` as well
        return int(getattr(self, key))


FaultKind = Literal["status", "drop", "hang", "delay"]
Matcher = Callable[[Request], bool]


@dataclass
class _Fault:
    kind: FaultKind
    matches: Matcher
    remaining: int | None  # None: applies forever
    status: int = 503
    seconds: float = 0.0


def substring_matcher(path_contains: str | None) -> Matcher:
    """Match requests whose target (path plus query string) contains the text; None matches all."""
    if path_contains is None:
        return lambda request: True
    return lambda request: (
        path_contains in request.target or path_contains in unquote(request.target)
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # server_close() must not join handler threads (they may hang)
    # socketserver listens with a backlog of 5: a survey's 32 checks connecting at once would
    # overflow it, and a dropped connection attempt waits out TCP's retransmission (1, 3, 7 s...).
    request_queue_size = 128

    def __init__(self, owner: LocalHTTPServer) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # skip HTTPServer's getfqdn() reverse lookup
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        """Unblock handler threads stuck reading or writing a socket."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection cannot pin a thread forever
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # stdlib's parameter name
        """Silence per-request logging; the request log on the server replaces it."""

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        try:
            request = self._parse()
            response = self.server.owner._process(request)
            if response is None:  # drop the connection without answering
                self.close_connection = True
                return
            self._send(request, response)
        except _CLIENT_GONE:
            self.close_connection = True

    def _parse(self) -> Request:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        query = parse_qs(split.query, keep_blank_values=True)
        content_type = self.headers.get("Content-Type", "")
        if body and content_type.startswith("application/x-www-form-urlencoded"):
            for name, values in parse_qs(body.decode(), keep_blank_values=True).items():
                query.setdefault(name, []).extend(values)
        return Request(
            method=self.command,
            target=self.path,
            path=unquote(split.path) or "/",
            query=query,
            headers=Headers(self.headers),
            body=body,
        )

    def _send(self, request: Request, response: Response) -> None:
        self.send_response(response.status)
        headers = dict(response.headers)
        if response.content_type and "Content-Type" not in headers:
            headers["Content-Type"] = response.content_type
        if response.length is None:
            headers["Connection"] = "close"
            self.close_connection = True
        else:
            headers.setdefault("Content-Length", str(response.length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if request.method == "HEAD" or response.status in (204, 304):
            return
        if isinstance(response.body, Stream):
            for chunk in response.body.chunks:
                self._write(request.path, chunk)
        elif isinstance(response.body, FileSlice):
            self._stream_file(request.path, response.body)
        else:
            view = memoryview(response.body)
            for start in range(0, len(view), _WRITE_CHUNK):
                self._write(request.path, view[start : start + _WRITE_CHUNK])

    def _stream_file(self, path: str, body: FileSlice) -> None:
        remaining = body.length
        with open(body.path, "rb") as handle:
            handle.seek(body.start)
            while remaining > 0:
                chunk = handle.read(min(_WRITE_CHUNK, remaining))
                if not chunk:
                    break
                self._write(path, chunk)
                remaining -= len(chunk)

    def _write(self, path: str, chunk: bytes | memoryview) -> None:
        """Write one chunk, counting it *before* the write: a client that has read the whole
        body must already see it in ``stats()``; a failed write is taken back."""
        owner = self.server.owner
        owner._account_bytes(path, len(chunk))
        try:
            self.wfile.write(chunk)
        except BaseException:
            owner._account_bytes(path, -len(chunk))
            raise


class _CollectorPause:
    """Automatic garbage collection off while at least one server runs (see the module notes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers = 0
        self._was_enabled = False

    def acquire(self) -> None:
        with self._lock:
            if self._servers == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._servers += 1

    def release(self) -> None:
        with self._lock:
            self._servers -= 1
            if self._servers == 0 and self._was_enabled:
                gc.enable()


_collector_pause = _CollectorPause()


class LocalHTTPServer:
    """Base class: lifecycle, request log, accounting and fault injection.

    Subclasses implement ``handle(request) -> Response``. Use as a context manager or call
    ``start()``/``stop()``. ``url`` is ``http://127.0.0.1:<port>`` without a trailing slash.
    """

    def __init__(self) -> None:
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._stats: dict[str, Stats] = {}
        self._faults: list[_Fault] = []
        self._answers: list[tuple[Matcher, Callable[[Request], Response]]] = []
        #: Tracebacks of exceptions raised by ``handle`` (answered as 500); tests can assert
        #: this is empty to catch bugs in the fakes themselves.
        self.errors: list[str] = []

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread. Idempotent."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        _collector_pause.acquire()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self._httpd.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving without waiting for handler threads (a hanging handler is released)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_all_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None
        _collector_pause.release()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait_for_stop(self, seconds: float | None = None) -> bool:
        """Block a handler until ``stop()`` (True) or for ``seconds`` (False): a host that stalls."""
        return self._stopping.wait(seconds)

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------------------------ recording
    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received, in arrival order."""
        with self._lock:
            return [RecordedRequest(r.method, r.path, r.query, r.headers) for r in self._requests]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, path_contains: str | None = None) -> int:
        """Number of requests whose target (path and query string) contains the text."""
        matches = substring_matcher(path_contains)
        with self._lock:
            return sum(1 for request in self._requests if matches(request))

    @property
    def auth_headers(self) -> list[str]:
        """``Authorization`` header values received, in order (to assert a token was sent)."""
        return [r.headers["Authorization"] for r in self.requests if "Authorization" in r.headers]

    def stats(self, path: str | None = None) -> Stats:
        """Traffic for one URL path (``/bucket/key``), or the total when ``path`` is None."""
        with self._lock:
            if path is not None:
                found = self._stats.get(_normalise_path(path), Stats())
                return Stats(found.requests, found.bytes_sent, found.head_requests)
            total = Stats()
            for item in self._stats.values():
                total.requests += item.requests
                total.bytes_sent += item.bytes_sent
                total.head_requests += item.head_requests
            return total

    def reset_stats(self) -> None:
        with self._lock:
            self._stats.clear()

    # ------------------------------------------------------------------------ fault injection
    def fail_next(self, n: int = 1, status: int = 503, path_contains: str | None = None) -> None:
        """Answer the next ``n`` matching requests with ``status`` (429 adds ``Retry-After: 0``)."""
        self._add_fault(_Fault("status", substring_matcher(path_contains), n, status=status))

    def drop_connection_next(self, n: int = 1, path_contains: str | None = None) -> None:
        """Close the socket of the next ``n`` matching requests without any response."""
        self._add_fault(_Fault("drop", substring_matcher(path_contains), n))

    def answer_where(self, path_contains: str | None, answer: Callable[[Request], Response]) -> None:
        """Matching requests get ``answer(request)`` instead of what ``handle`` would say (a
        hostile answer: an endless body, a lying header, a redirect elsewhere)."""
        with self._lock:
            self._answers.append((substring_matcher(path_contains), answer))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._answers.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _hang_where(self, matches: Matcher) -> None:
        """Matching requests block until ``stop()``, then the connection is dropped."""
        self._add_fault(_Fault("hang", matches, None))

    def _delay_where(self, matches: Matcher, seconds: float) -> None:
        """Matching requests wait ``seconds`` (or until ``stop()``) before being handled."""
        self._add_fault(_Fault("delay", matches, None, seconds=seconds))

    def _status_where(self, matches: Matcher, status: int) -> None:
        """Matching requests always get ``status``."""
        self._add_fault(_Fault("status", matches, None, status=status))

    def _take_faults(self, request: Request) -> tuple[float, _Fault | None]:
        """Total delay of matching delay faults, and the first matching terminal fault."""
        delay, terminal = 0.0, None
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(request):
                    continue
                if fault.kind == "delay":
                    delay += fault.seconds
                    continue
                if terminal is None:
                    terminal = fault
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
        return delay, terminal

    # ------------------------------------------------------------------------------ internals
    def handle(self, request: Request) -> Response:
        """Answer one request; subclasses override."""
        raise NotImplementedError

    def _process(self, request: Request) -> Response | None:
        """Record, account, inject faults, then delegate. None means "drop the connection"."""
        with self._lock:
            self._requests.append(request)
            stats = self._stats.setdefault(request.path, Stats())
            if request.method == "GET":
                stats.requests += 1
            elif request.method == "HEAD":
                stats.head_requests += 1
        delay, fault = self._take_faults(request)
        if delay and self._stopping.wait(delay):
            return None
        if fault is not None:
            if fault.kind == "drop":
                return None
            if fault.kind == "hang":
                self._stopping.wait()
                return None
            headers = {"Retry-After": "0"} if fault.status == 429 else {}
            return Response.json(
                {"errors": [f"Injected fault: HTTP {fault.status}"]}, fault.status, headers
            )
        with self._lock:
            answer = next((answer for matches, answer in self._answers if matches(request)), self.handle)
        try:
            return answer(request)
        except Exception:  # a bug in a fake must surface as a 500, not as a hung client
            text = traceback.format_exc()
            self.errors.append(text)
            return Response.text(text, 500)

    def _account_bytes(self, path: str, count: int) -> None:
        with self._lock:
            self._stats.setdefault(path, Stats()).bytes_sent += count


def _normalise_path(path: str) -> str:
    path = unquote(urlsplit(path).path)
    return path if path.startswith("/") else "/" + path
