"""Loaders for the recorded NASA data in ``../shared/fixtures`` (test-only, never shipped).

The fakes themselves (``FakeCMR``, ``DataServer``, the file generators) live in the package,
``titiler_cmr_compatibility.sample``, because the ``demo`` command serves them too; the real
records and files they are fed in tests stay here, with the tests.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "fixtures_dir",
    "load_fixture_collections",
    "load_fixture_granule_index",
    "load_fixture_granules",
]

Item = dict[str, Any]

def fixtures_dir() -> Path:
    """The shared fixtures folder: ``$FIXTURES_DIR``, else ``<repo>/../shared/fixtures``."""
    configured = os.environ.get("FIXTURES_DIR")
    if configured:
        return Path(configured)
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "fixtures"


@functools.cache
def _fixture_collection_lines(path: Path) -> tuple[tuple[str, ...], dict[str, int]]:
    """Decompress the 41.8 MB collections file once per process, and index it by concept id.

    The cache holds JSON text, not parsed dicts: every caller gets objects of its own, because
    tests do edit records (e.g. point an endpoint at a local server) and a shared parsed cache
    would leak such edits into unrelated tests.
    """
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        lines = tuple(line for line in handle if line.strip())
    index = {json.loads(line)["meta"]["concept-id"]: number for number, line in enumerate(lines)}
    return lines, index


def load_fixture_collections(ids: Iterable[str] | None = None) -> list[Item]:
    """The recorded UMM-C items (4,009), in file order, or only those with the given concept ids.

    Each call returns freshly parsed dicts, safe to modify (the full list takes ~0.8 s to
    parse, a handful of ids ~1 ms; decompression happens once per process). Unknown ids raise
    ``KeyError`` so a typo in a test is not mistaken for "no such collection".
    """
    lines, index = _fixture_collection_lines(
        fixtures_dir() / "cmr" / "collections.umm_json.jsonl.gz"
    )
    if ids is None:
        return [json.loads(line) for line in lines]
    wanted = list(ids)
    missing = [concept_id for concept_id in wanted if concept_id not in index]
    if missing:
        raise KeyError(f"not in the collections fixture: {missing}")
    return [json.loads(lines[index[concept_id]]) for concept_id in wanted]


def load_fixture_granules(collection_id: str) -> list[Item]:
    """The recorded UMM-G items of one collection (``cmr/granules/<id>.umm_json.jsonl``)."""
    path = fixtures_dir() / "cmr" / "granules" / f"{collection_id}.umm_json.jsonl"
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_fixture_granule_index() -> list[dict[str, Any]]:
    """``cmr/granules_index.json``: per granule file, counts and ``recorded_hits``."""
    path = fixtures_dir() / "cmr" / "granules_index.json"
    return list(json.loads(path.read_text(encoding="utf-8")))


def load_real_files() -> list[dict[str, Any]]:
    """`fixtures/real/manifest.json`'s entries: a real file each, with titiler-cmr 1.1.2's own
    verdict on it (`titiler_cmr`), the truth the check must match."""
    return json.loads((fixtures_dir() / "real" / "manifest.json").read_text())["files"]
