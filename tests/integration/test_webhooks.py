"""Goal-reached notifications on the in-process stack: subscriptions and their rules,
signed deliveries verified by the `standardwebhooks` package, retries, 410, dead
deliveries and the retry route, replayed stream batches, the event bus, and the
automation an email tool runs on them (DESIGN §12, issue 18).

Retries wait a second each here (GOALKEEPER_WEBHOOK_RETRY_*_SECONDS in
support.stack.environment); the burst is GOALKEEPER_TEST_WEBHOOK_BURST conversions
(30 unless set: GOALKEEPER_TEST_WEBHOOK_BURST=500 runs the issue's 500, about a minute
in process; bench/p7_webhooks.py sends 500 through `goalkeeper serve`)."""

import base64
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from goalkeeper_cli.local_stack.poller import StreamPoller
from goalkeeper_cli.local_stack.template import load_template, stream_subscription
from support.receiver import Automation, Receiver
from support.stack import InProcessStack

THANKS = {
    "name": "Thank-you page",
    "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/thanks"},
}
BURST = int(os.environ.get("GOALKEEPER_TEST_WEBHOOK_BURST", "30"))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def _account(stack: InProcessStack) -> tuple[str, str]:
    account = stack.new_account(name="Acme")
    return account["keys"]["write"], account["keys"]["read"]


def _subscribe(stack: InProcessStack, write: str, hook: Receiver, **body: Any) -> dict[str, Any]:
    status, created = stack.api.request("POST", "/v1/webhooks", write, {"url": hook.url} | body)
    assert status == 201, created
    hook.secret = created["secret"]
    return created


def _views(count: int, start: int = 0, **more: Any) -> list[dict[str, Any]]:
    return [
        {
            "type": "page_view",
            "visitor_id": f"v-{i}",
            "url": "https://shop.example/thanks",
            "event_id": f"e-{i}",
        }
        | more
        for i in range(start, start + count)
    ]


