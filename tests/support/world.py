"""A fake NASA for one test: CMR and a data host on 127.0.0.1, with collections published on demand.

`World.publish` turns a real file (fixture or generated) into a collection with one granule whose
data link points at the data server, so every test drives the real check end to end.
"""

from __future__ import annotations

import copy
import json
import itertools
from pathlib import Path
from typing import Any

from titiler_cmr_compatibility.settings import Settings
from titiler_cmr_compatibility.umm import COLLECTION_ID

from titiler_cmr_compatibility.sample.cmr import FakeCMR, cloud_links, make_collection, make_granule
from titiler_cmr_compatibility.sample.data import DataServer
from titiler_cmr_compatibility.sample.server import LOOPBACK_SETTINGS

from .fixtures import fixtures_dir, load_fixture_collections, load_fixture_granules

_ids = itertools.count(1000)


def loopback_environment() -> dict[str, str]:
    """LOOPBACK_SETTINGS as a process started on the fake NASA reads them from its environment."""
    return {name.upper(): json.dumps(value) for name, value in LOOPBACK_SETTINGS.items()}


class World:
    def __init__(self, cmr: FakeCMR, data: DataServer):
        self.cmr = cmr
        self.data = data
        self.urls: dict[str, str] = {}  # further servers of this world, by name (e.g. a fake URS)

    def environment(self) -> dict[str, str]:
        """The settings a process started on this world reads from its environment."""
        return {"CMR_URL": self.cmr.search_url, **loopback_environment()}

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "cmr_url": self.cmr.search_url,
            "access_type": "external",
            "check_timeout": 60,
            "cmr_backoff": 0.01,
            "cmr_retries": 2,
            "titiler_endpoint": "https://titiler.example.org",
            **LOOPBACK_SETTINGS,
        }
        return Settings(_env_file=None, **{**values, **overrides})

    def publish(
        self,
        content: Path | bytes | None,
        *,
        name: str | None = None,
        formats: tuple[str, ...] = ("netCDF-4",),
        granule_count: int | None = 1,
        urls: list[tuple[str, str]] | None = None,
        provider: str = "TEST",
    ) -> str:
        """A new collection with one granule serving `content`; returns its concept id.

        The granule links the file as a cloud DAAC's record does, https (GET DATA) and s3 (GET
        DATA VIA DIRECT ACCESS): titiler-cmr 1.1.2 builds a file's asset from both. `urls`
        replaces the granule's links (e.g. https only, ftp only, or none); `content=None` with
        `granule_count=0` makes a collection without granules.
        """
        number = next(_ids)
        concept_id = f"C{number}-{provider}"
        if not COLLECTION_ID.fullmatch(concept_id):
            raise ValueError(f"{provider!r} makes {concept_id!r}, which setup would skip as not a concept id")
        short_name = f"TEST_{number}"
        if name is None:
            name = content.name if isinstance(content, Path) else f"granule_{number}.bin"
        path = f"/test-protected/{short_name}/{name}"
        if content is not None:
            self.data.add(path, content)
        if urls is None:
            urls = cloud_links(self.data.url_for(path))
        self.cmr.collections.append(
            make_collection(concept_id, short_name, provider=provider, formats=formats, granule_count=granule_count)
        )
        granules = [] if granule_count == 0 else [make_granule(f"G{number}-{provider}", concept_id, urls, short_name=short_name)]
        self.cmr.granules[concept_id] = granules
        return concept_id

    def data_path(self, concept_id: str) -> str:
        """The URL path (on the data host) of a published collection's granule file."""
        return self.cmr.granules[concept_id][0]["umm"]["RelatedUrls"][0]["URL"].removeprefix(self.data.url)

    def add_fixture_collection(self, concept_id: str) -> dict:
        """A real collection record and its real granules, https links pointed at the data server."""
        record = load_fixture_collections([concept_id])[0]
        granules = copy.deepcopy(load_fixture_granules(concept_id))
        for granule in granules:
            for related in granule["umm"].get("RelatedUrls", []):
                if related["URL"].startswith("https://"):
                    related["URL"] = self.data.localize(related["URL"])
        self.cmr.collections.append(record)
        self.cmr.granules[concept_id] = granules
        return record


def fixture_data_dir() -> Path:
    return fixtures_dir() / "data"
