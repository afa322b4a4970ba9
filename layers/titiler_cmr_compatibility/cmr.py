"""A small CMR search client: its own timeouts, retries with backoff and jitter, a Client-Id.

No CMR client library handles rate limits, and every request here is counted so a check can
report (and a benchmark can bound) how many it made.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from .deadline import Deadline
from .result import scrub
from .settings import Settings, get_settings
from .umm import as_count

log = logging.getLogger(__name__)

UMM_JSON = "application/vnd.nasa.cmr.umm_results+json"
MAX_PAGE_SIZE = 2000
# CMR refuses offset + page_size beyond this, so a random granule is drawn below it.
MAX_OFFSET = 1_000_000
# Above this many providers the query string gets long: send the search as a form POST.
_POST_PROVIDERS_ABOVE = 20
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# The most of one CMR answer read into memory. A page of 2,000 UMM-JSON collections is about
# 21 MB (28 MB for the 2,000 largest of the 4,009 recorded records): 128 MiB leaves 4x headroom
# and still bounds a setup Lambda (1 GB) and a worker against an answer that never ends.
MAX_RESPONSE_BYTES = 128 * 2**20
_READ_CHUNK = 2**16
# What a request can fail with on the way: requests' errors, and urllib3's while the body is read
# from the socket (a reset, a read timeout, a broken gzip stream).
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError)


class CMRError(Exception):
    """CMR did not answer usefully after all retries (the message holds no secrets)."""


@dataclass(frozen=True)
class Answer:
    """One CMR answer, read whole within the request's time and MAX_RESPONSE_BYTES."""

    status: int
    headers: Mapping[str, str]  # case-insensitive, as requests gives them
    body: bytes | bytearray

    def json(self) -> Any:
        return json.loads(self.body)