def _deliveries(stack: InProcessStack, write: str, webhook_id: str) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        query = {"limit": "100"} | ({"cursor": cursor} if cursor else {})
        status, page = stack.api.request(
            "GET", f"/v1/webhooks/{webhook_id}/deliveries", write, query=query
        )
        assert status == 200, page
        found += page["deliveries"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


# --- subscriptions ----------------------------------------------------------------------


def test_a_webhook_is_created_listed_and_deleted_its_secret_shown_once(
    stack: InProcessStack, receiver: Receiver
) -> None:
    write, read = _account(stack)
    created = _subscribe(stack, write, receiver, description="CRM", goal_ids=["g1"])
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24
    status, listed = stack.api.request("GET", "/v1/webhooks", write)
    assert status == 200
    (hook,) = listed["webhooks"]
    assert hook["webhook_id"] == created["webhook_id"]
    assert (hook["url"], hook["goal_ids"], hook["status"]) == (receiver.url, ["g1"], "active")
    assert "secret" not in hook and created["secret"] not in json.dumps(listed)
    assert stack.api.request("GET", "/v1/webhooks", read)[0] == 403
    path = f"/v1/webhooks/{created['webhook_id']}"
    assert stack.api.request("DELETE", path, write)[0] == 200
    assert stack.api.request("DELETE", path, write)[0] == 404
    assert stack.api.request("GET", "/v1/webhooks", write)[1] == {"webhooks": []}


def test_an_account_holds_at_most_20_webhooks(stack: InProcessStack, receiver: Receiver) -> None:
    write, _ = _account(stack)
    ids = [_subscribe(stack, write, receiver)["webhook_id"] for _ in range(20)]
    status, refused = stack.api.request("POST", "/v1/webhooks", write, {"url": receiver.url})
    assert (status, refused["error"]["code"]) == (409, "conflict"), refused
    assert "20 webhooks" in refused["error"]["message"]
    assert stack.api.request("DELETE", f"/v1/webhooks/{ids[0]}", write)[0] == 200
    _subscribe(stack, write, receiver)  # room again


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "must use https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://user:pw@hooks.example.com/x", "user name"),
        ("https://10.1.2.3/x", "10.1.2.3"),
        ("https://127.0.0.1/x", "127.0.0.1"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("https://[::1]/x", "::1"),
        ("https://[fd00::1]/x", "fd00::1"),
        ("https://[::ffff:192.168.0.1]/x", "192.168.0.1"),
        ("https://100.64.0.1/x", "100.64.0.1"),
        ("https://internal.example.com/x", "10.0.0.7"),  # resolves inward
        ("https://mixed.example.com/x", "192.168.1.1"),  # one of its addresses does
        ("https://localhost:8443/x", "127.0.0.1"),
    ],
)
def test_urls_refused_as_deployed_name_the_field_and_store_nothing(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    from goalkeeper.settings import get_settings

    write, _ = _account(stack)
    monkeypatch.setenv("GOALKEEPER_WEBHOOKS_ALLOW_LOCAL_HTTP", "false")
    get_settings.cache_clear()
    answers = {
        "internal.example.com": ["10.0.0.7"],
        "mixed.example.com": ["93.184.215.14", "192.168.1.1"],
        "localhost": ["127.0.0.1"],
        "hooks.example.com": ["93.184.215.14"],
    }

    def resolver(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    status, refused = stack.api.request("POST", "/v1/webhooks", write, {"url": url})
    assert status == 400, refused
    (problem,) = refused["error"]["fields"]
    assert problem["field"] == "url" and reason in problem["reason"], problem
    # A public https URL is accepted under the same rule.
    _ = stack.api.request("POST", "/v1/webhooks", write, {"url": "https://hooks.example.com/x"})
    assert _[0] == 201, _
    listed = stack.api.request("GET", "/v1/webhooks", write)[1]["webhooks"]
    assert [hook["url"] for hook in listed] == ["https://hooks.example.com/x"]


def test_bad_bodies_are_refused_naming_the_field(stack: InProcessStack) -> None:
    write, _ = _account(stack)
    for body, field in [
        ({}, "url"),
        ({"url": "http://localhost:9/x", "goal_ids": "g1"}, "goal_ids"),
        ({"url": "http://localhost:9/x", "extra": 1}, "extra"),
        ({"url": "http://localhost:9/x", "goal_ids": ["a#b"]}, "goal_ids[0]"),
    ]:
        status, refused = stack.api.request("POST", "/v1/webhooks", write, body)
        assert status == 400, refused
        assert field in [f["field"] for f in refused["error"]["fields"]], refused
    assert stack.api.request("GET", "/v1/webhooks", write)[1] == {"webhooks": []}


# --- delivery ---------------------------------------------------------------------------


def test_counted_conversions_arrive_signed_once_void_ones_never(
    stack: InProcessStack, receiver: Receiver
) -> None:
    write, _ = _account(stack)
    (goal_id,) = stack.add_goals(write, [THANKS])
    (other_goal,) = stack.add_goals(write, [THANKS | {"name": "Other"}])
    hook = _subscribe(stack, write, receiver, goal_ids=[goal_id])
    attribution = {"source": "google", "medium": "cpc", "campaign": "winter"}
    events = _views(3, contact_id="ct-1", visit_id="s-1", attribution=attribution)
    events.append(_views(1)[0] | {"event_id": "e-again"})  # v-0 again: void
    stack.send(write, events)
    stack.deliver_pending()

    assert receiver.rejected == 0 and receiver.duplicates == 0
    arrived = receiver.received
    assert len(arrived) == 3, [r.event for r in arrived]
    first = next(r.event for r in arrived if r.event["data"]["event_id"] == "e-0")
    assert first["type"] == "conversion.counted"
    data = first["data"]
    assert data["goal_id"] == goal_id and data["goal_name"] == "Thank-you page"
    assert (data["visitor_id"], data["visit_id"], data["contact_id"]) == ("v-0", "s-1", "ct-1")
    assert data["attribution"]["campaign"] == "winter" and data["occurred_at"]
    assert {"conversion_id", "value", "currency"} <= data.keys()
    assert other_goal not in {r.event["data"]["goal_id"] for r in arrived}  # the filter
    log = _deliveries(stack, write, hook["webhook_id"])
    assert sorted(d["status"] for d in log) == ["delivered"] * 3
    assert {d["message_id"] for d in log} == {r.message_id for r in arrived}
    assert all(d["attempts"] == 1 and d["last_response_code"] == 200 for d in log)


def test_replayed_stream_batches_send_nothing_twice_and_publish_once(
    stack: InProcessStack, receiver: Receiver
) -> None:
    # The event bus, as an AWS-native automation would hear it: a rule into a queue.
    queue = stack.sqs.create_queue(QueueName="bus-listener")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    bus = stack.messaging.buses["EventBus"]
    stack.events.put_rule(
        Name="counted",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["goalkeeper"], "detail-type": ["Conversion Counted"]}),
    )
    stack.events.put_targets(
        Rule="counted",
        EventBusName=bus,
        Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
    )
    write, _ = _account(stack)
    stack.add_goals(write, [THANKS])
    _subscribe(stack, write, receiver)
    stack.send(write, _views(5))
    stack.deliver_pending()
    assert len(receiver.received) == 5

    # The whole stream again, twice, as after a lost checkpoint: nothing new goes out.
    subscription = replace(stream_subscription(load_template(), "NotifyFunction"))
    for _ in range(2):
        replay = StreamPoller(
            stack.streams_client,
            stack.stream_arn,
            subscription,
            stack.pollers["NotifyFunction"].function,
            stack.dead_letters.with_name("replay.jsonl"),
        )
        while replay.poll_once():
            pass
    stack.deliver_pending()
    assert (len(receiver.received), receiver.duplicates, receiver.requests) == (5, 0, 5)

    heard = []
    while batch := stack.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        heard += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            stack.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    assert len(heard) == 5
    assert {e["source"] for e in heard} == {"goalkeeper"}
    assert {e["detail-type"] for e in heard} == {"Conversion Counted"}
    assert {e["detail"]["event_id"] for e in heard} == {f"e-{i}" for i in range(5)}


