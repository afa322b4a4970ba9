"""Real files from public repositories, each with titiler-cmr 1.1.2's own verdict on it
(`../shared/fixtures/real/manifest.json`): the check must agree with every one."""

from __future__ import annotations

import pytest

from titiler_cmr_compatibility.check import check_collection
from tests.support.fixtures import fixtures_dir, load_real_files

# What CMR would say of each kind of file (the bytes decide; this only feeds the messages).
_FORMATS = {".tif": ("GeoTIFF",), ".jp2": ("JPEG2000",), ".grib": ("GRIB",), ".hdf": ("HDF4",)}
REAL = load_real_files()


@pytest.mark.parametrize("entry", REAL, ids=[entry["file"] for entry in REAL])
def test_the_check_agrees_with_titiler_cmr(world, entry):
    path = fixtures_dir() / "real" / entry["file"]
    truth = entry["titiler_cmr"]
    concept_id = world.publish(path, formats=_FORMATS.get(path.suffix, ("netCDF-4",)))
    result = check_collection(concept_id, settings=world.settings())
    said = f"{result.incompatible_reason}: {result.error_message}"
    assert result.tiling_compatible is truth["renders"], said
    if not truth["renders"]:
        assert result.incompatible_reason in truth["reason_fits"], said
    elif truth["backend"] == "xarray":
        rendered = {truth["variable"]} | {
            variable for attempt in truth["other_attempts"].values() if attempt["renders"]
            for variable in attempt["hint"].get("variables", [])
        }
        assert result.variable in rendered
