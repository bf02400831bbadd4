"""Goal backfills: DynamoDB stream records of job items that are queued or running, each
running its job's next pages (see goalkeeper.services.backfill_stream)."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.services.backfill_stream import BackfillProcessor
from goalkeeper.settings import get_settings

logger = Logger()
metrics = Metrics()
processor = BackfillProcessor(runtime.dal, get_settings, logger, metrics)


@logger.inject_lambda_context
@runtime.traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return processor.handle(event, context)
