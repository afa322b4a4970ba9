"""The aggregator's CloudWatch metrics: what each SQS batch's merge did to the run reports.

They are Embedded Metric Format documents printed to stdout by Powertools' EMF provider; CloudWatch
Logs turns them into metrics (no CloudWatch API call, no permission). The namespace and the
`service` dimension come from POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME. The
stack's dashboard (template.yaml, SurveyDashboard) graphs these names, and tests/test_template.py
checks that it names exactly what `emit_batch_metrics` prints.

Every number comes from the merge that was written (`AggregateStats.changes`): a batch delivered
again, or a result older than its row, changes no row and adds nothing, so each metric summed over
a run is a count of its report.

Per run a batch merged into; dimensions {Run, service} and {service} (all runs):
  CollectionsChecked    collections that entered the report for the first time. Summed over a
                        run: the collections in its report, the survey's size once it is done.
  CollectionsRechecked  rows replaced by a newer check of the same collection (a re-run's retries).
  Compatible            net change of the report's compatible count: a re-check that turns a
                        timeout into a tile adds one. Summed: the report's `compatible`.
  Incompatible          net change of the report's incompatible count (likewise).
  FailedChecks          new or replaced rows whose check failed rather than answered (reason
                        timeout or processing_failed): failed attempts that reached the report.
Per run and reason; dimensions {Run, Reason, service} and {Reason, service}, one document per
reason (a document's dimension values are its own):
  Incompatible          net change of the report's count for that reason (its `by_reason`).
Per batch; dimension {service}:
  FailedMessages        messages the batch reported as failed (a poison message, an unreadable
                        result, a report that could not be written): SQS delivers them again,
                        and after 5 receives moves them to the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .result import Reason

if TYPE_CHECKING:
    from .aggregate import BatchOutcome

log = logging.getLogger(__name__)

CHECKED = "CollectionsChecked"
RECHECKED = "CollectionsRechecked"
COMPATIBLE = "Compatible"
INCOMPATIBLE = "Incompatible"
FAILED_CHECKS = "FailedChecks"
FAILED_MESSAGES = "FailedMessages"
RUN_METRICS = (CHECKED, RECHECKED, COMPATIBLE, INCOMPATIBLE, FAILED_CHECKS)
REASON_METRIC = INCOMPATIBLE
BATCH_METRICS = (FAILED_MESSAGES,)

SERVICE = "service"  # the dimension Powertools names after POWERTOOLS_SERVICE_NAME
RUN = "Run"
REASON = "Reason"

FAILED_REASONS = frozenset({Reason.TIMEOUT.value, Reason.PROCESSING_FAILED.value})


def outcome_of(row: dict) -> str:
    """A row's key in the report's `by_reason`: "compatible", or its reason."""
    return "compatible" if row.get("tiling_compatible") else str(row.get("incompatible_reason"))


@dataclass
class ReportChanges:
    """What one written merge did to a report's rows."""

    new: int = 0  # collections that entered the report
    rechecked: int = 0  # rows replaced by a newer check
    failed_checks: int = 0  # new or replaced rows whose reason is timeout or processing_failed
    outcomes: dict[str, int] = field(default_factory=dict)  # by_reason key -> net change of its count

    @staticmethod
    def rows_before(rows: dict[str, dict], records: Iterable[dict]) -> dict[str, dict | None]:
        """The rows the records may replace, as they are before the merge (None: no row yet)."""
        return {record["collection_concept_id"]: rows.get(record["collection_concept_id"]) for record in records}

    @classmethod
    def between(cls, before: dict[str, dict | None], rows: dict[str, dict]) -> ReportChanges:
        """The changes from `before` (from `rows_before`) to `rows` after the merge. The merge
        replaces a row by another object, so an unchanged row is the very same one."""
        changes = cls()
        for concept_id, old in before.items():
            new = rows[concept_id]
            if new is old:
                continue
            if old is None:
                changes.new += 1
            else:
                changes.rechecked += 1
                changes._count(outcome_of(old), -1)
            changes._count(outcome_of(new), 1)
            if outcome_of(new) in FAILED_REASONS:
                changes.failed_checks += 1
        return changes

    def _count(self, outcome: str, delta: int) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + delta

    def add(self, other: ReportChanges) -> None:
        self.new += other.new
        self.rechecked += other.rechecked
        self.failed_checks += other.failed_checks
        for outcome, delta in other.outcomes.items():
            self._count(outcome, delta)

    @property
    def compatible(self) -> int:
        return self.outcomes.get("compatible", 0)

    @property
    def by_reason(self) -> dict[str, int]:
        """Net change per reason, the reasons whose count changed."""
        return {reason: delta for reason, delta in sorted(self.outcomes.items()) if reason != "compatible" and delta}


def batch_documents(outcome: BatchOutcome) -> list[tuple[dict[str, float], dict[str, str], list[str]]]:
    """The batch's metric documents: (values, dimensions, the dimensions of the roll-up set)."""
    documents: list[tuple[dict[str, float], dict[str, str], list[str]]] = []
    for run, stats in sorted(outcome.runs.items()):
        changes = stats.changes
        by_reason = changes.by_reason
        documents.append(({CHECKED: changes.new, RECHECKED: changes.rechecked, COMPATIBLE: changes.compatible,
                           INCOMPATIBLE: sum(by_reason.values()), FAILED_CHECKS: changes.failed_checks},
                          {RUN: run}, []))  # fmt: skip
        for reason, delta in by_reason.items():
            documents.append(({REASON_METRIC: delta}, {RUN: run, REASON: reason}, [REASON]))
    documents.append(({FAILED_MESSAGES: len(outcome.failures)}, {}, []))
    return documents


def emit_batch_metrics(outcome: BatchOutcome) -> None:
    """Print the batch's EMF documents (one line each). Never raises: the batch is merged by now,
    and a failure here must not have SQS deliver it again (it would count nothing the second time)."""
    try:
        from aws_lambda_powertools.metrics import MetricUnit
        from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

        for values, dimensions, rollup in batch_documents(outcome):
            # A provider per document: Powertools' Metrics class keeps its metrics and dimensions
            # in class attributes, shared by every instance, so one run's Run would stay for the next.
            provider = AmazonCloudWatchEMFProvider()  # namespace and service from the environment
            for name, value in dimensions.items():
                provider.add_dimension(name, value)
            if provider.service:
                provider.add_dimension(SERVICE, provider.service)
                if dimensions:  # the same values, without the run: summed over all runs
                    provider.add_dimensions(**{SERVICE: provider.service, **{name: dimensions[name] for name in rollup}})
            for name, value in values.items():
                provider.add_metric(name=name, unit=MetricUnit.Count, value=value)
            provider.flush_metrics(raise_on_empty_metrics=True)
    except Exception:  # noqa: BLE001 - metrics are for watching; the batch's answer stands
        log.warning("the batch's metrics were not emitted", exc_info=True)
