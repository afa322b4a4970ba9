"""Lambda handler: merge a batch of S3 `result.json` events (from SQS) into the run's report.

Event: an SQS batch whose bodies are S3 event notifications. Returns
{"batchItemFailures": [{"itemIdentifier": messageId}, ...]} (the event source mapping needs
`FunctionResponseTypes: [ReportBatchItemFailures]`): those messages are delivered again.
What the batch merged is printed as CloudWatch metrics (EMF; titiler_cmr_compatibility.metrics).
"""

from aws_lambda_powertools import Logger

from titiler_cmr_compatibility.aggregate import handle_sqs_event
from titiler_cmr_compatibility.metrics import emit_batch_metrics
from titiler_cmr_compatibility.settings import get_settings
from titiler_cmr_compatibility.storage import open_storage

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    settings = get_settings()
    # SURVEY_STORE is s3://bucket/prefix; each key's run is its first segment under the prefix.
    storage = open_storage(settings.survey_store)
    return handle_sqs_event(event, storage, settings, logger=logger, metrics=emit_batch_metrics)
