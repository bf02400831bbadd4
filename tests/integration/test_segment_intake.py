"""Segment's HTTP Tracking API in process (POST /segment/v1/...): the write key as HTTP
Basic user, Segment's answers, its limits, batches over 100 messages, idempotent
redelivery, and the events reaching goals and the visitor trace."""

import base64
import json
from typing import Any

from support.stack import InProcessStack

GOALS = [
    {"name": "Thank you", "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"}},
    {"name": "Sale", "rule": {"kind": "transaction", "min_value": "10"}},
    {"name": "Signed up", "rule": {"kind": "custom_trigger", "name": "Signed Up"}},
]
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}
WINTER = {"name": "winter", "source": "google", "medium": "cpc", "term": "boots"}


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def _post(
    stack: InProcessStack, path: str, key: str, body: Any, raw: str | None = None
) -> tuple[int, Any]:
    response = stack.api.response("POST", path, body=body, raw=raw, headers=_basic(key))
    return response.status_code, response.get_json()


def _journey(visitor: str) -> list[dict[str, Any]]:
    def message(n: int, at: str, **more: Any) -> dict[str, Any]:
        return {"messageId": f"{visitor}-{n}", "anonymousId": visitor, "timestamp": at} | more

    return [
        message(
            1,
            "2026-11-10T09:00:00Z",
            type="page",
            context={"campaign": WINTER},
            properties={"url": "https://shop.example/boots?utm_campaign=winter", "title": ""},
        ),
        message(2, "2026-11-10T09:01:00Z", type="identify", userId=f"{visitor}-contact"),
        message(3, "2026-11-10T09:02:00Z", type="track", event="Signed Up", properties={"p": 1}),
        message(
            4,
            "2026-11-10T09:03:00Z",
            type="track",
            event="Order Completed",
            properties={"order_id": "o-1", "revenue": 25.5, "currency": "EUR"},
        ),
        message(
            5,
            "2026-11-10T09:04:00Z",
            type="page",
            context={"page": {"url": "https://shop.example/thank-you", "referrer": ""}},
        ),
        message(6, "2026-11-10T09:05:00Z", type="screen", name="Home"),
    ]


def test_a_segment_batch_reaches_goals_and_the_trace(stack: InProcessStack) -> None:
    account = stack.new_account(name="Acme")
    write, read = account["keys"]["write"], account["keys"]["read"]
    goal_ids = stack.add_goals(write, GOALS)
    body = {"batch": _journey("anon-1"), "sentAt": "2026-11-10T09:06:00Z", "writeKey": write}
    assert _post(stack, "/segment/v1/batch", write, body) == (200, {"success": True})
    # A redelivery (Segment's clients retry) stores nothing new.
    assert _post(stack, "/segment/v1/batch", write, body) == (200, {"success": True})
    stack.evaluate_pending()

    status, trace = stack.api.request("GET", "/v1/visitors/anon-1/trace", read)
    assert status == 200, trace
    events = [item for item in trace["items"] if item["kind"] == "event"]
    assert [e["event_id"] for e in events] == [f"anon-1-{n}" for n in range(1, 6)]
    assert [e["type"] for e in events] == [
        "page_view",
        "custom_trigger",
        "custom_trigger",
        "transaction",
        "page_view",
    ]
    conversions = [item for item in trace["items"] if item["kind"] == "conversion"]
    assert sorted(c["goal_id"] for c in conversions) == sorted(goal_ids)
    assert {c["status"] for c in conversions} == {"counted"}
    status, report = stack.api.request(
        "GET", "/v1/reports/attribution", read, query=NOVEMBER | {"dimension": "keyword"}
    )
    assert status == 200, report
    assert {row["keyword"] for row in report["rows"]} == {"boots"}, report
    status, goals = stack.api.request("GET", "/v1/reports/goals", read, query=NOVEMBER)
    sale = next(g for g in goals["goals"] if g["name"] == "Sale")
    assert sale["counted"] == 1, sale


def test_single_message_routes(stack: InProcessStack) -> None:
    account = stack.new_account(name="Acme")
    write, read = account["keys"]["write"], account["keys"]["read"]
    sent = {
        "/segment/v1/page": {"anonymousId": "v", "properties": {"url": "https://s.example/"}},
        "/segment/v1/track": {"anonymousId": "v", "event": "Clicked"},
        "/segment/v1/identify": {"anonymousId": "v", "userId": "c-1", "traits": {"x": 1}},
    }
    for path, message in sent.items():
        assert _post(stack, path, write, message) == (200, {"success": True}), path
    status, trace = stack.api.request("GET", "/v1/visitors/v/trace", read)
    assert status == 200, trace
    assert [(i["type"], i.get("name")) for i in trace["items"]] == [
        ("page_view", None),
        ("custom_trigger", "Clicked"),
        ("custom_trigger", "identify"),
    ]


def test_a_batch_over_100_messages_and_over_256_kb_is_taken_whole(stack: InProcessStack) -> None:
    write = stack.new_account(name="Acme")["keys"]["write"]
    padding = {"note": "n" * 1000}
    batch = [
        {"type": "track", "anonymousId": f"v-{i}", "event": "E", "messageId": f"m-{i}"}
        | {"properties": padding | {f"p{j}": "x" * 100 for j in range(10)}}
        for i in range(130)
    ]
    raw = json.dumps({"batch": batch})
    assert 256 * 1024 < len(raw) < 500 * 1024
    assert _post(stack, "/segment/v1/batch", write, None, raw) == (200, {"success": True})
    stored = [item for item in stack.items() if item.get("kind") == "event"]
    assert len(stored) == 130


def test_refusals_store_nothing_and_say_why(stack: InProcessStack) -> None:
    account = stack.new_account(name="Acme")
    write, read = account["keys"]["write"], account["keys"]["read"]
    good = {"type": "track", "anonymousId": "v", "event": "E"}
    too_big = good | {"properties": {"p": "x" * (33 * 1024)}}
    cases = [
        ({"batch": [good, good | {"anonymousId": "a b"}]}, "batch[1].anonymousId"),
        ({"batch": [good, too_big]}, "batch[1]"),
        ({"batch": [good] * 16 + [good | {"properties": {"p": "x" * 32000}}] * 16}, "body"),
    ]
    for body, field in cases:
        status, answer = _post(stack, "/segment/v1/batch", write, body)
        assert status == 400, answer
        assert field in [problem["field"] for problem in answer["error"]["fields"]], answer
    assert not [item for item in stack.items() if item.get("kind") == "event"]

    status, answer = _post(stack, "/segment/v1/batch", read, {"batch": [good]})
    assert (status, answer["error"]["code"]) == (403, "forbidden")
    for headers in ({"Authorization": "Basic Z2tfd3JpdGVfbm9wZTo="}, {}):
        response = stack.api.response("POST", "/segment/v1/track", body=good, headers=headers)
        assert response.status_code == 401, response.get_json()
