"""Which file titiler-cmr 1.1.2 reads of a granule, asked of titiler-cmr's own code, next to the
check's restatement of it (`umm.titiler_cmr_xarray_file`, `umm.titiler_cmr_rasterio_file`).

Run with the titiler-cmr 1.1.2 virtualenv (../shared/tools/titiler-cmr/README.md), not .venv:

    ~/.cache/titiler-cmr-1.1.2/bin/python bench/titiler_cmr_assets.py

For every real UMM-G record of ../shared/fixtures/cmr/granules (593) and a set of generated ones
(the records the tests and the demo publish, and the shapes the rule is about), with and without
s3 access, it builds titiler-cmr's `Granule` from the record and asks
- its /xarray reader (`XarrayGranuleReader`, with an opener that only records the link it is given)
  which link it opens, or what it raises;
- its /rasterio reader (`MultiBaseGranuleReader._get_asset_info`) which link it reads for its
  default asset and for the `assets_regex`/`assets` the check would write for each data link;
and prints per collection what titiler-cmr did, and every case where the check's model says
otherwise (there should be none). The 16 older records without `meta.collection-concept-id` (CMR
sends it today) get it from their file name; records without a geometry (ICESat-2's orbits) get a
global one for the rasterio reader only, whose bounds need it.
"""

from __future__ import annotations

import collections
import copy
import glob
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers"))

from rio_tiler.errors import InvalidAssetName, MissingAssets  # noqa: E402
from titiler.cmr.errors import InvalidMediaType  # noqa: E402
from titiler.cmr.models import Granule  # noqa: E402
from titiler.cmr.reader import MultiBaseGranuleReader, XarrayGranuleReader  # noqa: E402

from titiler_cmr_compatibility.sample.cmr import cloud_links, make_granule  # noqa: E402
from titiler_cmr_compatibility.tiles import asset_selector  # noqa: E402
from titiler_cmr_compatibility.umm import (  # noqa: E402
    asset_of,
    read_granule,
    titiler_cmr_rasterio_file,
    titiler_cmr_xarray_file,
)

FIXTURES = ROOT.parent / "shared" / "fixtures" / "cmr" / "granules"
WORLD = "http://127.0.0.1:8000/test-protected/TEST_1000"  # where tests/support/world.py publishes
GLOBAL = {"HorizontalSpatialDomain": {"Geometry": {"BoundingRectangles": [{
    "WestBoundingCoordinate": -180.0, "SouthBoundingCoordinate": -90.0,
    "EastBoundingCoordinate": 180.0, "NorthBoundingCoordinate": 90.0}]}}}  # fmt: skip


class Opened(Exception):
    """Raised by the recording opener: the link titiler-cmr's xarray reader opens."""


def _record_open(href, **_options):
    raise Opened(href)


def _error(error: BaseException) -> str:
    return type(error).__name__


def theirs_xarray(item: dict, s3: bool) -> tuple[str | None, str | None]:
    """(link opened, None) or (None, what titiler-cmr raised)."""
    try:
        XarrayGranuleReader(src_path=Granule(**item), variables=["v"], opener=_record_open, s3_access=s3)
    except Opened as opened:
        return opened.args[0], None
    except Exception as error:  # noqa: BLE001 - what it raises is the answer
        return None, _error(error)
    return None, "opened nothing"


def theirs_rasterio(item: dict, s3: bool, regex: str | None, key: str | None) -> tuple[str | None, str | None]:
    if not (item["umm"].get("SpatialExtent") or {}).get("HorizontalSpatialDomain", {}).get("Geometry"):
        item = copy.deepcopy(item)
        item["umm"]["SpatialExtent"] = GLOBAL
    try:
        reader = MultiBaseGranuleReader(granule=Granule(**item), assets_regex=regex, s3_access=s3)
        return reader._get_asset_info(key or "0")["url"], None
    except (InvalidAssetName, MissingAssets, InvalidMediaType, ValueError) as error:
        return None, _error(error)


def ours_outcome(reads) -> tuple[str | None, str | None]:
    if reads.href is not None:
        return reads.href, None
    if reads.incomplete is not None:
        return None, "ValidationError"
    return None, (reads.refusal or "").split(":")[0].split(" ")[0]


_OURS_NAMES = {"Granule.get_assets": "KeyError"}  # the model says "Granule.get_assets finds no asset ..."


def same(theirs: tuple, ours: tuple) -> bool:
    ours = (ours[0], _OURS_NAMES.get(ours[1], ours[1]))
    return theirs == ours


def _said(outcome: tuple[str | None, str | None], best: str | None) -> str:
    """An outcome in words: the file read (the check's first-ranked data link, or another) or the error."""
    href, error = outcome
    if href is None:
        return error or "?"
    extension = os.path.splitext(href)[1] or "no extension"
    return f"its data file ({extension})" if href.strip() == best else f"another file ({extension})"


