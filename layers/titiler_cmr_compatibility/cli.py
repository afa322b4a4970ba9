"""Command line: `titiler-cmr-compat check|survey|demo`.

The predecessor's forms keep working: `python -m titiler_cmr_compatibility.cli --collection-id C...`
checks one collection, and its `--lithops-*` flags map onto the `survey` commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from .check import check_collection
from .result import CheckResult, scrub
from .settings import Settings
from .umm import COLLECTION_ID, GRANULE_ID


def _concept_id(pattern: re.Pattern, kind: str):
    def parse(value: str) -> str:
        value = value.strip()
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{value!r:.80} is not a CMR {kind} concept id (like {pattern.pattern[0]}1234-PROVIDER)")
        return value

    return parse


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def _add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection-id", required=True, type=_concept_id(COLLECTION_ID, "collection"),
                        help="collection concept id, e.g. C2036881735-POCLOUD")  # fmt: skip
    parser.add_argument("--granule-id", type=_concept_id(GRANULE_ID, "granule"),
                        help="check this granule instead of a random one")  # fmt: skip
    parser.add_argument("--access-type", choices=["direct", "external"],
                        help="direct: s3:// links (only inside AWS us-west-2); external: https (default)")  # fmt: skip
    parser.add_argument("--cmr-url", help="CMR root URL (default: production; also CMR_URL)")
    parser.add_argument("--timeout", type=_positive, help="seconds for the check (default 120; also CHECK_TIMEOUT)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--tile-output", type=Path, metavar="FILE",
                        help="write the PNG of tile 0/0/0 the check rendered here (compatible collections)")  # fmt: skip
    parser.add_argument("--debug", action="store_true", help="log debug messages to stderr")


SURVEY_PHASES = {
    "run": "setup, then process and reprocess until nothing is pending, then the report",
    "setup": "list collections from CMR and write one marker per collection",
    "process": "check every pending collection once (one Lithops wave)",
    "reprocess": "check pending collections again, or those with --reason R",
    "status": "totals, done, pending, attempts and counts by reason",
    "query": "concept ids by compatibility and/or reason",
    "report": "compile the report from every result (JSON, CSV, Parquet and the page report.html in the store)",
    "download": "write the report to --output-file (.json, .csv, .parquet or .html)",
    "diff": "compare two runs or report files: became compatible, regressed, changed reason, (dis)appeared",
}
DEFAULT_STORE = "survey-output"


class SurveyInputError(Exception):
    """A survey command that cannot run as asked (the message says why)."""


def _true_false(value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise argparse.ArgumentTypeError("must be true or false")
    return lowered == "true"


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return number


def _add_survey_arguments(parser: argparse.ArgumentParser, phase: str) -> None:
    parser.set_defaults(handler=run_survey_phase)
    parser.add_argument("--store", default=DEFAULT_STORE,
                        help=f"a local directory or s3://bucket/prefix (default: ./{DEFAULT_STORE})")  # fmt: skip
    parser.add_argument("--run", help="run id; the same id continues a run (default: this month, e.g. 2026-11)")
    parser.add_argument("--debug", action="store_true", help="log debug messages to stderr")
    if phase in ("run", "setup"):
        parser.add_argument("--limit", type=_positive_int, help="survey only the N most used collections")
        parser.add_argument("--provider", action="append", help="only this CMR provider (repeatable; default: all EOSDIS)")
    if phase in ("run", "setup", "process", "reprocess"):
        parser.add_argument("--cmr-url", help="CMR root URL (default: production; also CMR_URL)")
    if phase in ("run", "process", "reprocess"):
        parser.add_argument("--executor", choices=["localhost", "aws_lambda"],
                            help="Lithops backend (default: the config file's, else localhost: processes here)")  # fmt: skip
        parser.add_argument("--lithops-config-file", type=Path, help="Lithops configuration (e.g. lithops.yaml)")
        parser.add_argument("--access-type", choices=["direct", "external"], help="see `check --help`")
        parser.add_argument("--batch-size", type=_positive_int, default=4, help="collections per Lithops call")
        parser.add_argument("--timeout", type=_positive, help="seconds per collection check (default 120)")
    if phase in ("run", "reprocess"):
        parser.add_argument("--max-attempts", type=_positive_int, default=3, help="attempts per collection (default 3)")
    if phase == "reprocess":
        parser.add_argument("--reason", help="re-check collections whose result has this incompatible_reason")
    if phase == "status":
        parser.add_argument("--json", action="store_true", help="print the status as JSON")
    if phase == "query":
        parser.add_argument("--tiling-compatible", type=_true_false, help="true or false")
        parser.add_argument("--reason", help="an incompatible_reason value")
    if phase == "report":
        parser.add_argument("--compare-with", action="append", default=[], metavar="RUN_OR_FILE",
                            help="show what changed since this run of the store or report file, e.g. the earlier "
                                 "survey's tiling_results parquet (repeatable; kept for the run's later pages)")  # fmt: skip
    if phase == "download":
        parser.add_argument("--output-file", type=Path, required=True, help="report file: .json, .csv, .parquet or .html")
        parser.add_argument("--compatible-datasets", action="store_true",
                            help="write compatible_datasets.csv instead: the parameters titiler-cmr needs per compatible collection")  # fmt: skip
    if phase == "diff":
        parser.add_argument("before", help="the earlier survey: a run id of --store, or a report file (.json, .csv, .parquet)")
        parser.add_argument("now", help="the later survey: a run id of --store, or a report file")
        parser.add_argument("--output-file", type=Path, help="write every change to this .csv or .json file")


def _survey(args: argparse.Namespace):
    from .storage import open_storage
    from .survey import Survey, default_run_id

    return Survey(open_storage(args.store), args.run or default_run_id())


def _progress(total: int | None, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="collection", file=sys.stderr, disable=None)


def _setup(survey, args: argparse.Namespace, settings: Settings) -> None:
    from .cmr import CMRClient
    from .survey import SetupDeadline

    deadline = SetupDeadline(settings.setup_timeout)
    cmr = CMRClient(settings, deadline)
    providers = args.provider or cmr.eosdis_providers()
    # CMR's count is only for the progress bar: when it gives none that is believable, the bar has
    # no total (or the limit's).
    known = [count for count in (cmr.collection_hits(providers), args.limit) if count is not None]
    total = min(known) if known else None
    with _progress(total, "setup: markers") as bar:
        stats = survey.setup(
            cmr.search_collections(providers=providers, limit=args.limit),
            manifest={"cmr_url": settings.cmr_url, "limit": args.limit, "providers": len(providers)},
            on_progress=bar.update,
            deadline=deadline,
        )
    skipped = f"; {stats.describe_skipped()}" if stats.skipped else ""
    print(f"setup: {stats.listed:,} collections listed in {cmr.requests_made} CMR requests; "
          f"{stats.created:,} markers written, {stats.existing:,} already there{skipped} ({stats.seconds:.1f} s)")  # fmt: skip


def _executor(args: argparse.Namespace):
    from .survey import lithops_executor

    if args.executor == "aws_lambda" and not args.lithops_config_file:
        raise SurveyInputError("--executor aws_lambda needs --lithops-config-file (see lithops.yaml)")
    if args.lithops_config_file and not args.lithops_config_file.exists():
        raise SurveyInputError(f"no Lithops configuration at {args.lithops_config_file}")
    return lithops_executor(args.executor, args.lithops_config_file)


def _print_status(survey) -> None:
    status = survey.status()
    print(f"run {survey.run} in {survey.storage.location}: {status['collections']:,} collections, "
          f"{status['done']:,} done, {status['pending']:,} pending, {status['compatible']:,} compatible")  # fmt: skip
    for reason, count in status["by_reason"].items():
        print(f"  {reason:<32} {count:>7,}")


def _phase_checks(survey, args: argparse.Namespace, settings: Settings) -> None:
    """run, process and reprocess: waves of Lithops calls."""
    if args.phase == "run":
        _setup(survey, args, settings)
    from .survey import PAGE, worker_settings

    values = worker_settings(settings)
    # Leaving the executor stops local job processes still running (calls given up on).
    with _executor(args) as executor:
        if args.phase == "run":
            survey.run_loop(executor, values, max_attempts=args.max_attempts, batch_size=args.batch_size,
                            on_wave=lambda n, size: print(f"wave {n}: checking {size:,} pending collections"),
                            show_progress=True)  # fmt: skip
        elif args.phase == "reprocess" and args.reason:
            waves = survey.reprocess_reason(args.reason, executor, values, args.max_attempts, args.batch_size,
                                            show_progress=True)  # fmt: skip
            checked = waves[0].submitted if waves else 0
            print(f"reprocess: checked {checked:,} collections whose reason was {args.reason} again")
        else:
            work = survey.scan().launchable()
            print(f"{args.phase}: checking {len(work):,} pending collections")
            survey.process(work, executor, values, args.batch_size, show_progress=True)
    if args.phase == "run":
        survey.compile_report()
    _print_status(survey)
    if args.phase == "run":
        print(f"report: {survey.storage.location}/{survey.run}/report/report.json (+ .csv, .parquet)")
        print(f"page: {survey.storage.location}/{survey.run}/{PAGE}")


def _phase_status(survey, args: argparse.Namespace, settings: Settings) -> None:
    if args.json:
        print(json.dumps(survey.status(), indent=2))
    else:
        _print_status(survey)


def _phase_query(survey, args: argparse.Namespace, settings: Settings) -> None:
    for concept_id in survey.query(args.tiling_compatible, args.reason):
        print(concept_id)


def _phase_report(survey, args: argparse.Namespace, settings: Settings) -> None:
    from .survey import PAGE

    report, written = survey.compile_report(compare_with=args.compare_with)
    summary_ = report["summary"]
    print(f"report: {summary_['collections']:,} collections, {summary_['compatible']:,} compatible; "
          f"{written:,} bytes written to {survey.storage.location}/{survey.run}/report/")  # fmt: skip
    print(f"page: {survey.storage.location}/{survey.run}/{PAGE}")


def _phase_download(survey, args: argparse.Namespace, settings: Settings) -> None:
    from .page import build_page
    from .report import EXPORT_FORMATS, compatible_datasets, export_bytes

    extension = args.output_file.suffix.lower()
    allowed = (".csv",) if args.compatible_datasets else (*EXPORT_FORMATS, ".html")
    if extension not in allowed:
        raise SurveyInputError(f"--output-file must end in {', '.join(allowed)}")
    report = survey.load_report() or survey.compile_report()[0]
    rows = report["rows"]
    if args.compatible_datasets:
        body, count = compatible_datasets(rows), sum(1 for row in rows.values() if row.get("tiling_compatible"))
    else:
        body, count = build_page(report, survey.page_context()) if extension == ".html" else export_bytes(rows, extension), len(rows)
    args.output_file.parent.mkdir(parents=True, exist_ok=True)
    args.output_file.write_bytes(body)
    print(f"wrote {count:,} rows ({len(body):,} bytes) to {args.output_file}")


def _phase_diff(survey, args: argparse.Namespace, settings: Settings) -> None:
    from .diff import compare, summary_lines, write_changes
    from .survey import rows_of

    (before, before_name), (now, now_name) = rows_of(survey.storage, args.before), rows_of(survey.storage, args.now)
    comparison = compare(before, now, before_name)
    print(f"{now_name} " + "\n".join(summary_lines(comparison)))
    if args.output_file:
        write_changes(comparison, args.output_file)
        print(f"wrote {len(comparison.changes):,} changes to {args.output_file}")


_PHASE_HANDLERS = {
    "run": _phase_checks,
    "setup": _setup,
    "process": _phase_checks,
    "reprocess": _phase_checks,
    "status": _phase_status,
    "query": _phase_query,
    "report": _phase_report,
    "download": _phase_download,
    "diff": _phase_diff,
}


def run_survey_phase(args: argparse.Namespace) -> int:
    _PHASE_HANDLERS[args.phase](_survey(args), args, _settings(args))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    return demo(args.dir)


# The predecessor's survey flags, and the survey command each one means.
_PREDECESSOR_PHASES = {
    "--lithops-setup": "setup",
    "--lithops-process": "process",
    "--lithops-reprocess": "reprocess",
    "--lithops-status": "status",
    "--lithops-query": "query",
    "--lithops-download": "download",
}


def translate_predecessor_flags(argv: list[str]) -> list[str]:
    """`--lithops --lithops-setup --s3-bucket B --s3-prefix P --total-collections N ...` →
    `survey setup --store s3://B/P --limit N ...`."""
    legacy = argparse.ArgumentParser(prog="titiler-cmr-compat", add_help=False)
    legacy.add_argument("--lithops", action="store_true")
    for flag in _PREDECESSOR_PHASES:
        legacy.add_argument(flag, action="store_true")
    legacy.add_argument("--lithops-reprocess-reason")
    legacy.add_argument("--lithops-config-file")
    legacy.add_argument("--s3-bucket")
    legacy.add_argument("--s3-prefix", default="collections")
    legacy.add_argument("--total-collections")
    legacy.add_argument("--batch-size")
    legacy.add_argument("--access-type")
    legacy.add_argument("--tiling-compatible")
    legacy.add_argument("--incompatibility-reason")
    legacy.add_argument("--output-file")
    known, rest = legacy.parse_known_args(argv)
    phases = [phase for flag, phase in _PREDECESSOR_PHASES.items() if getattr(known, flag[2:].replace("-", "_"))]
    if known.lithops_reprocess_reason:
        phases.append("reprocess")
    if len(set(phases)) != 1:
        raise SystemExit("titiler-cmr-compat: error: give exactly one of " + ", ".join(_PREDECESSOR_PHASES) + ", --lithops-reprocess-reason")
    phase = phases[0]
    translated = ["survey", phase]
    if known.s3_bucket:
        translated += ["--store", f"s3://{known.s3_bucket}/{known.s3_prefix}".rstrip("/")]
    options = {
        "--limit": known.total_collections if phase == "setup" else None,
        "--batch-size": known.batch_size if phase in ("process", "reprocess") else None,
        "--access-type": known.access_type if phase in ("process", "reprocess") else None,
        "--reason": known.lithops_reprocess_reason or (known.incompatibility_reason if phase == "query" else None),
        "--tiling-compatible": known.tiling_compatible if phase == "query" else None,
        "--output-file": known.output_file if phase == "download" else None,
    }
    if phase in ("process", "reprocess") and known.lithops_config_file:
        translated += ["--lithops-config-file", known.lithops_config_file]
    for flag, value in options.items():
        if value is not None:
            translated += [flag, value]
    return translated + rest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="titiler-cmr-compat",
        description="Which NASA CMR collections can titiler-cmr turn into map tiles, and why not.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check one collection")
    _add_check_arguments(check)
    check.set_defaults(handler=run_check)
    survey_parser = commands.add_parser("survey", help="survey many collections (markers, Lithops, report)")
    survey_commands = survey_parser.add_subparsers(dest="phase", required=True)
    for phase, help_text in SURVEY_PHASES.items():
        _add_survey_arguments(survey_commands.add_parser(phase, help=help_text), phase)
    demo = commands.add_parser("demo", help="the whole survey offline, on sample data served on 127.0.0.1")
    demo.add_argument("--dir", type=Path, default=Path("demo-output"), help="where the sample and the survey go")
    demo.add_argument("--debug", action="store_true", help="log debug messages to stderr")
    demo.set_defaults(handler=run_demo)
    return parser


def summary(result: CheckResult) -> str:
    """A few readable lines; `--json` gives every field."""
    result = result.scrubbed()
    name = result.collection_short_name_and_version or "?"
    lines = [f"{result.collection_concept_id}  {name}  ({result.data_center or 'unknown DAAC'})"]
    if result.tiling_compatible:
        detail = result.backend.value if result.backend else ""
        if result.variable:
            detail += f", variable {result.variable}" + (f" in group {result.group}" if result.group else "")
        lines.append(f"  compatible:  yes ({detail})")
    else:
        lines.append(f"  compatible:  no: {result.incompatible_reason}")
        lines.append(f"  why:         {result.error_message}")
    if result.concept_id:
        lines.append(f"  granule:     {result.concept_id}  (of {result.num_granules:,})" if result.num_granules else f"  granule:     {result.concept_id}")
    if result.data_url:
        lines.append(f"  data:        {result.data_url}")
    container = f"file is {result.container}" if result.container else "file not read"
    lines.append(f"  format:      {result.format or 'not given'} ({container}, .{result.extension or ''})")
    if result.data_variables:
        shown = ", ".join(result.data_variables[:10]) + (" ..." if len(result.data_variables) > 10 else "")
        lines.append(f"  variables:   {shown}")
    if result.groups:
        lines.append(f"  groups:      {', '.join(result.groups[:10])}")
    if result.tiles_url:
        lines.append(f"  tiles:       {result.tiles_url}")
    read = f"read {result.bytes_read:,} of {result.file_size:,} bytes in {result.data_requests} requests; " if result.bytes_read is not None and result.file_size else ""
    lines.append(f"  cost:        {read}{result.cmr_requests} CMR requests; {result.duration_s} s")
    return "\n".join(lines)


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the command line's flags on top (read once)."""
    flags = {"cmr_url": getattr(args, "cmr_url", None), "check_timeout": getattr(args, "timeout", None),
             "access_type": getattr(args, "access_type", None)}  # fmt: skip
    return Settings(**{key: value for key, value in flags.items() if value})


