"""Goal evaluation: DynamoDB stream batches of newly stored events.

Each record is decided independently; a record that fails is reported back
(partial batch response), so only it is retried, then sent to the on-failure
destination after the bounded retries configured in template.yaml.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.services.evaluation import GoalLibraryCache, evaluate_event_item
from goalkeeper.settings import get_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
libraries = GoalLibraryCache(runtime.store(), ttl=get_settings().goal_cache_ttl_seconds)


def record_handler(record: DynamoDBRecord) -> None:
    item = record.dynamodb.new_image
    decisions = evaluate_event_item(
        runtime.store(), libraries, item, get_settings().aggregate_shards
    )
    for decision in decisions:
        if not decision.replayed:
            metrics.add_metric(f"Conversions{decision.status.title()}", MetricUnit.Count, 1)
    logger.debug(
        "event evaluated",
        extra={"event_id": item.get("event_id"), "decisions": [d.status for d in decisions]},
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
