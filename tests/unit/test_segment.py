"""Segment's HTTP Tracking API read as our events (goalkeeper.segment): each kind of
message, ids, campaigns, times, and every refusal naming the Segment field."""

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from goalkeeper.auth import basic_auth_user
from goalkeeper.errors import InvalidInput
from goalkeeper.segment import events_from

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TRACK = {"type": "track", "anonymousId": "anon-1", "event": "Signed Up", "messageId": "m-1"}
PAGE = {"type": "page", "anonymousId": "anon-1", "properties": {"url": "https://shop.example/a"}}
CAMPAIGN = {"name": "winter", "source": "google", "medium": "cpc", "term": "boots", "content": "x"}


def _events(body: dict[str, Any], route_type: str | None = None) -> list[dict[str, Any]]:
    return [
        event.model_dump(mode="json", exclude_none=True)
        for batch in events_from(body, route_type, NOW)
        for event in batch.events
    ]


def _one(message: dict[str, Any]) -> dict[str, Any]:
    (event,) = _events({"batch": [message]})
    return event


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            TRACK | {"userId": 42, "properties": {"plan": "pro", "seats": 3}},
            {
                "type": "custom_trigger",
                "event_id": "m-1",
                "visitor_id": "anon-1",
                "contact_id": "42",
                "name": "Signed Up",
                "fields": {"plan": "pro", "seats": 3},
            },
        ),
        (  # nested properties flattened; what a field cannot hold left out
            TRACK
            | {
                "properties": {
                    "address": {"city": "Oslo", "geo": {"lat": Decimal("59.9")}},
                    "products": [{"sku": "a"}],
                    "note": "n" * 1025,
                    "n" * 129: 1,
                    "empty": None,
                }
            },
            {"fields": {"address.city": "Oslo", "address.geo.lat": "59.9", "empty": None}},
        ),
        (  # any track with revenue carries it as its transaction
            TRACK | {"properties": {"revenue": "9.5", "currency": "EUR", "order_id": 7}},
            {
                "fields": {"revenue": "9.5", "currency": "EUR", "order_id": 7},
                "transaction": {"value": "9.5", "currency": "EUR", "reference": "7"},
            },
        ),
        (
            TRACK | {"event": "Order Completed", "properties": {"total": 30, "order_id": "o-1"}},
            {
                "type": "transaction",
                "transaction": {"value": "30", "currency": "USD", "reference": "o-1"},
            },
        ),
        (  # no amount: an Order Completed without money is a trigger like any other
            TRACK | {"event": "Order Completed", "properties": {"order_id": "o-1"}},
            {"type": "custom_trigger", "name": "Order Completed", "fields": {"order_id": "o-1"}},
        ),
        (
            PAGE
            | {
                "properties": {"url": "https://shop.example/a", "title": "", "referrer": ""},
                "context": {"page": {"title": "A", "referrer": "https://google.com/"}},
            },
            {
                "type": "page_view",
                "url": "https://shop.example/a",
                "title": "A",
                "referrer": "https://google.com/",
            },
        ),
        (  # analytics.js puts the page in context.page
            {
                "type": "page",
                "anonymousId": "anon-1",
                "context": {"page": {"url": "https://shop.example/b?gclid=G1", "referrer": ""}},
                "properties": {},
            },
            {"type": "page_view", "url": "https://shop.example/b?gclid=G1"},
        ),
        (
            TRACK
            | {"context": {"campaign": CAMPAIGN, "page": {"url": "https://s.example/?gclid=G"}}},
            {
                "attribution": {
                    "campaign": "winter",
                    "source": "google",
                    "medium": "cpc",
                    "keyword": "boots",
                    "click_id": "G",
                }
            },
        ),
        (
            {"type": "identify", "userId": "u-1", "anonymousId": "anon-1", "traits": {"e": "a@b"}},
            {"type": "custom_trigger", "name": "identify", "contact_id": "u-1", "fields": {}},
        ),
        (
            TRACK | {"messageId": "has space#and hash"},
            {"event_id": "sm-" + hashlib.sha256(b"has space#and hash").hexdigest()[:40]},
        ),
        (
            TRACK | {"timestamp": "2026-11-19T10:00:00+01:00"},
            {"occurred_at": "2026-11-19T09:00:00Z"},
        ),
        (  # the client's clock 5 minutes ahead: Segment moves it by sentAt's skew
            TRACK
            | {
                "originalTimestamp": "2026-11-20T12:04:00Z",
                "sentAt": "2026-11-20T12:05:00Z",
            },
            {"occurred_at": "2026-11-20T11:59:00Z"},
        ),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else None,
)
def test_messages_become_events(message: dict[str, Any], expected: dict[str, Any]) -> None:
    event = _one(message)
    assert {name: event.get(name) for name in expected} == expected


def test_a_message_without_a_message_id_gets_a_derived_id_at_ingestion() -> None:
    assert "event_id" not in _one({"type": "track", "userId": "u", "event": "E"})


