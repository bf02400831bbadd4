"""Goal evaluation: DynamoDB stream batches of newly stored events.

A record that fails is reported back (partial batch response), so only it is retried,
then sent to the on-failure destination after the bounded retries configured in
template.yaml; after a store outage the rest of the batch is retried in stream order
(see goalkeeper.services.evaluation_stream).
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.services.evaluation import Evaluator
from goalkeeper.services.evaluation_stream import EvaluationProcessor
from goalkeeper.settings import get_settings

logger = Logger()
metrics = Metrics()
# Kept while the Lambda is warm: goal libraries and visitors already counted.
processor = EvaluationProcessor(Evaluator(runtime.dal, get_settings), logger, metrics)


@logger.inject_lambda_context
@runtime.traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return processor.handle(event, context)
