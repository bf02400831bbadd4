"""The local stack reads the template's queues, bus and SQS event sources
(goalkeeper_cli.local_stack.queues): what it creates, in which order, and the
environment it gives the functions."""

import json
from typing import Any

from goalkeeper_cli.local_stack.queues import create_messaging, queue_subscriptions
from goalkeeper_cli.local_stack.template import load_template


class FakeSqs:
    def __init__(self) -> None:
        self.created: list[tuple[str, dict[str, str]]] = []

    def create_queue(self, QueueName: str, Attributes: dict[str, str]) -> dict[str, Any]:
        self.created.append((QueueName, Attributes))
        return {"QueueUrl": f"http://q/{QueueName}"}

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": "arn:" + QueueUrl.rsplit("/", 1)[1]}}


class FakeEvents:
    class exceptions:
        class ResourceAlreadyExistsException(Exception):
            pass

    def __init__(self) -> None:
        self.buses: list[str] = []

    def create_event_bus(self, Name: str) -> None:
        self.buses.append(Name)


def test_queues_are_made_dead_letter_first_and_named_in_the_functions_environment() -> None:
    template = load_template()
    sqs, events = FakeSqs(), FakeEvents()
    messaging = create_messaging(template, sqs, events, prefix="gk")
    names = [name for name, _ in sqs.created]
    assert names.index("gk-NotificationsDeadLetterQueue") < names.index("gk-DeliveryQueue")
    attributes = dict(sqs.created)["gk-DeliveryQueue"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:gk-NotificationsDeadLetterQueue",
        "maxReceiveCount": 5,
    }
    assert attributes["VisibilityTimeout"] == "360"
    assert events.buses == ["gk-EventBus"]
    assert messaging.environment(template) == {
        "GOALKEEPER_DELIVERY_QUEUE_URL": "http://q/gk-DeliveryQueue",
        "GOALKEEPER_EVENT_BUS_NAME": "gk-EventBus",
    }


def test_the_delivery_queue_feeds_the_notify_function() -> None:
    (subscription,) = queue_subscriptions(load_template())
    assert (subscription.function, subscription.queue) == ("NotifyFunction", "DeliveryQueue")
    assert subscription.report_batch_item_failures and subscription.batch_size == 5
