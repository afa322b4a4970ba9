"""Command line: `titiler-cmr-compat check --collection-id C...`.

The predecessor's form, `python -m titiler_cmr_compatibility.cli --collection-id C...`, takes the
same flags and prints the same thing.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence

from .check import check_collection
from .result import CheckResult
from .settings import Settings

_COLLECTION_ID = re.compile(r"^C\d+-[A-Za-z0-9_]+$")
_GRANULE_ID = re.compile(r"^G\d+-[A-Za-z0-9_]+$")


def _concept_id(pattern: re.Pattern, kind: str):
    def parse(value: str) -> str:
        value = value.strip()
        if not pattern.match(value):
            raise argparse.ArgumentTypeError(f"{value!r} is not a CMR {kind} concept id (like {pattern.pattern[1]}1234-PROVIDER)")
        return value

    return parse


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return number


def _add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection-id", required=True, type=_concept_id(_COLLECTION_ID, "collection"),
                        help="collection concept id, e.g. C2036881735-POCLOUD")  # fmt: skip
    parser.add_argument("--granule-id", type=_concept_id(_GRANULE_ID, "granule"),
                        help="check this granule instead of a random one")  # fmt: skip
    parser.add_argument("--access-type", choices=["direct", "external"],
                        help="direct: s3:// links (only inside AWS us-west-2); external: https (default)")  # fmt: skip
    parser.add_argument("--cmr-url", help="CMR root URL (default: production; also CMR_URL)")
    parser.add_argument("--timeout", type=_positive, help="seconds for the check (default 120; also CHECK_TIMEOUT)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--debug", action="store_true", help="log debug messages to stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="titiler-cmr-compat",
        description="Which NASA CMR collections can titiler-cmr turn into map tiles, and why not.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check one collection")
    _add_check_arguments(check)
    return parser


def summary(result: CheckResult) -> str:
    """A few readable lines; `--json` gives every field."""
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


def run_check(args: argparse.Namespace) -> int:
    overrides = {key: value for key, value in (("cmr_url", args.cmr_url), ("check_timeout", args.timeout)) if value}
    settings = Settings(**overrides)
    result = check_collection(
        args.collection_id, granule_id=args.granule_id, access_type=args.access_type, settings=settings
    )
    print(json.dumps(result.to_record(), indent=2) if args.json else summary(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("--") and argv[0] not in ("--help", "-h"):
        argv.insert(0, "check")  # the predecessor's form: flags only, no command
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
