"""The template's queues and event buses, made locally, and its SQS event sources driven
the way Lambda drives them.

Locally the notify function talks to SQS and EventBridge through the same boto3 code as
deployed, pointed at moto (the embedded engine's endpoint, which serves every AWS API
moto knows, or moto in process in the tests). moto honours what the delivery path
depends on: a message's DelaySeconds, visibility timeouts, and a queue's RedrivePolicy
(a message received maxReceiveCount times moves to the dead-letter queue). So the hop
through the queue is the deployed one, not a stand-in with its own semantics; only the
visibility timeout after a failed message is shortened (`LOCAL_VISIBILITY_SECONDS`), so
a local retry comes in seconds rather than the template's minutes.

Everything is read from template.yaml: `AWS::SQS::Queue` and `AWS::Events::EventBus`
resources are created (a RedrivePolicy's target resolved to the local queue), function
environment variables that `!Ref` one of them are set to the local URL or name, and
each `Type: SQS` event source gets a `QueuePoller`.
"""

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

from goalkeeper_cli.local_stack.functions import LocalFunction
from goalkeeper_cli.local_stack.template import (
    SERVERLESS_FUNCTION,
    _code_location,
    _resources,
)

log = logging.getLogger("local-stack")

SQS_QUEUE = "AWS::SQS::Queue"
EVENT_BUS = "AWS::Events::EventBus"
LOCAL_VISIBILITY_SECONDS = 1


@dataclass(frozen=True)
class QueueSubscription:
    function: str
    code_uri: Any
    handler: str
    queue: str  # the queue's logical id
    batch_size: int
    report_batch_item_failures: bool


def _logical_id(reference: Any) -> str | None:
    """The resource a `!Ref X` or `!GetAtt X.Arn` names."""
    if isinstance(reference, dict):
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
    return None


def queue_subscriptions(template: dict[str, Any]) -> list[QueueSubscription]:
    subscriptions = []
    for logical_id, properties in _resources(template, SERVERLESS_FUNCTION):
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            code_uri, handler = _code_location(template, properties, logical_id)
            source = event["Properties"]
            queue = _logical_id(source["Queue"])
            if queue is None:
                raise ValueError(f"{logical_id}: an SQS event source must name a template queue")
            subscriptions.append(
                QueueSubscription(
                    logical_id,
                    code_uri,
                    handler,
                    queue,
                    int(source.get("BatchSize", 10)),
                    "ReportBatchItemFailures" in (source.get("FunctionResponseTypes") or []),
                )
            )
    return subscriptions


@dataclass
class Messaging:
    """The local queues (logical id -> URL) and buses (logical id -> name)."""

    queues: dict[str, str]
    queue_arns: dict[str, str]
    buses: dict[str, str]

    def environment(self, template: dict[str, Any]) -> dict[str, str]:
        """Function environment variables that name a queue or a bus, resolved locally."""
        names = self.queues | self.buses
        environment = {}
        for _, properties in _resources(template, SERVERLESS_FUNCTION):
            variables = (properties.get("Environment") or {}).get("Variables") or {}
            for name, value in variables.items():
                target = _logical_id(value) if isinstance(value, dict) and "Ref" in value else None
                if target in names:
                    environment[name] = names[target]
        return environment


def create_messaging(
    template: dict[str, Any], sqs: Any, events: Any, prefix: str = "goalkeeper"
) -> Messaging:
    """Create the template's queues (dead-letter targets first) and event buses."""
    queues: dict[str, str] = {}
    arns: dict[str, str] = {}
    pending = dict(_resources(template, SQS_QUEUE))
    while pending:
        for logical_id, properties in list(pending.items()):
            redrive = dict((properties or {}).get("RedrivePolicy") or {})
            target = _logical_id(redrive.get("deadLetterTargetArn"))
            if target is not None and target not in arns:
                continue  # its dead-letter queue first
            attributes = {}
            for name in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
                if name in (properties or {}):
                    attributes[name] = str(properties[name])
            if target is not None:
                redrive["deadLetterTargetArn"] = arns[target]
                attributes["RedrivePolicy"] = _json(redrive)
            url = sqs.create_queue(QueueName=f"{prefix}-{logical_id}", Attributes=attributes)[
                "QueueUrl"
            ]
            queues[logical_id] = url
            arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            del pending[logical_id]
    buses = {}
    for logical_id, _ in _resources(template, EVENT_BUS):
        name = f"{prefix}-{logical_id}"
        with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
            events.create_event_bus(Name=name)
        buses[logical_id] = name
    return Messaging(queues, arns, buses)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


class QueuePoller:
    """Lambda's SQS event source mapping: receive a batch, invoke, delete the messages
    that succeeded; failed ones (reported, or all when the invocation raised) are left to
    come back after a (shortened) visibility timeout, and moto's RedrivePolicy moves
    them to the dead-letter queue after maxReceiveCount receives."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        subscription: QueueSubscription,
        function: LocalFunction,
        region: str = "us-east-1",
        idle_sleep: float = 0.1,  # as the stream poller's
    ) -> None:
        self._sqs = sqs
        self.queue_url = queue_url
        self._arn = queue_arn
        self._subscription = subscription
        self.function = function
        self._region = region
        self._idle_sleep = idle_sleep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="queue-poller", daemon=True)

    def start(self) -> "QueuePoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.poll_once()
            except Exception:
                log.exception("queue poll failed; retrying")
                busy = False
            if not busy:
                self._stop.wait(self._idle_sleep)

    def poll_once(self) -> bool:
        """One batch; True when messages were received."""
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self._subscription.batch_size),
            WaitTimeSeconds=0,
            AttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return False
        records = [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": self._arn,
                "awsRegion": self._region,
            }
            for message in messages
        ]
        try:
            result = self.function.invoke({"Records": records}) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:
            log.exception("%s failed for a whole queue batch", self.function.name)
            failed = {record["messageId"] for record in records}
        for record in records:
            if record["messageId"] in failed:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=LOCAL_VISIBILITY_SECONDS,
                )
        done = [
            {"Id": str(number), "ReceiptHandle": record["receiptHandle"]}
            for number, record in enumerate(records)
            if record["messageId"] not in failed
        ]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        return True

    def pending(self) -> int:
        """Messages in the queue, visible, delayed or in flight."""
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())


def queue_pollers(
    template: dict[str, Any],
    messaging: Messaging,
    sqs: Any,
    functions: Any,
    region: str = "us-east-1",
    concurrency: int = 1,
) -> list[QueuePoller]:
    """`concurrency` pollers per SQS event source (Lambda runs several batches of one
    queue at once). `goalkeeper serve` runs one: on two cores a second measured no faster
    (the embedded endpoint's one-at-a-time lock bounds deliveries, bench/p7_webhooks.py),
    and each idle poller asks the endpoint ten times a second."""
    return [
        QueuePoller(
            sqs,
            messaging.queues[subscription.queue],
            messaging.queue_arns[subscription.queue],
            subscription,
            functions.get(subscription.function, subscription.code_uri, subscription.handler),
            region,
        )
        for subscription in queue_subscriptions(template)
        for _ in range(concurrency)
    ]