class CMRClient:
    """One client per process or check; `requests_made` counts every HTTP request it sent."""

    def __init__(self, settings: Settings | None = None, deadline: Deadline | None = None):
        self.settings = settings or get_settings()
        self.deadline = deadline
        self.requests_made = 0
        self._session = requests.Session()
        self._session.headers.update(
            {"Client-Id": self.settings.cmr_client_id, "Accept": "application/json"}
        )

    @property
    def search_url(self) -> str:
        return f"{self.settings.cmr_url}/search"

    def _request(
        self,
        path: str,
        params: Sequence[tuple[str, Any]] = (),
        headers: dict[str, str] | None = None,
        post: bool = False,
    ) -> Answer:
        attempts = self.settings.cmr_retries + 1
        for attempt in range(attempts):
            timeout = self.settings.cmr_timeout
            if self.deadline:
                timeout = self.deadline.cap(timeout)
            self.requests_made += 1
            try:
                answer = self._send(path, params, headers, post, timeout)
            except _TRANSPORT_ERRORS as error:
                failure = f"{type(error).__name__}: {error}"
                retry_after = None
            else:
                if answer.status < 400:
                    return answer
                failure = f"HTTP {answer.status}: {_cmr_errors(answer)}"
                if answer.status not in _RETRY_STATUSES:
                    raise CMRError(scrub(f"CMR {path} failed: {failure}"))
                retry_after = _retry_after(answer, self.settings.cmr_max_retry_after)
            if attempt + 1 < attempts:
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                if self.deadline:
                    delay = min(delay, self.deadline.remaining())
                log.warning("CMR %s failed (%s); retry %d in %.1f s", path, scrub(failure), attempt + 1, delay)
                time.sleep(delay)
        raise CMRError(scrub(f"CMR {path} failed after {attempts} attempts: {failure}"))

    def _send(
        self, path: str, params: Sequence[tuple[str, Any]], headers: dict[str, str] | None, post: bool, timeout: float
    ) -> Answer:
        """One request, its answer read in chunks: requests' own timeout bounds each socket read
        only, so a body sent a byte a second would never time out; this bounds the whole answer
        (to `timeout` and one read more) and its size."""
        ends = time.monotonic() + timeout
        query = {"data" if post else "params": list(params)}
        with self._session.request("POST" if post else "GET", f"{self.search_url}/{path}", headers=headers,
                                   timeout=timeout, stream=True, **query) as response:  # fmt: skip
            body = bytearray()
            while chunk := response.raw.read1(_READ_CHUNK, decode_content=True):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise CMRError(f"CMR {path} answered with more than {MAX_RESPONSE_BYTES // 2**20} MiB; stopped reading")
                if time.monotonic() > ends:
                    raise requests.Timeout(f"the answer took longer than {timeout:g} s to arrive")
            return Answer(response.status_code, response.headers, body)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so many workers do not retry in step."""
        return random.uniform(0, self.settings.cmr_backoff * 2**attempt)

    def _items(self, answer: Answer) -> tuple[list, int | None]:
        """The items of a search answer, and CMR's count of matches (None when it gives none that
        is believable: the count is only ever a hint)."""
        try:
            body = answer.json()
        except ValueError as error:
            raise CMRError(f"CMR answered with something that is not JSON: {error}") from error
        items = (body.get("items") or []) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise CMRError("CMR answered with JSON that is not a search result (no list of items)")
        return items, as_count(answer.headers.get("CMR-Hits", body.get("hits")))

    # Collections

    def collection(self, concept_id: str) -> dict | None:
        """One collection's UMM-JSON item, or None when CMR does not know it."""
        items, _ = self._items(self._request("collections.umm_json", [("concept_id", concept_id)]))
        return items[0] if items else None

    def search_collections(
        self,
        providers: Sequence[str] | None = None,
        limit: int | None = None,
        page_size: int = MAX_PAGE_SIZE,
        has_granules: bool = True,
        include_granule_counts: bool = True,
    ) -> Iterator[dict]:
        """Collections by usage score, paged with CMR-Search-After (offsets stop at 1,000,000)."""
        page_size = min(page_size, MAX_PAGE_SIZE, limit or MAX_PAGE_SIZE)
        params: list[tuple[str, Any]] = [
            ("page_size", page_size),
            ("sort_key[]", "-usage_score"),
        ]
        if has_granules:
            params.append(("has_granules", "true"))
        if include_granule_counts:
            params.append(("include_granule_counts", "true"))
        params += [("provider[]", provider) for provider in providers or ()]
        post = len(providers or ()) > _POST_PROVIDERS_ABOVE
        search_after: str | None = None
        seen: set[str] = set()
        returned = 0
        while True:
            headers = {"CMR-Search-After": search_after} if search_after else None
            answer = self._request("collections.umm_json", params, headers=headers, post=post)
            items, _ = self._items(answer)
            for item in items:
                yield item
                returned += 1
                if limit is not None and returned >= limit:
                    return
            search_after = answer.headers.get("CMR-Search-After")
            if not items or not search_after:
                return
            if search_after in seen:
                raise CMRError(f"CMR sent the same CMR-Search-After twice (after {returned:,} collections): its "
                               "paging would never end, so it was stopped")  # fmt: skip
            seen.add(search_after)

    def collection_hits(self, providers: Sequence[str] | None = None, has_granules: bool = True) -> int | None:
        params: list[tuple[str, Any]] = [("page_size", 0)]
        if has_granules:
            params.append(("has_granules", "true"))
        params += [("provider[]", provider) for provider in providers or ()]
        post = len(providers or ()) > _POST_PROVIDERS_ABOVE
        return self._items(self._request("collections.umm_json", params, post=post))[1]

    # Granules

    def granule(self, concept_id: str) -> dict | None:
        items, _ = self._items(self._request("granules.umm_json", [("concept_id", concept_id)]))
        return items[0] if items else None

    def granule_at(self, collection_id: str, offset: int) -> tuple[dict | None, int | None]:
        """The granule at `offset` in CMR's order, and the collection's granule count (None when
        CMR gives no believable one)."""
        params = [("collection_concept_id", collection_id), ("page_size", 1), ("offset", offset)]
        items, hits = self._items(self._request("granules.umm_json", params))
        return (items[0] if items else None), hits

    def random_granule(
        self, collection_id: str, known_count: int | None = None, rng: random.Random | None = None
    ) -> tuple[dict | None, int | None]:
        """A random granule and the granule count: one request when the count is known, else two.

        A stale known count (granules deleted since) costs one more request, never a wrong answer;
        without a believable count from CMR, the first granule is the sample.
        """
        rng = rng or random.Random()
        if known_count:
            count = known_count
        else:
            first, count = self.granule_at(collection_id, 0)
            if count is None or count <= 1:
                return first, count
        granule, hits = self.granule_at(collection_id, rng.randrange(min(count, MAX_OFFSET)))
        if granule is None and hits:
            granule, hits = self.granule_at(collection_id, rng.randrange(min(hits, MAX_OFFSET)))
        return granule, hits

    # Providers

    def eosdis_providers(self) -> list[str]:
        """Provider ids of the EOSDIS consortium, cached per CMR; an error fails loudly.

        A silently empty list would drop the provider filter and survey every provider in CMR.
        """
        key = self.settings.cmr_url
        with _PROVIDERS_LOCK:
            if key not in _PROVIDERS_CACHE:
                answer = self._request("providers")
                try:
                    body = answer.json()
                except ValueError as error:
                    raise CMRError(f"CMR providers answer is not JSON: {error}") from error
                items = body.get("items", body) if isinstance(body, dict) else body
                providers = sorted(
                    provider
                    for item in (items if isinstance(items, list) else [])
                    if isinstance(item, dict) and "EOSDIS" in {c.upper() for c in _consortiums(item)}
                    and (provider := _provider_id(item))
                )
                if not providers:
                    raise CMRError("CMR lists no EOSDIS provider; refusing to survey without a filter")
                _PROVIDERS_CACHE[key] = providers
            return list(_PROVIDERS_CACHE[key])


_PROVIDERS_CACHE: dict[str, list[str]] = {}
_PROVIDERS_LOCK = threading.Lock()


def _consortiums(item: dict) -> list[str]:
    value = item.get("Consortiums") or item.get("consortiums") or []
    values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [consortium for consortium in values if isinstance(consortium, str)]


def _provider_id(item: dict) -> str:
    value = item.get("ProviderId") or item.get("provider-id") or item.get("provider_id")
    return value if isinstance(value, str) else ""


def _retry_after(answer: Answer, most: float) -> float | None:
    """The seconds a Retry-After header asks for, within [0, most]; None without one in seconds."""
    try:
        seconds = float(answer.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
    return min(max(seconds, 0.0), most) if math.isfinite(seconds) else most


def _cmr_errors(answer: Answer) -> str:
    try:
        errors = answer.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    return json.dumps(errors)[:300] if errors else bytes(answer.body[:300]).decode(errors="replace")
