"""State machine step: one wave of Lithops workers over the pending collections."""

from aws_lambda_powertools import Logger

from titiler_cmr_compatibility.serverless import launch_step
from titiler_cmr_compatibility.settings import get_settings

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    return launch_step(event, get_settings())
