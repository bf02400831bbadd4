"""Goal-reached notifications (see goalkeeper.services.notify): the table's stream of
counted conversions (each put on the event bus once, and a delivery created and queued
for each matching webhook), and the delivery queue (each message one signed attempt)."""

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.dal.webhooks import Webhooks
from goalkeeper.messaging import EventBridgeBus, EventBus, HttpSender, SqsOutbox
from goalkeeper.services.notify import DeliveryQueueProcessor, Notifier, NotifyStreamProcessor
from goalkeeper.settings import get_settings

logger = Logger()
metrics = Metrics()


def _webhooks() -> Webhooks:
    return runtime.dal().webhooks


@cache
def _outbox_at(url: str) -> SqsOutbox:
    return SqsOutbox(url)


@cache
def _bus_named(name: str) -> EventBus | None:
    return EventBridgeBus(name) if name else None


def _outbox() -> SqsOutbox:
    return _outbox_at(get_settings().delivery_queue_url)


def _bus() -> EventBus | None:
    return _bus_named(get_settings().event_bus_name)


notifier = Notifier(_webhooks, get_settings, _outbox, _bus, HttpSender())
conversions = NotifyStreamProcessor(notifier, logger, metrics)
deliveries = DeliveryQueueProcessor(notifier, logger, metrics)


@logger.inject_lambda_context
@runtime.traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = event.get("Records") or [{}]
    if records[0].get("eventSource") == "aws:sqs":
        return deliveries.handle(event, context)
    return conversions.handle(event, context)
