"""State machine step: terminal results for what is still pending; the report as CSV and Parquet."""

from aws_lambda_powertools import Logger

from titiler_cmr_compatibility.serverless import finalize_step
from titiler_cmr_compatibility.settings import get_settings

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    return finalize_step(event, get_settings())