def generated() -> dict[str, dict]:
    """Records of the shapes the rule is about, as make_granule writes them (the tests' too)."""
    def granule(urls, names=None):
        item = make_granule("G1-TEST", "C1-TEST", urls)
        if names is not None:
            item["umm"]["DataGranule"]["ArchiveAndDistributionInformation"] = [{"Name": n} for n in names]
        return item

    nc, tif = f"{WORLD}/grid.nc", f"{WORLD}/cog.tif"
    stem = f"{WORLD}/GRD-3_2002094-2002120_GRAC_JPLEM_BA01_0600_LND_v04"
    bands = [f"{WORLD}/HLS.S30.T15UWP.2024283T165135.v2.0.{band}.tif" for band in ("B02", "B03", "Fmask")]
    return {
        "test world: World.publish (https + s3)": granule(cloud_links(nc)),
        "test world: https only (on-premises)": granule([(nc, "GET DATA")]),
        "test world: s3 only": granule([("s3://test-protected/TEST_1000/grid.nc", "GET DATA VIA DIRECT ACCESS")]),
        "test world: checksum with an https link only (ORNL)": granule(
            cloud_links(nc) + [(nc + ".sha256", "GET DATA")], names=["Not provided"]),
        "test world: .nc, .tif, .txt of one name (GRACE)": granule(
            [link for ext in ("nc", "tif", "txt") for link in cloud_links(f"{stem}.{ext}")]),
        "test world: a text file listed before the netCDF": granule(
            cloud_links(f"{WORLD}/readme.txt") + cloud_links(nc)),
        "test world: a checksum (both links) listed first, unnamed": granule(
            cloud_links(nc + ".md5") + cloud_links(nc), names=["Not provided"]),
        "test world: DataGranule names another file": granule(cloud_links(nc), names=["other.nc"]),
        "test world: a query string on the https link": granule(
            [(nc + "?X-Amz-Signature=abc", "GET DATA"), ("s3://test-protected/TEST_1000/grid.nc", "GET DATA VIA DIRECT ACCESS")],
            names=["grid.nc"]),
        "test world: COG, https + s3": granule(cloud_links(tif)),
        "test world: COG .TIF": granule(cloud_links(f"{WORLD}/cog.TIF")),
        "test world: COG without extension": granule(cloud_links(f"{WORLD}/cog")),
        "test world: COG, https .TIF and s3 .tif": granule(
            [(f"{WORLD}/cog.TIF", "GET DATA"), ("s3://test-protected/TEST_1000/cog.tif", "GET DATA VIA DIRECT ACCESS")],
            names=["Not provided"]),
        "test world: three band files (HLS-like)": granule([link for url in bands for link in cloud_links(url)]),
        "test world: a COG after its checksum (both links), unnamed": granule(
            cloud_links(tif + ".md5") + cloud_links(tif), names=["Not provided"]),
    }


def main() -> int:
    records: dict[str, list[dict]] = {}
    filled = 0
    for path in sorted(glob.glob(str(FIXTURES / "*.jsonl"))):
        concept_id = os.path.basename(path).split(".")[0]
        items = [json.loads(line) for line in open(path)]
        for item in items:
            if "collection-concept-id" not in item["meta"]:
                item["meta"]["collection-concept-id"] = concept_id
                filled += 1
        records[concept_id] = items
    for name, item in generated().items():
        records[name] = [item]

    disagreements: list[str] = []
    totals: collections.Counter = collections.Counter()
    compared = 0
    print(f"{'collection':<58} {'granules':>8}  s3 links  titiler-cmr 1.1.2, external access: /xarray reads; /rasterio reads (default asset)")
    for name, items in records.items():
        seen: collections.Counter = collections.Counter()
        for item in items:
            has_direct = any(r.get("Type") == "GET DATA VIA DIRECT ACCESS" for r in item["umm"].get("RelatedUrls", []))
            for access in ("external", "direct"):
                s3 = access == "direct"
                info = read_granule(item, access)
                theirs = theirs_xarray(item, s3)
                ours = ours_outcome(titiler_cmr_xarray_file(info))
                compared += 1
                if not same(theirs, ours):
                    disagreements.append(f"{name} xarray {access}: titiler-cmr {theirs}, model {ours}")
                default = theirs_rasterio(item, s3, None, None)
                ours_default = ours_outcome(titiler_cmr_rasterio_file(info))
                compared += 1
                if not same(default, ours_default):
                    disagreements.append(f"{name} rasterio default {access}: titiler-cmr {default}, model {ours_default}")
                urls = [link.url for link in info.links]
                for url in urls:
                    selection = asset_selector(urls, url, info.skipped)
                    if selection is None and default[0] is not None and default[0].strip() == url:
                        continue
                    if selection is None:  # the check then names the file by the key titiler-cmr numbers it with
                        own = asset_of(info, url)
                        if own is None:
                            continue
                        selection = (None, own.key)
                    regex, key = selection
                    theirs_selected = theirs_rasterio(item, s3, regex, key)
                    ours_selected = ours_outcome(titiler_cmr_rasterio_file(info, regex, key))
                    compared += 1
                    if not same(theirs_selected, ours_selected):
                        disagreements.append(f"{name} rasterio {regex}={key} {access}: titiler-cmr {theirs_selected}, model {ours_selected}")
                    elif theirs_selected[0] is not None and theirs_selected[0].strip() != url:
                        disagreements.append(f"{name} rasterio {regex}={key} {access}: reads {theirs_selected[0]}, not {url}")
                if access == "external":
                    best = urls[0] if urls else None
                    seen[("yes" if has_direct else "NO", f"{_said(theirs, best)}; {_said(default, best)}")] += 1
                    totals[("s3 link" if has_direct else "no s3 link", "raises" if theirs[1] else "opens a file",
                            "real" if not name.startswith("test world") else "generated")] += 1
        for (direct, outcome), count in seen.items():
            print(f"{name[:58]:<58} {count:>8}  {direct:<8}  {outcome[:150]}")
    print(f"\n{filled} real records had no meta.collection-concept-id (filled in from the file name).")
    print("granules by s3 link and what titiler-cmr's /xarray reader does (external access):")
    for (direct, outcome, kind), count in sorted(totals.items()):
        print(f"  {kind:<10} {direct:<11} {outcome:<13} {count}")
    print(f"{compared} reader outcomes compared, {len(disagreements)} where the model says otherwise")
    for line in disagreements:
        print("  " + line)
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