def test_a_receiver_down_for_a_while_gets_every_conversion_once_it_is_back(
    stack: InProcessStack, receiver: Receiver
) -> None:
    write, _ = _account(stack)
    stack.add_goals(write, [THANKS])
    hook = _subscribe(stack, write, receiver)
    receiver.answer = 503
    stack.send(write, _views(6))
    stack.evaluate_pending()
    stack.notify_pending()
    for _ in range(2):  # two rounds of failed attempts, a second apart
        while stack.delivery_poller.poll_once():
            pass
        time.sleep(1.05)
    assert receiver.requests >= 12 and not receiver.received  # 6 first attempts, 6 retries
    waiting = _deliveries(stack, write, hook["webhook_id"])
    assert {d["status"] for d in waiting} <= {"pending", "sending"}
    assert all(d["last_response_code"] == 503 and d["next_attempt_at"] for d in waiting)
    receiver.answer = 200
    stack.deliver_pending()
    assert len(receiver.received) == 6 and receiver.duplicates == 0
    assert len({r.message_id for r in receiver.received}) == 6
    log = _deliveries(stack, write, hook["webhook_id"])
    assert {d["status"] for d in log} == {"delivered"}
    assert min(d["attempts"] for d in log) >= 2


def test_410_disables_the_webhook(stack: InProcessStack, receiver: Receiver) -> None:
    write, _ = _account(stack)
    stack.add_goals(write, [THANKS])
    hook = _subscribe(stack, write, receiver)
    receiver.answer = 410
    stack.send(write, _views(1))
    stack.deliver_pending()
    assert receiver.requests == 1
    (listed,) = stack.api.request("GET", "/v1/webhooks", write)[1]["webhooks"]
    assert listed["status"] == "disabled" and "410" in listed["disabled_reason"]
    (delivery,) = _deliveries(stack, write, hook["webhook_id"])
    assert (delivery["status"], delivery["last_response_code"]) == ("cancelled", 410)
    receiver.answer = 200
    stack.send(write, _views(2, start=1))
    stack.deliver_pending()
    assert receiver.requests == 1  # nothing more goes to a disabled webhook


