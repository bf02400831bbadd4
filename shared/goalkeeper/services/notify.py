"""Goal-reached notifications: counted conversions to the event bus and to webhooks.

Two inputs, one function (functions/notify):

- the table's stream, filtered to inserted conversion items that are counted
  (template.yaml): each conversion is put on the event bus once, and a delivery is
  created for each matching active webhook, with a conditional write keyed by
  (conversion, webhook), then handed to the delivery queue;
- the delivery queue (SQS): each message is one attempt of one delivery. The attempt
  is claimed with a conditional update (two copies of a message never both send), the
  request is signed (Standard Webhooks) and sent with a 10 s timeout, and the outcome
  recorded: delivered (2xx); the webhook disabled (410); otherwise the next attempt is
  queued with a growing, jittered delay, until the retry window (24 h) is spent: dead.

Void conversions are filtered out by the subscription and checked again here.
"""

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import keys
from goalkeeper.dal.webhooks import Webhooks, iso
from goalkeeper.messaging import MAX_QUEUE_DELAY, EventBus, Outbox, Sender
from goalkeeper.services.streams import MetricSink, StreamProcessor, stream_change
from goalkeeper.services.webhooks import message
from goalkeeper.settings import Settings
from goalkeeper.webhooks import (
    Answer,
    Resolver,
    RetryPolicy,
    UrlRefused,
    check_url,
    conversion_data,
    event_body,
    matches,
    signed_headers,
    system_resolver,
    webhook_message_id,
)

# What became of one queue message: sent (delivered, retrying, dead, disabled by a 410),
# not sent (cancelled: the webhook is gone; stale: another copy took the attempt, or the
# delivery moved on; waiting: not due yet, queued again for the rest of the wait).
Outcome = Literal["delivered", "retrying", "dead", "disabled", "cancelled", "stale", "waiting"]

# A message due within this many seconds is sent now rather than delayed again.
DUE_SLACK = 0.5


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.webhook_retry_base_seconds,
        settings.webhook_retry_max_delay_seconds,
        settings.webhook_retry_window_seconds,
    )


class AttemptInFlight(Exception):
    """Another sender holds the attempt (its lease runs): the message is retried later."""


