"""The shape every subscriber of the table's stream shares (evaluation, backfill jobs).

Lambda's event source mapping hands the function a batch of DynamoDB stream records
and reads back which of them failed (a partial batch response), so only those are
retried. A subscriber is a Powertools `BatchProcessor` in Powertools' own style (its
`SqsFifoPartialProcessor`): the batch's policy is the processor's (`_prepare`,
`_process_record`, `_clean`), one record's work is its `record_handler`, and the
function's handler only calls `handle`. The subscribers' domains stay apart, each in a
module of its own (`evaluation_stream`, `backfill_stream`).
"""

from abc import abstractmethod
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    StreamRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext


def stream_change(record: DynamoDBRecord) -> StreamRecord:
    """The change a record carries: every record of the table's stream has one (Powertools
    types it optional because a record's shape is not checked when it is read)."""
    change = record.dynamodb
    if change is None:
        raise ValueError("a stream record without its change")
    return change


class MetricSink(Protocol):
    """What a subscriber needs of Powertools' `Metrics`."""

    def add_metric(self, name: str, unit: MetricUnit, value: float) -> None: ...


class StreamProcessor(BatchProcessor):
    """A batch of the table's stream records, answered with a partial batch response.

    A batch whose every record failed is still a partial response, not a function
    error: after a store outage at its first record the retry starts there, instead of
    Lambda bisecting a batch that has nothing wrong in it.

    `logger` and `metrics` are the function's own (its handler decorates with them);
    they are kept apart from `BatchProcessor`'s optional logger, which would add a
    warning of its own for every failed record.
    """

    def __init__(self, logger: Logger, metrics: MetricSink) -> None:
        super().__init__(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        self.log = logger
        self.metrics = metrics

    @abstractmethod
    def record_handler(self, record: DynamoDBRecord, lambda_context: LambdaContext) -> None:
        """One record's work; raising reports the record failed."""

    def handle(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        """Process a Lambda invocation's batch; the records that failed, in stream order."""
        return process_partial_response(
            event=event, record_handler=self.record_handler, processor=self, context=context
        )
