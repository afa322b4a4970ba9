"""State machine step: list collections from CMR and write one marker per collection.

Event (the execution input, all optional): {"run", "total_collections", "access_type", "max_attempts"}.
"""

from aws_lambda_powertools import Logger

from titiler_cmr_compatibility.serverless import setup_step
from titiler_cmr_compatibility.settings import get_settings

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    return setup_step(event or {}, get_settings())
