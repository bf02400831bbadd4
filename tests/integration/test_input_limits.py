"""Hardened input (an invariant every change keeps): every rejection is a 4xx naming
the field as the client wrote it (events[0].transaction.currency) with a reason, and
stores nothing.

Unknown fields are refused everywhere (one rule, in the README), a batch with one
bad event is refused whole, and a single event is named as a batch of one
(events[0]...).
"""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.stack import ADMIN_KEY, InProcessStack

CALL = {"type": "call", "call_id": "c-1", "connected": True, "bridged_seconds": 61}
SALE = {"type": "transaction", "transaction": {"value": "10.00", "currency": "EUR"}}
TRIGGER = {"type": "custom_trigger", "name": "signup"}
RATING = {"type": "call_rating", "call_id": "c-1", "rating": "good"}
PAGE = {"type": "page_view", "url": "https://shop.example/"}
TAG = {"type": "tag", "contact_id": "ct-1", "added": ["vip"]}


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def _with(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `event` with the dotted `path` set to `value`."""
    copy = json.loads(json.dumps(event))
    *parents, last = path.split(".")
    target = copy
    for name in parents:
        target = target.setdefault(name, {})
    target[last] = value
    return copy


# (case id, request body, field named, words of the reason)
EVENT_REJECTIONS: list[tuple[str, Any, str, str]] = [
    # string lengths and shapes
    ("id too long", CALL | {"visitor_id": "v" * 129}, "events[0].visitor_id", "at most 128"),
    ("id with #", CALL | {"visitor_id": "a#b"}, "events[0].visitor_id", "pattern"),
    ("id empty", CALL | {"event_id": ""}, "events[0].event_id", "at least 1"),
    ("id with space", CALL | {"event_id": "a b"}, "events[0].event_id", "pattern"),
    ("url too long", PAGE | {"url": "https://x/" + "a" * 2040}, "events[0].url", "2048"),
    ("title too long", PAGE | {"title": "t" * 257}, "events[0].title", "256"),
    (
        "campaign too long",
        _with(PAGE, "attribution.campaign", "c" * 257),
        "events[0].attribution.campaign",
        "256",
    ),
    ("trigger name too long", TRIGGER | {"name": "n" * 257}, "events[0].name", "256"),
    (
        "field name too long",
        TRIGGER | {"fields": {"f" * 129: 1}},
        f"events[0].fields.{'f' * 129}",
        "128",
    ),
    (
        "field value too long",
        TRIGGER | {"fields": {"note": "x" * 1025}},
        "events[0].fields.note",
        "1024",
    ),
    (
        "too many fields",
        TRIGGER | {"fields": {f"f{n}": n for n in range(101)}},
        "events[0].fields",
        "100",
    ),
    ("tag too long", TAG | {"added": ["t" * 129]}, "events[0].added[0]", "128"),
    ("too many tags", TAG | {"added": [f"t{n}" for n in range(101)]}, "events[0].added", "100"),
    ("no tag change", TAG | {"added": []}, "events[0]", "add or remove"),
    # number ranges
    (
        "negative seconds",
        CALL | {"bridged_seconds": -1},
        "events[0].bridged_seconds",
        "greater than or equal to 0",
    ),
    ("over a week", CALL | {"bridged_seconds": 604801}, "events[0].bridged_seconds", "604800"),
    ("fractional seconds", CALL | {"bridged_seconds": 1.5}, "events[0].bridged_seconds", "integer"),
    (
        "bridged not connected",
        CALL | {"connected": False},
        "events[0].bridged_seconds",
        "connected is false",
    ),
    (
        "negative value",
        _with(SALE, "transaction.value", -1),
        "events[0].transaction.value",
        "greater than or equal to 0",
    ),
    (
        "value too large",
        _with(SALE, "transaction.value", "1000000000001"),
        "events[0].transaction.value",
        "12 digits",
    ),
    (
        "value too precise",
        _with(SALE, "transaction.value", "1.1234567"),
        "events[0].transaction.value",
        "decimal places",
    ),
    (
        "value not a number",
        _with(SALE, "transaction.value", "NaN"),
        "events[0].transaction.value",
        "finite",
    ),
    # occurred_at bounds
    (
        "before 2000",
        CALL | {"occurred_at": "1999-12-31T23:59:59Z"},
        "events[0].occurred_at",
        "2000",
    ),
    (
        "two days ahead",
        CALL | {"occurred_at": _at(timedelta(days=2))},
        "events[0].occurred_at",
        "future",
    ),
    ("no zone", CALL | {"occurred_at": "2026-01-01T10:00:00"}, "events[0].occurred_at", "timezone"),
    ("not a time", CALL | {"occurred_at": "yesterday"}, "events[0].occurred_at", "datetime"),
    # currencies
    (
        "lowercase currency",
        _with(SALE, "transaction.currency", "eur"),
        "events[0].transaction.currency",
        "ISO 4217",
    ),
    (
        "unknown currency",
        _with(SALE, "transaction.currency", "ABC"),
        "events[0].transaction.currency",
        "ISO 4217",
    ),
    (
        "long currency",
        _with(SALE, "transaction.currency", "EURO"),
        "events[0].transaction.currency",
        "3",
    ),
    (
        "missing currency",
        {"type": "transaction", "transaction": {"value": 5}},
        "events[0].transaction.currency",
        "required",
    ),
    ("rating value alone", RATING | {"value": 5}, "events[0].currency", "required when value"),
    (
        "rating currency alone",
        RATING | {"currency": "EUR"},
        "events[0].currency",
        "only goes with a value",
    ),
    ("rating currency bad", RATING | {"value": 5, "currency": "XXXX"}, "events[0].currency", "3"),
    # phone numbers
    (
        "national number",
        CALL | {"caller_number": "020 7123 4567"},
        "events[0].caller_number",
        "international",
    ),
    (
        "leading zero country",
        CALL | {"caller_number": "+0207123456"},
        "events[0].caller_number",
        "international",
    ),
    ("too short", CALL | {"caller_number": "+123456"}, "events[0].caller_number", "international"),
    (
        "too many digits",
        CALL | {"caller_number": "+1234567890123456"},
        "events[0].caller_number",
        "international",
    ),
    (
        "letters",
        CALL | {"caller_number": "+44 20 CALL NOW"},
        "events[0].caller_number",
        "international",
    ),
    (
        "extension",
        CALL | {"caller_number": "+44 20 7123 4567 ext 2"},
        "events[0].caller_number",
        "international",
    ),
    (
        "overlong text",
        CALL | {"caller_number": "+44" + " " * 40 + "2071234567"},
        "events[0].caller_number",
        "32",
    ),
    (
        "bad tracking number",
        CALL | {"tracking_number": "12345"},
        "events[0].tracking_number",
        "international",
    ),
    # unknown fields, at every depth
    ("unknown field", CALL | {"colour": "red"}, "events[0].colour", "unknown field"),
    (
        "unknown nested",
        _with(PAGE, "attribution.utm_source", "x"),
        "events[0].attribution.utm_source",
        "unknown field",
    ),
    (
        "unknown in money",
        _with(SALE, "transaction.tax", 1),
        "events[0].transaction.tax",
        "unknown field",
    ),
    ("unknown beside batch", {"events": [CALL], "source": "x"}, "source", "unknown field"),
    (
        "stored form from client",
        CALL | {"caller_hash": "0" * 64},
        "events[0].caller_hash",
        "unknown field",
    ),
    # wrong JSON types
    ("id a number", CALL | {"visitor_id": 123}, "events[0].visitor_id", "string"),
    ("connected a word", CALL | {"connected": "maybe"}, "events[0].connected", "boolean"),
    ("seconds a word", CALL | {"bridged_seconds": "long"}, "events[0].bridged_seconds", "integer"),
    (
        "attribution a string",
        PAGE | {"attribution": "google"},
        "events[0].attribution",
        "JSON object",
    ),
    ("tags a string", TAG | {"added": "vip"}, "events[0].added", "list"),
    (
        "field value an object",
        TRIGGER | {"fields": {"k": {"a": 1}}},
        "events[0].fields.k",
        "string",
    ),
    ("events an object", {"events": {}}, "events", "list"),
    ("body a list", [CALL], "body", "JSON object"),
    ("body a string", "call", "body", "JSON object"),
    # the event type (the union's discriminator)
    ("unknown type", CALL | {"type": "purchase"}, "events[0].type", "is not one of"),
    ("missing type", {"call_id": "c-1"}, "events[0].type", "required"),
    (
        "missing field of type",
        {"type": "call", "call_id": "c-1"},
        "events[0].connected",
        "required",
    ),
    # batches
    (
        "batch of 101",
        {"events": [CALL | {"event_id": f"e-{n}"} for n in range(101)]},
        "events",
        "100",
    ),
    ("empty batch", {"events": []}, "events", "at least 1"),
    (
        "third event bad",
        {"events": [CALL, PAGE, _with(SALE, "transaction.currency", "usd")]},
        "events[2].transaction.currency",
        "ISO 4217",
    ),
]

RAW_REJECTIONS: list[tuple[str, str, str, str]] = [
    ("truncated JSON", '{"type": "call",', "body", "not valid JSON"),
    ("not JSON", "type=call", "body", "not valid JSON"),
    ("trailing garbage", '{"type": "call"} x', "body", "not valid JSON"),
    ("empty body", "", "body", "required"),
]


def _event_items(stack: InProcessStack) -> list[dict[str, Any]]:
    return [item for item in stack.items() if item.get("kind") == "event"]


def _assert_rejected(answer: Any, field: str, reason: str) -> None:
    problems = answer["error"]["fields"]
    assert answer["error"]["code"] == "invalid_request"
    named = [p for p in problems if p["field"] == field]
    assert named, f"expected {field!r} in {problems}"
    assert any(reason.lower() in p["reason"].lower() for p in named), problems
    assert all(p["reason"] for p in problems)


@pytest.fixture
def write_key(stack: InProcessStack) -> str:
    return stack.new_account()["keys"]["write"]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [case[1:] for case in EVENT_REJECTIONS],
    ids=[case[0] for case in EVENT_REJECTIONS],
)
def test_bad_events_are_refused_naming_the_field(
    stack: InProcessStack, write_key: str, body: Any, field: str, reason: str
) -> None:
    status, answer = stack.api.request("POST", "/v1/events", write_key, body)
    assert status == 400, answer
    _assert_rejected(answer, field, reason)
    assert _event_items(stack) == []


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [case[1:] for case in RAW_REJECTIONS],
    ids=[case[0] for case in RAW_REJECTIONS],
)
def test_bodies_that_are_not_json_are_refused(
    stack: InProcessStack, write_key: str, raw: str, field: str, reason: str
) -> None:
    status, answer = stack.api.request("POST", "/v1/events", write_key, raw=raw)
    assert status == 400, answer
    _assert_rejected(answer, field, reason)
    assert _event_items(stack) == []


def test_an_oversized_batch_of_valid_events_is_413(stack: InProcessStack, write_key: str) -> None:
    long = "https://x/" + "a" * 2030
    events = [PAGE | {"event_id": f"e-{n}", "url": long, "referrer": long} for n in range(100)]
    status, answer = stack.api.request("POST", "/v1/events", write_key, {"events": events})
    assert status == 413
    assert answer["error"]["fields"][0]["field"] == "body"
    assert _event_items(stack) == []


@pytest.mark.parametrize(
    ("number", "stored_tracking"),
    [
        ("+44 20 7946 0000", "+442079460000"),
        ("0044 20 7946 0000", "+442079460000"),
        ("+1 (555) 010-9999", "+15550109999"),
        ("+44.20.7946.0000", "+442079460000"),
        ("+49/30/1234567", "+49301234567"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(
    stack: InProcessStack, write_key: str, number: str, stored_tracking: str
) -> None:
    body = CALL | {"tracking_number": number, "caller_number": number}
    status, answer = stack.api.request("POST", "/v1/events", write_key, body)
    assert status == 202, answer
    (item,) = _event_items(stack)
    assert item["body"]["tracking_number"] == stored_tracking
    masked = item["body"]["caller_masked"]
    assert (masked[:3], masked[-3:]) == (stored_tracking[:3], stored_tracking[-3:])


@pytest.mark.parametrize(
    "occurred_at",
    ["2000-01-01T00:00:00Z", "2026-06-01T12:00:00+02:00", _at(timedelta(hours=23))],
    ids=["the earliest", "with an offset", "23 hours ahead"],
)
def test_times_within_the_bounds_are_accepted(
    stack: InProcessStack, write_key: str, occurred_at: str
) -> None:
    status, answer = stack.api.request(
        "POST", "/v1/events", write_key, CALL | {"occurred_at": occurred_at}
    )
    assert status == 202, answer


def test_a_batch_of_100_is_accepted(stack: InProcessStack, write_key: str) -> None:
    events = [CALL | {"event_id": f"e-{n}"} for n in range(100)]
    status, answer = stack.api.request("POST", "/v1/events", write_key, {"events": events})
    assert status == 202, answer
    assert len(answer["accepted"]) == 100


GOAL = {"name": "Sale", "rule": {"kind": "transaction", "min_value": 100}}
GOAL_REJECTIONS: list[tuple[str, Any, str, str]] = [
    ("name too long", GOAL | {"name": "n" * 257}, "name", "256"),
    ("unknown rule kind", GOAL | {"rule": {"kind": "sale"}}, "rule.kind", "is not one of"),
    ("missing rule kind", GOAL | {"rule": {"min_value": 1}}, "rule.kind", "required"),
    ("unknown rule field", _with(GOAL, "rule.colour", "red"), "rule.colour", "unknown field"),
    (
        "negative threshold",
        _with(GOAL, "rule.min_value", -5),
        "rule.min_value",
        "greater than or equal to 0",
    ),
    ("bad rule currency", _with(GOAL, "rule.currency", "eur"), "rule.currency", "ISO 4217"),
    (
        "bad value currency",
        GOAL | {"value": {"type": "fixed", "amount": 5, "currency": "EURO"}},
        "value.currency",
        "3",
    ),
    ("unknown value type", GOAL | {"value": {"type": "double"}}, "value.type", "is not one of"),
    ("unknown dedup key", GOAL | {"dedup": {"keys": ["colour"]}}, "dedup.keys[0]", "visitor"),
    (
        "condition value an object",
        {
            "name": "Signup",
            "rule": {
                "kind": "custom_trigger",
                "name": "signup",
                "conditions": [{"field": "plan", "op": "eq", "value": {"a": 1}}],
            },
        },
        "rule.conditions[0].value",
        "string",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [case[1:] for case in GOAL_REJECTIONS],
    ids=[case[0] for case in GOAL_REJECTIONS],
)
def test_bad_goals_are_refused_naming_the_field(
    stack: InProcessStack, write_key: str, body: Any, field: str, reason: str
) -> None:
    before = len(stack.items())
    status, answer = stack.api.request("POST", "/v1/goals", write_key, body)
    assert status == 400, answer
    _assert_rejected(answer, field, reason)
    assert len(stack.items()) == before


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone", "IANA"),
        ({"name": "n" * 257}, "name", "256"),
        ({"account_id": "acc_mine"}, "account_id", "unknown field"),
        ({"keys": {"write": "gk_write_x"}}, "keys", "unknown field"),
    ],
)
def test_bad_account_requests_are_refused(
    stack: InProcessStack, body: Any, field: str, reason: str
) -> None:
    status, answer = stack.api.request("POST", "/v1/accounts", ADMIN_KEY, body)
    assert status == 400, answer
    _assert_rejected(answer, field, reason)
    assert stack.items() == []


def test_a_json_array_is_refused_not_cut_to_its_first_event(
    stack: InProcessStack, write_key: str
) -> None:
    # Powertools would validate the first element only and drop the rest.
    status, answer = stack.api.request("POST", "/v1/events", write_key, [CALL, PAGE])
    assert status == 400, answer
    assert answer["error"]["fields"] == [
        {"field": "body", "reason": "must be a JSON object, not an array"}
    ]
    assert _event_items(stack) == []