@dataclass
class Notifier:
    """Everything the notify function needs, each dependency given (tests pass fakes or
    moto-backed ones; the function passes the AWS ones)."""

    webhooks: Callable[[], Webhooks]
    settings: Callable[[], Settings]
    outbox: Callable[[], Outbox]
    bus: Callable[[], EventBus | None]
    sender: Sender
    clock: Callable[[], float] = time.time
    jitter: Callable[[], float] = random.random
    resolve: Resolver = system_resolver
    counts: dict[str, int] = field(default_factory=dict)
    # The account's webhooks, read once per batch (see `new_batch`): for the stream, an
    # account's list; for the queue, each webhook an attempt needs.
    _hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _hook: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def new_batch(self) -> None:
        """Forget the webhooks read for the last batch: a webhook created, deleted or
        disabled since counts from the next batch on (at most one batch's wait, never a
        cache's lifetime; a 410 counts at once, see `attempt`)."""
        self._hooks.clear()
        self._hook.clear()

    def _webhook(self, webhooks: Webhooks, account_id: str, webhook_id: str) -> Any:
        if (account_id, webhook_id) not in self._hook:
            self._hook[account_id, webhook_id] = webhooks.get_item(account_id, webhook_id)
        return self._hook[account_id, webhook_id]

    def _webhooks_of(self, webhooks: Webhooks, account_id: str) -> list[dict[str, Any]]:
        if account_id not in self._hooks:
            self._hooks[account_id] = webhooks.items(account_id)
        return self._hooks[account_id]

    # --- the stream: one counted conversion ---------------------------------------------

    def conversion_counted(self, image: dict[str, Any]) -> int:
        """Publish the conversion and create its deliveries; how many were queued."""
        if image.get("kind") != "conversion" or image.get("status") != "counted":
            return 0
        webhooks = self.webhooks()
        account_id, conversion_id = image["account_id"], image["conversion_id"]
        data = conversion_data(image)
        now = self.clock()
        bus = self.bus()
        if bus is not None and webhooks.publish_claim(account_id, conversion_id, iso(now)):
            event_id = bus.put(data | {"account_id": account_id}, [])
            webhooks.published(account_id, conversion_id, event_id)
            self._count("ConversionsPublished")
        queued = 0
        for hook in self._webhooks_of(webhooks, account_id):
            if hook["status"] != "active" or not matches(hook.get("goal_ids"), data["goal_id"]):
                continue
            delivery_id = keys.delivery_id(conversion_id, hook["webhook_id"])
            stored, created = webhooks.create_delivery(
                {
                    "kind": "delivery",
                    "account_id": account_id,
                    "webhook_id": hook["webhook_id"],
                    "delivery_id": delivery_id,
                    "message_id": webhook_message_id(delivery_id),
                    "conversion_id": conversion_id,
                    "goal_id": data["goal_id"],
                    "data": data,
                    "status": "pending",
                    "attempts": 0,
                    "window_base": 0,
                    "window_start": _decimal(now),
                    "next_attempt_at": _decimal(now),
                    "created_at": iso(now),
                }
            )
            # A replayed record queues an untried delivery again: its queue message may
            # have been lost with the earlier run. The attempt's claim sends it once.
            if created or (stored["status"] == "pending" and int(stored["attempts"]) == 0):
                self.outbox().send(message(stored), 0)
                queued += 1
        self._count("DeliveriesQueued", queued)
        return queued

    # --- the queue: one attempt ---------------------------------------------------------

    def attempt(self, note: dict[str, Any]) -> Outcome:
        """One attempt of one delivery; what became of it (for logs and tests)."""
        now = self.clock()
        due = float(note.get("due") or 0)
        if due > now + DUE_SLACK:  # a wait longer than SQS delays: one more hop
            self.outbox().send(note, min(MAX_QUEUE_DELAY, math.ceil(due - now)))
            return "waiting"
        webhooks = self.webhooks()
        account_id, webhook_id = note["account_id"], note["webhook_id"]
        delivery_id, attempt = note["delivery_id"], int(note["attempt"])
        claimed, current = webhooks.claim_attempt(account_id, webhook_id, delivery_id, attempt, now)
        if claimed is None:
            if (
                current
                and current.get("status") == "sending"
                and int(current["attempts"]) == attempt + 1
            ):
                raise AttemptInFlight(delivery_id)
            return "stale"
        made = attempt + 1
        hook = self._webhook(webhooks, account_id, webhook_id)
        if hook is None or hook["status"] != "active":
            state = "deleted" if hook is None else hook["status"]
            webhooks.record_attempt(
                account_id,
                webhook_id,
                delivery_id,
                made,
                {
                    "status": "cancelled",
                    "last_error": f"the webhook is {state}",
                    "next_attempt_at": None,
                },
            )
            return "cancelled"
        answer = self._send(hook, claimed, now)
        changes: dict[str, Any] = {
            "last_response_code": answer.status,
            "last_error": answer.error,
            "last_attempt_at": iso(now),
        }
        if answer.delivered:
            self._count("DeliveriesDelivered")
            changes |= {"status": "delivered", "delivered_at": iso(now), "next_attempt_at": None}
            webhooks.record_attempt(account_id, webhook_id, delivery_id, made, changes)
            return "delivered"
        self._count("DeliveryAttemptsFailed")
        if answer.gone:
            webhooks.disable(account_id, webhook_id, "the receiver answered 410 Gone")
            hook["status"] = "disabled"  # the rest of this batch sends it nothing either
            changes |= {"status": "cancelled", "next_attempt_at": None}
            webhooks.record_attempt(account_id, webhook_id, delivery_id, made, changes)
            return "disabled"
        failures = made - int(claimed.get("window_base", 0))
        started = float(claimed.get("window_start") or now)
        next_at = retry_policy(self.settings()).next_attempt(failures, started, now, self.jitter())
        if next_at is None:
            self._count("DeliveriesDead")
            changes |= {"status": "dead", "next_attempt_at": None}
            webhooks.record_attempt(account_id, webhook_id, delivery_id, made, changes)
            return "dead"
        following = note | {"attempt": made, "due": next_at}
        # Queued before the outcome is written: should the write never happen, the next
        # attempt still comes (and claims attempt `made`, which this one took).
        self.outbox().send(following, min(MAX_QUEUE_DELAY, math.ceil(next_at - now)))
        changes |= {"status": "pending", "next_attempt_at": _decimal(next_at)}
        webhooks.record_attempt(account_id, webhook_id, delivery_id, made, changes)
        return "retrying"

    def _send(self, hook: dict[str, Any], delivery: dict[str, Any], now: float) -> Answer:
        settings = self.settings()
        try:
            # Checked again before every attempt: a name may resolve elsewhere by now.
            url = check_url(hook["url"], settings.webhooks_allow_local_http, self.resolve)
        except UrlRefused as refused:
            return Answer(None, f"refused: {refused}")
        body = event_body(delivery["data"])
        headers = signed_headers(hook["secret"], delivery["message_id"], int(now), body)
        return self.sender.post(url, body, headers, settings.webhook_timeout_seconds)

    def _count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value


def _decimal(epoch: float) -> Any:
    from decimal import Decimal

    return Decimal(str(round(epoch, 3)))


class NotifyStreamProcessor(StreamProcessor):
    """Counted conversions from the table's stream (see the module's notes)."""

    def __init__(self, notifier: Notifier, logger: Logger, metrics: MetricSink) -> None:
        super().__init__(logger, metrics)
        self.notifier = notifier

    def _prepare(self) -> None:
        super()._prepare()
        self.notifier.new_batch()

    def record_handler(self, record: DynamoDBRecord, lambda_context: LambdaContext) -> None:
        image = stream_change(record).new_image
        queued = self.notifier.conversion_counted(image)
        if queued:
            self.metrics.add_metric("DeliveriesQueued", MetricUnit.Count, queued)


class DeliveryQueueProcessor(BatchProcessor):
    """Delivery attempts from the queue; a message that fails is reported (partial batch
    response) and comes back after the queue's visibility timeout, then to the DLQ."""

    def __init__(self, notifier: Notifier, logger: Logger, metrics: MetricSink) -> None:
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.notifier = notifier
        self.log = logger
        self.metrics = metrics

    def _prepare(self) -> None:
        super()._prepare()
        self.notifier.new_batch()

    def record_handler(self, record: SQSRecord, lambda_context: LambdaContext) -> None:
        note = json.loads(record.body)
        outcome = self.notifier.attempt(note)
        if outcome in ("delivered", "dead", "disabled"):
            self.metrics.add_metric(f"Deliveries_{outcome}", MetricUnit.Count, 1)
        if outcome in ("dead", "disabled"):
            self.log.warning(
                f"delivery {outcome}", extra={k: note[k] for k in ("webhook_id", "delivery_id")}
            )

    def handle(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        return process_partial_response(
            event=event, record_handler=self.record_handler, processor=self, context=context
        )
