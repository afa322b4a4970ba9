"""Lambda handler: check one collection.

Event: {"collection_concept_id": "C...", "granule_id": "G..." (optional),
        "access_type": "direct" | "external" (optional), "collection": {UMM-JSON item} (optional)}
Returns the result record.
"""

from aws_lambda_powertools import Logger

from titiler_cmr_compatibility.check import check_collection

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    result = check_collection(
        event["collection_concept_id"],
        collection=event.get("collection"),
        granule_id=event.get("granule_id"),
        access_type=event.get("access_type"),
    )
    return result.to_record()
