"""State machine step: is the running wave over, and what is still pending?"""

from aws_lambda_powertools import Logger

from titiler_cmr_compatibility.serverless import progress_step
from titiler_cmr_compatibility.settings import get_settings

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    return progress_step(event, get_settings())
