"""Goal evaluation's stream batches: the policy of a batch of newly stored events.

- A shard's events are decided in stream order (the first counted conversion wins a
  de-dup key). After a store outage at one record, that record and every later one of
  the batch are reported failed, the later ones unattempted, so the retry decides
  them after it, in order: the short circuit of Powertools' `SqsFifoPartialProcessor`,
  taken on an outage only.
- Any other failure is the record's own (a poison record): it fails alone, is retried,
  then sent to the on-failure destination after the retries template.yaml configures.
- The visitors seen by the batch's events that reached no goal are counted in one
  write at its end. When that write meets an outage every record of the batch is
  reported failed: decisions are safe to repeat and sightings are counted once by
  their markers, so the whole batch is simply retried.
- Each batch uses one snapshot of each account's goal library (see `Evaluator`).
"""

import sys
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import FailureResponse, SuccessResponse
from aws_lambda_powertools.utilities.batch.exceptions import ExceptionInfo
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper.errors import StoreUnavailable, WriteRejected
from goalkeeper.services.evaluation import Evaluator
from goalkeeper.services.streams import MetricSink, StreamProcessor, stream_change


class Deferred(Exception):
    """Not attempted: an earlier record of this batch met a store outage."""


class EvaluationProcessor(StreamProcessor):
    """Evaluation of the table's stream batches (see the module's notes)."""

    deferred_exc: ExceptionInfo = (
        Deferred,
        Deferred("an earlier record of this batch met a store outage"),
        None,
    )

    def __init__(self, evaluator: Evaluator, logger: Logger, metrics: MetricSink) -> None:
        super().__init__(logger, metrics)
        self.evaluator = evaluator

    def _prepare(self) -> None:
        super()._prepare()
        self.evaluator.new_batch()

    def _process_record(self, record: dict[str, Any]) -> SuccessResponse | FailureResponse:
        if self._outage_met():
            return self.failure_handler(
                record=self._to_batch_type(record, event_type=self.event_type, model=self.model),
                exception=self.deferred_exc,
            )
        return super()._process_record(record)

    def _outage_met(self) -> bool:
        return any(isinstance(info[1], StoreUnavailable) for info in self.exceptions)

    def _clean(self) -> None:
        try:
            self.evaluator.count_sightings()
        except StoreUnavailable:
            self.log.warning("visitors seen could not be counted; the batch is retried")
            self._fail_every_record(sys.exc_info())
        super()._clean()

    def _fail_every_record(self, exception: ExceptionInfo) -> None:
        self.success_messages.clear()
        self.fail_messages.clear()
        self.exceptions.clear()
        for record in self.records:
            self.failure_handler(
                record=self._to_batch_type(record, event_type=self.event_type, model=self.model),
                exception=exception,
            )

    def record_handler(self, record: DynamoDBRecord, lambda_context: LambdaContext) -> None:
        change = stream_change(record)
        item = change.new_image
        where = {"event_id": item.get("event_id"), "sequence": change.sequence_number}
        try:
            decisions = self.evaluator.evaluate(item)
        except StoreUnavailable:
            self.log.warning(
                "store unavailable; the batch is retried from this record", extra=where
            )
            raise
        except WriteRejected:
            # A defect of ours (an invalid write), not a busy store: alarm on this metric.
            self.metrics.add_metric("DecisionWritesRejected", MetricUnit.Count, 1)
            self.log.exception(
                "DynamoDB rejected a decision write as invalid; the event is dead-lettered "
                "after its retries and can be redriven once the defect is fixed",
                extra=where,
            )
            raise
        except Exception:
            self.log.exception(
                "event could not be evaluated; retried, then sent to the on-failure destination",
                extra=where,
            )
            raise
        for decision in decisions:
            if not decision.replayed:
                self.metrics.add_metric(
                    f"Conversions{decision.status.title()}", MetricUnit.Count, 1
                )
        self.log.debug(
            "event evaluated",
            extra={"event_id": item.get("event_id"), "decisions": [d.status for d in decisions]},
        )
