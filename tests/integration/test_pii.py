"""Caller numbers are personal data: only a keyed hash (per account) and a masked
form are ever stored; the account's secret never leaves the table."""

from datetime import UTC, datetime
from typing import Any

import pytest

from goalkeeper.models.events import EventBatch
from goalkeeper.pii import caller_hash
from goalkeeper.services.ingest import ingest_events
from support.stack import ADMIN_KEY, InProcessStack

NUMBER = "+442071234567"
OTHER = "+15551234567"
TRACKING = "+442079460000"


def _call(call_id: str, caller: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "call",
        "call_id": call_id,
        "event_id": f"ev-{call_id}",
        "visitor_id": "v-1",
        "caller_number": caller,
        "tracking_number": TRACKING,
        "connected": True,
        "bridged_seconds": 75,
    } | extra


def _send(stack: InProcessStack, key: str, *events: dict[str, Any]) -> dict[str, Any]:
    status, body = stack.api.request("POST", "/v1/events", key, {"events": list(events)})
    assert status == 202, body
    return body


def _stored_bodies(stack: InProcessStack, account_id: str) -> dict[str, dict[str, Any]]:
    return {
        item["body"]["call_id"]: item["body"]
        for item in stack.items()
        if item.get("kind") == "event" and item["account_id"] == account_id
    }


def test_caller_numbers_are_never_stored_in_clear(stack: InProcessStack) -> None:
    a, b = stack.new_account(), stack.new_account()
    # The same person, written three ways, and someone else.
    _send(
        stack,
        a["keys"]["write"],
        _call("a-1", "+44 20 7123 4567"),
        _call("a-2", "0044 (20) 7123-4567"),
        _call("a-3", OTHER),
    )
    _send(stack, b["keys"]["write"], _call("b-1", NUMBER))
    # A call without an event id (derived id) and a call without a caller.
    body = {k: v for k, v in _call("a-4", NUMBER).items() if k != "event_id"}
    _send(stack, a["keys"]["write"], body)
    _send(stack, a["keys"]["write"], {**_call("a-5", NUMBER), "caller_number": None})
    stack.evaluate_pending()

    text = "\n".join(map(str, stack.items()))
    for digits in ("2071234567", "5551234567", "20 7123", "7123-4567"):
        assert digits not in text

    in_a = _stored_bodies(stack, a["account_id"])
    in_b = _stored_bodies(stack, b["account_id"])
    assert in_a["a-1"]["caller_hash"] == in_a["a-2"]["caller_hash"] == in_a["a-4"]["caller_hash"]
    assert in_a["a-3"]["caller_hash"] != in_a["a-1"]["caller_hash"]
    assert in_b["b-1"]["caller_hash"] != in_a["a-1"]["caller_hash"]
    assert in_a["a-1"]["caller_masked"] == "+44*******567"
    assert in_a["a-3"]["caller_masked"] == "+15******567"
    assert "caller_number" not in in_a["a-1"]
    assert "caller_hash" not in in_a["a-5"]
    # The tracking number is the business's own advertised number: kept in clear.
    assert in_a["a-1"]["tracking_number"] == TRACKING


