"""`titiler-cmr-compat demo`: the whole survey, offline, on sample data served on 127.0.0.1.

For someone without network access or an Earthdata account: it builds the sample collections
(`sample.demo`), serves them with the sample CMR and data host, and runs the very same survey
as `survey run` (markers, Lithops localhost, the reprocess loop, the report) against them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .cmr import CMRClient
from .settings import Settings
from .storage import open_storage
from .survey import PAGE, Survey, lithops_executor

DEMO_RUN = "demo"
NO_CREDENTIALS = {
    "earthdata_token": None, "earthdata_username": None, "earthdata_password": None,
    "earthdata_token_parameter": None, "earthdata_username_parameter": None, "earthdata_password_parameter": None,
}  # fmt: skip


def run_demo(directory: Path) -> int:
    """Run the demo in `directory` (sample files, store); returns 0 when every sample collection
    came out as its sample says it should."""
    from .sample.demo import build_sample, serve_sample
    from .sample.server import LOOPBACK_SETTINGS

    directory = Path(directory).resolve()
    print("DEMO: these are SAMPLE collections generated on this machine, not NASA data. They show")
    print("      what the survey does and what it reports, offline and without an Earthdata account.")
    store = directory / "survey-output"
    shutil.rmtree(store / DEMO_RUN, ignore_errors=True)
    catalog = build_sample(directory / "sample-data")
    with serve_sample(catalog) as servers:
        # The sample needs no credentials: never send the user's to anything, even by accident.
        values = {"cmr_url": servers.cmr_url, "access_type": "external", "check_timeout": 60,
                  **LOOPBACK_SETTINGS, **NO_CREDENTIALS}
        settings = Settings(_env_file=None, **values)
        survey = Survey(open_storage(store), DEMO_RUN)
        cmr = CMRClient(settings)
        stats = survey.setup(cmr.search_collections(providers=cmr.eosdis_providers()), manifest={"cmr_url": servers.cmr_url})
        print(f"setup: {stats.created} markers from the sample CMR at {servers.cmr_url}")
        with lithops_executor("localhost") as executor:
            survey.run_loop(executor, values,
                            on_wave=lambda n, size: print(f"wave {n}: checking {size} collections with Lithops localhost"))  # fmt: skip
        report, _ = survey.compile_report()
    matches = 0
    print(f"\n{'collection':<22} {'sample':<22} {'outcome':<22} expected")
    for concept_id, row in report["rows"].items():
        got = "compatible" if row["tiling_compatible"] else row["incompatible_reason"]
        want = catalog.expected[concept_id]
        matches += got == want
        print(f"{concept_id:<22} {row['collection_short_name_and_version'] or '':<22} {got:<22} {want}")
    summary = report["summary"]
    print(f"\n{summary['collections']} sample collections, {summary['compatible']} compatible; "
          f"{matches} of {len(catalog.expected)} as expected.")  # fmt: skip
    print(f"report: {store / DEMO_RUN / 'report' / 'report.json'} (+ report.csv, report.parquet, compatible_datasets.csv)")
    print(f"page:   {store / DEMO_RUN / PAGE}  (open it in a browser: it needs no network)")
    print(f"try:    titiler-cmr-compat survey status --store {store} --run {DEMO_RUN}")
    return 0 if matches == len(catalog.expected) else 1