def run_check(args: argparse.Namespace) -> int:
    settings = _settings(args)
    result = check_collection(
        args.collection_id, granule_id=args.granule_id, access_type=args.access_type, settings=settings
    )
    print(json.dumps(result.to_record(), indent=2) if args.json else summary(result))
    if args.tile_output:
        if result.tile_png:
            args.tile_output.write_bytes(result.tile_png)
        else:
            print(f"titiler-cmr-compat: no tile written to {args.tile_output}: the collection is not compatible",
                  file=sys.stderr)  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(arg.startswith("--lithops") for arg in argv):
        argv = translate_predecessor_flags(argv)
    elif argv and argv[0].startswith("--") and argv[0] not in ("--help", "-h"):
        argv.insert(0, "check")  # the predecessor's form: flags only, no command
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("titiler-cmr-compat: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every failure is one line (and a traceback only with --debug)
        if args.debug:
            traceback.print_exc()
        print(f"titiler-cmr-compat: error: {_error_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, SurveyInputError | ValueError) else 1


def _error_line(error: Exception) -> str:
    """One line saying what failed, without secrets: our own errors by their message, others
    with their type, missing AWS credentials with what to set."""
    from botocore.exceptions import NoCredentialsError

    from .cmr import CMRError
    from .survey import SetupTimeout

    if isinstance(error, NoCredentialsError):
        return ("no AWS credentials for the s3:// store: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or run where a role provides them)")  # fmt: skip
    message = " ".join(str(error).split())
    if not isinstance(error, SurveyInputError | ValueError | CMRError | SetupTimeout) or not message:
        message = f"{type(error).__name__}: {message}".rstrip(": ")
    return scrub(message, limit=1000)


if __name__ == "__main__":
    sys.exit(main())
