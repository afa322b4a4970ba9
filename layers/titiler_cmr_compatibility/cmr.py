"""A small CMR search client: its own timeouts, retries with backoff and jitter, a Client-Id.

No CMR client library handles rate limits, and every request here is counted so a check can
report (and a benchmark can bound) how many it made.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from .deadline import Deadline
from .result import scrub
from .settings import Settings, get_settings

log = logging.getLogger(__name__)

UMM_JSON = "application/vnd.nasa.cmr.umm_results+json"
MAX_PAGE_SIZE = 2000
# CMR refuses offset + page_size beyond this, so a random granule is drawn below it.
MAX_OFFSET = 1_000_000
# Above this many providers the query string gets long: send the search as a form POST.
_POST_PROVIDERS_ABOVE = 20
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class CMRError(Exception):
    """CMR did not answer usefully after all retries (the message holds no secrets)."""


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
    ) -> requests.Response:
        url = f"{self.search_url}/{path}"
        attempts = self.settings.cmr_retries + 1
        for attempt in range(attempts):
            timeout = self.settings.cmr_timeout
            if self.deadline:
                timeout = self.deadline.cap(timeout)
            self.requests_made += 1
            try:
                if post:
                    response = self._session.post(url, data=list(params), headers=headers, timeout=timeout)
                else:
                    response = self._session.get(url, params=list(params), headers=headers, timeout=timeout)
            except (requests.ConnectionError, requests.Timeout) as error:
                failure = f"{type(error).__name__}: {error}"
                retry_after = None
            else:
                if response.status_code < 400:
                    return response
                failure = f"HTTP {response.status_code}: {_cmr_errors(response)}"
                if response.status_code not in _RETRY_STATUSES:
                    raise CMRError(scrub(f"CMR {path} failed: {failure}"))
                retry_after = _retry_after(response)
            if attempt + 1 < attempts:
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                if self.deadline:
                    delay = min(delay, self.deadline.remaining())
                log.warning("CMR %s failed (%s); retry %d in %.1f s", path, failure, attempt + 1, delay)
                time.sleep(delay)
        raise CMRError(scrub(f"CMR {path} failed after {attempts} attempts: {failure}"))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so many workers do not retry in step."""
        return random.uniform(0, self.settings.cmr_backoff * 2**attempt)

    def _items(self, response: requests.Response) -> tuple[list[dict], int]:
        try:
            body = response.json()
        except ValueError as error:
            raise CMRError(f"CMR answered with something that is not JSON: {error}") from error
        hits = int(response.headers.get("CMR-Hits", body.get("hits", 0)))
        return body.get("items") or [], hits

    # Collections

    def collection(self, concept_id: str) -> dict | None:
        """One collection's UMM-JSON item, or None when CMR does not know it."""
        response = self._request("collections.umm_json", [("concept_id", concept_id)])
        items, _ = self._items(response)
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
        returned = 0
        while True:
            headers = {"CMR-Search-After": search_after} if search_after else None
            response = self._request("collections.umm_json", params, headers=headers, post=post)
            items, _ = self._items(response)
            for item in items:
                yield item
                returned += 1
                if limit is not None and returned >= limit:
                    return
            search_after = response.headers.get("CMR-Search-After")
            if not items or not search_after:
                return

    def collection_hits(self, providers: Sequence[str] | None = None, has_granules: bool = True) -> int:
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

    def granule_at(self, collection_id: str, offset: int) -> tuple[dict | None, int]:
        """The granule at `offset` in CMR's order, and the collection's granule count."""
        params = [("collection_concept_id", collection_id), ("page_size", 1), ("offset", offset)]
        items, hits = self._items(self._request("granules.umm_json", params))
        return (items[0] if items else None), hits

    def random_granule(
        self, collection_id: str, known_count: int | None = None, rng: random.Random | None = None
    ) -> tuple[dict | None, int]:
        """A random granule and the granule count: one request when the count is known, else two.

        A stale known count (granules deleted since) costs one more request, never a wrong answer.
        """
        rng = rng or random.Random()
        if known_count:
            count = known_count
        else:
            first, count = self.granule_at(collection_id, 0)
            if count <= 1:
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
                response = self._request("providers")
                try:
                    body = response.json()
                except ValueError as error:
                    raise CMRError(f"CMR providers answer is not JSON: {error}") from error
                items = body.get("items", body) if isinstance(body, dict) else body
                providers = sorted(
                    _provider_id(item)
                    for item in items
                    if "EOSDIS" in {c.upper() for c in _consortiums(item)}
                )
                if not providers:
                    raise CMRError("CMR lists no EOSDIS provider; refusing to survey without a filter")
                _PROVIDERS_CACHE[key] = providers
            return list(_PROVIDERS_CACHE[key])


_PROVIDERS_CACHE: dict[str, list[str]] = {}
_PROVIDERS_LOCK = threading.Lock()


def _consortiums(item: dict) -> list[str]:
    value = item.get("Consortiums") or item.get("consortiums") or []
    return [value] if isinstance(value, str) else list(value)


def _provider_id(item: dict) -> str:
    return item.get("ProviderId") or item.get("provider-id") or item.get("provider_id") or ""


def _retry_after(response: requests.Response) -> float | None:
    try:
        return min(60.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _cmr_errors(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    return json.dumps(errors) if errors else response.text[:300]
