"""Goal backfills: DynamoDB stream records of job items that are queued or running.

A job's creation and each checkpoint it writes are stream records; the record of the
job's latest write runs its next pages (see goalkeeper.services.backfill). Records of
older writes find the job moved on and do nothing, so redeliveries are harmless.
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
from goalkeeper.errors import StoreUnavailable
from goalkeeper.services.backfill import ACTIVE, JobRun
from goalkeeper.settings import get_settings

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


def record_handler(record: DynamoDBRecord, lambda_context: LambdaContext) -> None:
    seen = record.dynamodb.new_image
    settings = get_settings()
    run = JobRun.resume(
        runtime.dal(), seen, settings.aggregate_shards, settings.backfill_page_events
    )
    if run is None:
        return
    where = {"job_id": seen["job_id"], "goal_id": seen["goal_id"]}
    try:
        run.run(lambda: lambda_context.get_remaining_time_in_millis() / 1000)
    except StoreUnavailable:
        # Nothing of the page was recorded: the stream retries this record, which is
        # still the job's latest, and the page is decided again (changing nothing
        # that was decided).
        logger.warning("store unavailable; the job's page is retried", extra=where)
        raise
    except Exception:
        logger.exception("a backfill page failed; it is retried", extra=where)
        metrics.add_metric("BackfillPageFailures", MetricUnit.Count, 1)
        run.fail_page()
    if run.status not in ACTIVE:
        logger.info(f"backfill {run.status}", extra=where | {"error": run.job.get("error")})


@logger.inject_lambda_context
@runtime.traced
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
