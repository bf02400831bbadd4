"""Goal evaluation: DynamoDB stream batches of newly stored events.

Each record is decided independently; a record that fails is reported back
(partial batch response), so only it is retried, then sent to the on-failure
destination after the bounded retries configured in template.yaml.
"""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.dal.decisions import Sighting
from goalkeeper.errors import StoreUnavailable, WriteRejected
from goalkeeper.services.evaluation import (
    GoalLibraryCache,
    SeenVisitors,
    count_deferred_sightings,
    evaluate_event_item,
)
from goalkeeper.settings import get_settings

logger = Logger()
metrics = Metrics()
# A batch whose every record failed is still a partial response, not a function error:
# after a store outage at its first record (the rest deferred, see record_handler) the
# retry starts there, instead of bisecting a batch that has nothing wrong in it.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)
libraries = GoalLibraryCache(runtime.dal().goals)
seen_visitors = SeenVisitors()
# Visitors seen by events that reached no goal, counted in one write per batch.
deferred_sightings: list[Sighting] = []


class Deferred(Exception):
    """Not attempted: an earlier record of this batch met a store outage."""


def record_handler(record: DynamoDBRecord) -> None:
    # A shard's events are decided in stream order (the first counted conversion
    # wins a de-dup key). After a transient failure the rest of the batch is
    # reported failed unattempted, so the retry decides them after it, in order.
    # Any other failure is the record's own (a poison record): it fails alone.
    if any(isinstance(info[1], StoreUnavailable) for info in processor.exceptions):
        raise Deferred("an earlier record of this batch met a store outage")
    item = record.dynamodb.new_image
    try:
        decisions = evaluate_event_item(
            runtime.dal(),
            libraries,
            item,
            get_settings().aggregate_shards,
            seen_visitors,
            deferred_sightings,
        )
    except StoreUnavailable:
        logger.warning(
            "store unavailable; the batch is retried from this record",
            extra={"event_id": item.get("event_id"), "sequence": record.dynamodb.sequence_number},
        )
        raise
    except WriteRejected:
        # A defect of ours (an invalid write), not a busy store: alarm on this metric.
        metrics.add_metric("DecisionWritesRejected", MetricUnit.Count, 1)
        logger.exception(
            "DynamoDB rejected a decision write as invalid; the event is dead-lettered "
            "after its retries and can be redriven once the defect is fixed",
            extra={"event_id": item.get("event_id"), "sequence": record.dynamodb.sequence_number},
        )
        raise
    except Exception:
        logger.exception(
            "event could not be evaluated; retried, then sent to the on-failure destination",
            extra={"event_id": item.get("event_id"), "sequence": record.dynamodb.sequence_number},
        )
        raise
    for decision in decisions:
        if not decision.replayed:
            metrics.add_metric(f"Conversions{decision.status.title()}", MetricUnit.Count, 1)
    logger.debug(
        "event evaluated",
        extra={"event_id": item.get("event_id"), "decisions": [d.status for d in decisions]},
    )


@logger.inject_lambda_context
@runtime.traced
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    libraries.new_batch()
    deferred_sightings.clear()
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    try:
        count_deferred_sightings(runtime.dal().decisions, deferred_sightings, seen_visitors)
    except StoreUnavailable:
        # Decisions are safe to repeat and sightings are counted once by their
        # markers, so the whole batch is simply retried.
        logger.warning("visitors seen could not be counted; the batch is retried")
        records = event.get("Records", [])
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["dynamodb"]["SequenceNumber"]} for record in records
            ]
        }
    return response