def test_an_identical_retry_without_event_id_is_still_recognised(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    body = {k: v for k, v in _call("c-1", NUMBER).items() if k != "event_id"}
    (first,) = _send(stack, write, body)["accepted"]
    assert _send(stack, write, body | {"caller_number": "+44 20 7123 4567"}) == {
        "accepted": [],
        "duplicates": [first],
    }


@pytest.mark.parametrize("field", ["caller_hash", "caller_masked"])
def test_clients_cannot_set_the_stored_forms(stack: InProcessStack, field: str) -> None:
    write = stack.new_account()["keys"]["write"]
    status, body = stack.api.request(
        "POST", "/v1/events", write, _call("c-1", NUMBER) | {field: "0" * 64}
    )
    assert status == 400
    assert body["error"]["fields"] == [{"field": f"events[0].{field}", "reason": "unknown field"}]
    assert [i for i in stack.items() if i.get("kind") == "event"] == []


def test_the_account_secret_is_never_returned(stack: InProcessStack) -> None:
    account = stack.new_account(name="Acme")
    write, read = account["keys"]["write"], account["keys"]["read"]
    (secret,) = [
        item["pii_key"]
        for item in stack.items()
        if item.get("kind") == "account" and item["account_id"] == account["account_id"]
    ]
    _send(stack, write, _call("c-1", NUMBER))
    stack.evaluate_pending()
    answers = [
        account,
        stack.api.request("POST", "/v1/accounts", ADMIN_KEY, {})[1],
        stack.api.request("GET", "/v1/goals", read)[1],
        stack.api.request("GET", "/v1/keys", write)[1],
        stack.api.request("GET", "/v1/reports/goals", read)[1],
        stack.api.request("GET", "/v1/visitors/v-1/trace", read)[1],
    ]
    assert secret not in str(answers)
    assert "pii_key" not in str(answers)


class _RecordingStore:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def stored(self, account_id: str, event_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {}

    def put_many(self, items: list[dict[str, Any]], concurrency: int) -> list[None]:
        self.items.extend(items)
        return [None] * len(items)

    def link_visitors(self, account_id: str, pairs: set[tuple[str, str]]) -> None:
        pass  # calls name no visitor here


def test_ingest_looks_the_secret_up_once_per_request_and_only_for_callers() -> None:
    lookups: list[str] = []

    def secret(account_id: str) -> str:
        lookups.append(account_id)
        return "ab" * 32

    def ingest(*events: dict[str, Any]) -> _RecordingStore:
        store = _RecordingStore()
        batch = EventBatch.model_validate({"events": list(events)})
        ingest_events(store, store, "acc_1", batch, datetime.now(UTC), "req", 30, secret)
        return store

    store = ingest(*[_call(f"c-{n}", NUMBER) for n in range(3)])
    assert lookups == ["acc_1"]
    assert {item["body"]["caller_hash"] for item in store.items} == {caller_hash("ab" * 32, NUMBER)}
    ingest(
        {"type": "page_view", "url": "https://shop.example/"},
        _call("c-9", NUMBER) | {"caller_number": None},
    )
    assert lookups == ["acc_1"]


def test_caller_de_duplication_compares_the_hashes(stack: InProcessStack) -> None:
    account = stack.new_account()
    write = account["keys"]["write"]
    goal = {
        "name": "One per caller",
        "rule": {"kind": "call", "connected": True},
        "dedup": {"keys": ["caller"], "window_days": None},
    }
    status, created = stack.api.request("POST", "/v1/goals", write, goal)
    assert status == 201, created
    _send(stack, write, _call("c-1", NUMBER, occurred_at="2026-11-01T10:00:00Z"))
    _send(stack, write, _call("c-2", "+44 20 7123 4567", occurred_at="2026-11-02T10:00:00Z"))
    _send(stack, write, _call("c-3", OTHER, occurred_at="2026-11-03T10:00:00Z"))
    stack.evaluate_pending()

    statuses = {
        item["event_id"]: item["status"]
        for item in stack.items()
        if item.get("kind") == "conversion" and item["goal_id"] == created["goal_id"]
    }
    assert statuses == {"ev-c-1": "counted", "ev-c-2": "void", "ev-c-3": "counted"}


def test_traces_show_the_masked_number_only(stack: InProcessStack) -> None:
    account = stack.new_account()
    _send(stack, account["keys"]["write"], _call("c-1", NUMBER))
    stack.evaluate_pending()
    status, trace = stack.api.request("GET", "/v1/visitors/v-1/trace", account["keys"]["read"])
    assert status == 200, trace
    (event,) = [item for item in trace["items"] if item["kind"] == "event"]
    assert event["caller_masked"] == "+44*******567"
    assert "caller_hash" not in event
    assert "2071234567" not in str(trace)


# One London number as people and phone systems write it: with the trunk "(0)" that
# is never dialled from abroad, with 00 for +, with and without spaces.
SPELLINGS = (
    "+44 (0)20 7123 4567",
    "+44(0)2071234567",
    "0044 (0) 20-7123-4567",
    "+44 20 7123 4567",
    NUMBER,
)


def test_one_number_in_any_spelling_is_one_caller(stack: InProcessStack) -> None:
    account = stack.new_account()
    write = account["keys"]["write"]
    status, goal = stack.api.request(
        "POST",
        "/v1/goals",
        write,
        {
            "name": "Once per caller",
            "rule": {"kind": "call", "connected": True},
            "dedup": {"keys": ["caller"], "window_days": None},
        },
    )
    assert status == 201, goal
    _send(
        stack,
        write,
        *[
            _call(f"c-{n}", spelling, occurred_at=f"2026-11-0{n + 1}T10:00:00Z")
            for n, spelling in enumerate(SPELLINGS)
        ],
    )
    stack.evaluate_pending()

    bodies = _stored_bodies(stack, account["account_id"]).values()
    assert {body["caller_hash"] for body in bodies} == {
        caller_hash(_secret_of(stack, account["account_id"]), NUMBER)
    }
    assert {body["caller_masked"] for body in bodies} == {"+44*******567"}
    statuses = [
        item["status"]
        for item in stack.items()
        if item.get("kind") == "conversion" and item["goal_id"] == goal["goal_id"]
    ]
    assert sorted(statuses) == ["counted"] + ["void"] * (len(SPELLINGS) - 1)


def _secret_of(stack: InProcessStack, account_id: str) -> str:
    (secret,) = [
        item["pii_key"]
        for item in stack.items()
        if item.get("kind") == "account" and item["account_id"] == account_id
    ]
    return secret


def _digits(zero: str, ascii_digits: str) -> str:
    """The digits 0-9 of `ascii_digits` written with the script whose zero is `zero`."""
    return ascii_digits.translate({ord("0") + n: ord(zero) + n for n in range(10)})


FULL_WIDTH, ARABIC_INDIC, PERSIAN, DEVANAGARI = "\uff10", "\u0660", "\u06f0", "\u0966"


@pytest.mark.parametrize("field", ["caller_number", "tracking_number"])
@pytest.mark.parametrize(
    "number",
    [
        "+4" + _digits(FULL_WIDTH, "42071234567"),  # the digit check saw only the first
        "+" + _digits(FULL_WIDTH, "442071234567"),
        "+4" + _digits(ARABIC_INDIC, "42071234567"),
        "+4" + _digits(PERSIAN, "42071234567"),
        "+4" + _digits(DEVANAGARI, "42071234567"),
        "+44 " + _digits(ARABIC_INDIC, "20") + " 7123 4567",  # one group only
    ],
)
def test_numbers_in_digits_other_than_0_to_9_are_refused(
    stack: InProcessStack, field: str, number: str
) -> None:
    write = stack.new_account()["keys"]["write"]
    status, body = stack.api.request(
        "POST", "/v1/events", write, _call("c-1", NUMBER) | {field: number}
    )
    assert status == 400, body
    (problem,) = body["error"]["fields"]
    assert problem["field"] == f"events[0].{field}"
    assert "0-9" in problem["reason"]
    assert [i for i in stack.items() if i.get("kind") == "event"] == []
