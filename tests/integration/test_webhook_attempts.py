"""One delivery's attempts, driven by hand (goalkeeper.services.notify.Notifier on the
in-process table, with a fake queue, bus, receiver and clock): duplicate and stale
queue messages, a sender that died mid-attempt, long waits hopping through the queue,
a webhook deleted or turned inward meanwhile, and the bus put once per conversion."""

from collections.abc import Iterator
from typing import Any

import pytest

from goalkeeper import runtime
from goalkeeper.services.notify import AttemptInFlight, Notifier
from goalkeeper.settings import get_settings
from goalkeeper.webhooks import Answer
from support.stack import InProcessStack

CONVERSION = {
    "kind": "conversion",
    "status": "counted",
    "conversion_id": "c1",
    "goal_id": "g1",
    "goal_name": "Sale",
    "event_id": "e1",
    "visitor_id": "v1",
    "occurred_at": "2026-11-30T10:00:00.000+00:00",
}


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.delays: list[int] = []  # of every message ever sent

    def send(self, message: dict[str, Any], delay_seconds: int) -> None:
        self.sent.append((dict(message), delay_seconds))
        self.delays.append(delay_seconds)


class Bus:
    def __init__(self) -> None:
        self.put_count = 0

    def put(self, detail: dict[str, Any], resources: list[str]) -> str:
        self.put_count += 1
        return f"bus-{self.put_count}"


class Sender:
    def __init__(self) -> None:
        self.answers: list[int | None] = []
        self.posts: list[dict[str, str]] = []

    def post(self, url: str, body: str, headers: dict[str, str], timeout: float) -> Answer:
        self.posts.append(headers)
        status = self.answers.pop(0) if self.answers else 200
        return Answer(status, None if status else "refused")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(stack: InProcessStack) -> Iterator[tuple[Notifier, Queue, Bus, Sender, Clock, str]]:
    account = stack.new_account(name="Acme")
    write = account["keys"]["write"]
    status, hook = stack.api.request(
        "POST", "/v1/webhooks", write, {"url": "http://localhost:9/hook"}
    )
    assert status == 201, hook
    queue, bus, sender, clock = Queue(), Bus(), Sender(), Clock()
    notifier = Notifier(
        lambda: runtime.dal().webhooks,
        get_settings,
        lambda: queue,
        lambda: bus,
        sender,
        clock=clock,
        jitter=lambda: 0.0,
        resolve=lambda host, port: ["127.0.0.1"],
    )
    yield notifier, queue, bus, sender, clock, account["account_id"]


def _conversion(account_id: str, **more: Any) -> dict[str, Any]:
    return CONVERSION | {"account_id": account_id} | more


def test_replays_create_one_delivery_and_put_one_bus_event(setup: Any) -> None:
    notifier, queue, bus, sender, _, account_id = setup
    assert notifier.conversion_counted(_conversion(account_id)) == 1
    notifier.new_batch()
    # A replay before the first attempt queues the untried delivery again (its message
    # may have been lost); the attempt's claim still sends it once.
    assert notifier.conversion_counted(_conversion(account_id)) == 1
    assert bus.put_count == 1
    (first, _), (second, _) = queue.sent
    assert first == second
    assert notifier.attempt(first) == "delivered"
    assert notifier.attempt(second) == "stale"
    assert len(sender.posts) == 1
    notifier.new_batch()
    assert notifier.conversion_counted(_conversion(account_id)) == 0  # tried: nothing queued
    assert notifier.conversion_counted(_conversion(account_id, status="void")) == 0
    assert bus.put_count == 1


def test_failures_are_retried_later_then_dead(setup: Any, monkeypatch: Any) -> None:
    notifier, queue, _, sender, clock, account_id = setup
    monkeypatch.setenv("GOALKEEPER_WEBHOOK_RETRY_BASE_SECONDS", "30")
    monkeypatch.setenv("GOALKEEPER_WEBHOOK_RETRY_MAX_DELAY_SECONDS", "14400")
    get_settings.cache_clear()
    notifier.conversion_counted(_conversion(account_id))
    sender.answers = [500] * 40
    message, delay = queue.sent.pop()
    delays, hops = [], 0
    while True:
        clock.now += delay  # the queue holds the message this long
        outcome = notifier.attempt(message)
        if outcome == "waiting":  # a wait longer than SQS delays: it hopped
            hops += 1
        elif outcome != "retrying":
            break
        message, delay = queue.sent.pop()
        if outcome == "retrying":
            delays.append(message["due"] - clock.now)
    assert outcome == "dead"
    assert delays[:5] == [30, 60, 120, 240, 480]
    assert max(delays) == 14400 and len(sender.posts) == len(delays) + 1
    assert hops > 0 and max(queue.delays) == 900  # SQS's longest delay
    assert clock.now - 1_800_000_000.0 <= 24 * 3600


def test_a_sender_that_died_mid_attempt_is_taken_over_after_its_lease(setup: Any) -> None:
    notifier, queue, _, sender, clock, account_id = setup
    notifier.conversion_counted(_conversion(account_id))
    message, _ = queue.sent.pop()
    webhooks = runtime.dal().webhooks
    claimed, _ = webhooks.claim_attempt(
        account_id, message["webhook_id"], message["delivery_id"], 0, clock.now
    )
    assert claimed is not None  # ... and the sender dies here
    with pytest.raises(AttemptInFlight):  # the message comes back while the lease runs
        notifier.attempt(message)
    clock.now += 121
    assert notifier.attempt(message) == "delivered"
    assert len(sender.posts) == 1


def test_a_deleted_webhook_cancels_what_is_queued_for_it(setup: Any, stack: InProcessStack) -> None:
    notifier, queue, _, sender, _, account_id = setup
    notifier.conversion_counted(_conversion(account_id))
    message, _ = queue.sent.pop()
    runtime.dal().webhooks.delete(account_id, message["webhook_id"])
    assert notifier.attempt(message) == "cancelled"
    assert sender.posts == []


def test_a_url_that_now_resolves_inward_gets_nothing(setup: Any, monkeypatch: Any) -> None:
    notifier, queue, _, sender, _, account_id = setup
    monkeypatch.setenv("GOALKEEPER_WEBHOOKS_ALLOW_LOCAL_HTTP", "false")
    get_settings.cache_clear()
    notifier.conversion_counted(_conversion(account_id))
    message, _ = queue.sent.pop()
    assert notifier.attempt(message) == "retrying"
    assert sender.posts == []
    item = runtime.dal().webhooks.get_delivery(
        account_id, message["webhook_id"], message["delivery_id"]
    )
    assert item is not None and item["last_error"].startswith("refused")