def test_a_batchs_context_and_sent_at_apply_to_each_message() -> None:
    body = {
        "batch": [
            TRACK | {"originalTimestamp": "2026-11-20T11:00:00Z"},
            TRACK | {"messageId": "m-2", "context": {"campaign": {"name": "own"}}},
        ],
        "context": {"campaign": {"name": "shared", "source": "news"}},
        "sentAt": "2026-11-20T11:00:10Z",
        "writeKey": "never used to authenticate",
    }
    first, second = _events(body)
    assert first["attribution"] == {"campaign": "shared", "source": "news"}
    assert first["occurred_at"] == (NOW - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert second["attribution"] == {"campaign": "own"}


def test_single_message_routes_take_their_type_from_the_route() -> None:
    assert _events(TRACK | {"type": "page"}, "track")[0]["type"] == "custom_trigger"
    assert _events(PAGE, "page")[0]["type"] == "page_view"


def test_messages_goalkeeper_does_not_store_are_accepted_and_dropped() -> None:
    skipped = [{"type": kind, "userId": "u"} for kind in ("screen", "group", "alias")]
    assert events_from({"batch": skipped}, None, NOW) == []
    assert events_from({"batch": []}, None, NOW) == []


def test_a_large_batch_is_split_into_batches_of_100() -> None:
    body = {"batch": [TRACK | {"messageId": f"m-{i}"} for i in range(250)]}
    assert [len(batch.events) for batch in events_from(body, None, NOW)] == [100, 100, 50]


@pytest.mark.parametrize(
    ("body", "route_type", "field", "reason"),
    [
        ({}, None, "batch", "is required"),
        ({"batch": {}}, None, "batch", "must be a list"),
        ({"batch": ["x"]}, None, "batch[0]", "must be a JSON object"),
        ({"batch": [TRACK | {"type": "screenview"}]}, None, "batch[0].type", "not one of"),
        ({"batch": [{"type": "track", "event": "E"}]}, None, "batch[0].userId", "anonymousId"),
        ({"batch": [TRACK | {"event": ""}]}, None, "batch[0].event", "is required"),
        (
            {"batch": [TRACK, PAGE | {"properties": {}}]},
            None,
            "batch[1].properties.url",
            "required",
        ),
        ({"batch": [TRACK | {"anonymousId": "a/b"}]}, None, "batch[0].anonymousId", "'/'"),
        ({"batch": [TRACK | {"userId": "has space"}]}, None, "batch[0].userId", "pattern"),
        ({"batch": [TRACK | {"properties": {"p": "x" * 33000}}]}, None, "batch[0]", "32 KB"),
        (
            {"batch": [TRACK | {"event": "Order Completed", "properties": {"revenue": -1}}]},
            None,
            "batch[0].properties.revenue",
            "greater than or equal to 0",
        ),
        (
            {"batch": [TRACK | {"properties": {"revenue": 1, "currency": "XXY"}}]},
            None,
            "batch[0].properties.currency",
            "ISO 4217",
        ),
        (
            {"batch": [TRACK | {"context": {"campaign": {"name": "n" * 300}}}]},
            None,
            "batch[0].context.campaign.name",
            "256",
        ),
        ({"batch": [TRACK | {"timestamp": "yesterday"}]}, None, "batch[0].timestamp", "datetime"),
        (
            {"batch": [TRACK | {"originalTimestamp": "2026-11-20T12:00:00"}]},
            None,
            "batch[0].originalTimestamp",
            "time zone",
        ),
        (
            {"batch": [TRACK | {"originalTimestamp": "2026-11-20T12:00:00Z", "sentAt": 5}]},
            None,
            "batch[0].sentAt",
            "ISO 8601",
        ),
        (
            TRACK | {"originalTimestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59Z"},
            "track",
            "originalTimestamp",
            "too far from sentAt",
        ),
        (TRACK | {"properties": {"big": Decimal("1E200")}}, "track", "properties.big", "1E126"),
        ({"anonymousId": "a", "properties": {}}, "page", "properties.url", "context.page.url"),
    ],
)
def test_refusals_name_the_segment_field(
    body: dict[str, Any], route_type: str | None, field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        events_from(body, route_type, NOW)
    problems = {problem.field: problem.reason for problem in refused.value.fields}
    assert field in problems, problems
    assert reason in problems[field]


@pytest.mark.parametrize(
    ("header", "user"),
    [
        ("Basic d2tfMTIzOg==", "wk_123"),  # "wk_123:", as segment-analytics-python sends
        ("basic d2tfMTIzOnNlY3JldA==", "wk_123"),
        ("Bearer d2tfMTIzOg==", None),
        ("Basic not-base64!", None),
        ("Basic Og==", None),  # ":" — no user
        (None, None),
    ],
)
def test_the_basic_user_is_the_key(header: str | None, user: str | None) -> None:
    assert basic_auth_user(header) == user