def test_a_delivery_dies_after_its_window_and_the_retry_route_sends_it_again(
    stack: InProcessStack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from goalkeeper.settings import get_settings

    monkeypatch.setenv("GOALKEEPER_WEBHOOK_RETRY_WINDOW_SECONDS", "1.5")
    get_settings.cache_clear()
    write, _ = _account(stack)
    stack.add_goals(write, [THANKS])
    hook = _subscribe(stack, write, receiver)
    receiver.answer = 500
    stack.send(write, _views(1))
    stack.deliver_pending()
    (dead,) = _deliveries(stack, write, hook["webhook_id"])
    assert dead["status"] == "dead" and dead["next_attempt_at"] is None
    assert dead["attempts"] == receiver.requests >= 2

    path = f"/v1/webhooks/{hook['webhook_id']}/deliveries/{dead['delivery_id']}/retry"
    receiver.answer = 200
    status, retried = stack.api.request("POST", path, write)
    assert (status, retried["status"]) == (202, "pending"), retried
    assert stack.api.request("POST", path, write)[0] == 409  # already being retried
    stack.deliver_pending()
    (redelivered,) = receiver.received
    assert redelivered.message_id == dead["message_id"]  # the same webhook-id
    (done,) = _deliveries(stack, write, hook["webhook_id"])
    assert (done["status"], done["attempts"]) == ("delivered", dead["attempts"] + 1)
    # Once delivered it can be sent again on request; the receiver de-duplicates it.
    assert stack.api.request("POST", path, write)[0] == 202
    stack.deliver_pending()
    assert (len(receiver.received), receiver.duplicates) == (1, 1)
    bad = f"/v1/webhooks/{hook['webhook_id']}/deliveries/nope/retry"
    assert stack.api.request("POST", bad, write)[0] == 404


def test_the_automation_halts_the_sequence_and_starts_the_next(stack: InProcessStack) -> None:
    """A contact on a queued three-email sequence reaches a "tags ALL" goal; the webhook
    arrives, and the email tool halts the remaining emails and starts the next sequence."""
    tool = Automation({"Webinar lead": "onboarding"})
    try:
        tool.enrol("ct-42", "nurture", ["nurture-1", "nurture-2", "nurture-3"])
        assert tool.send_next("ct-42") == "nurture-1"
        write, _ = _account(stack)
        stack.add_goals(
            write,
            [
                {
                    "name": "Webinar lead",
                    "rule": {"kind": "tags", "tags": ["lead", "webinar"], "match": "all"},
                }
            ],
        )
        _subscribe(stack, write, tool)
        tag = {"type": "tag", "visitor_id": "v-42", "contact_id": "ct-42"}
        stack.send(write, [tag | {"added": ["lead"]}], per_request=1)
        stack.deliver_pending()
        assert tool.received == [] and tool.queued["ct-42"] == ["nurture-2", "nurture-3"]
        stack.send(write, [tag | {"added": ["webinar"]}], per_request=1)
        stack.deliver_pending()
        (arrived,) = tool.received
        assert arrived.event["data"]["contact_id"] == "ct-42"
        assert tool.halted["ct-42"] == ["nurture-2", "nurture-3"]
        assert tool.sequence["ct-42"] == "onboarding"
        assert tool.send_next("ct-42") == "onboarding-1"
    finally:
        tool.close()


def test_a_burst_of_conversions_is_all_delivered(stack: InProcessStack, receiver: Receiver) -> None:
    write, _ = _account(stack)
    stack.add_goals(write, [THANKS])
    _subscribe(stack, write, receiver)
    stack.send(write, _views(BURST))
    stack.deliver_pending(timeout=120)
    assert len(receiver.received) == BURST
    assert (receiver.duplicates, receiver.rejected) == (0, 0)
