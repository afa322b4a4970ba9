"""Shared fixtures: a fake CMR and data host per test, and a clean environment."""

from __future__ import annotations

import os
import tempfile

import pytest

# Lithops caches runtime metadata under ~/.lithops (the path is fixed when it is imported): a
# home of this run's own keeps other runs' caches out, and its out of theirs.
os.environ["HOME"] = tempfile.mkdtemp(prefix="titiler-cmr-compat-tests-home-")

from titiler_cmr_compatibility.survey import use_own_lithops_folder

# Lithops' working folder (its package copy, job files) is fixed when it is imported, too: one of
# this run's own, so a survey on the same machine never copies the package under its runners.
use_own_lithops_folder()

from titiler_cmr_compatibility.sample.cmr import FakeCMR
from titiler_cmr_compatibility.sample.data import DataServer
from tests.support.world import World, fixture_data_dir

_AMBIENT = ("EARTHDATA_", "CMR_", "ACCESS_TYPE", "CHECK_TIMEOUT", "TITILER_ENDPOINT", "AWS_ENDPOINT_URL")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No credentials or endpoints from the developer's shell reach a test."""
    for name in list(os.environ):
        if name.startswith(_AMBIENT):
            monkeypatch.delenv(name)


@pytest.fixture
def world():
    with FakeCMR([], {}, strict=False) as cmr, DataServer(fixture_data_dir()) as data:
        yield World(cmr, data)
