"""An event id names one event (issue 12, finding 6).

A repeat of an id with the same content is a duplicate (202, listed under
`duplicates`); with other content it is refused (409 `event_id_conflict`, naming
every `events[i].event_id` concerned) and nothing of the request is stored.
"Same content" is the event as the client sent it, after validation: key order,
number formatting, time zone offsets, phone formatting, explicit nulls and
defaults do not make a retry look different; what the server fills in (the time
received, a derived id) is not part of it.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.endpoint
import pytest

from goalkeeper.attributes import to_attributes
from goalkeeper.dal.events import Events
from goalkeeper.models.events import EventBatch
from goalkeeper.services.ingest import event_item
from support.faults import BackoffRecorder, FaultInjector
from support.stack import TABLE, InProcessStack

CALL = {
    "event_id": "CA-7",
    "type": "call",
    "occurred_at": "2026-11-20T10:15:00Z",
    "visitor_id": "v-7",
    "call_id": "CA-7",
    "caller_number": "+442071234567",
    "connected": True,
    "bridged_seconds": 75,
}
RATING = {
    "type": "call_rating",
    "occurred_at": "2026-11-20T10:30:00Z",
    "visitor_id": "v-7",
    "call_id": "CA-7",
    "rating": "sale",
    "value": 500,
    "currency": "GBP",
}
ORDER = {
    "event_id": "order-1",
    "type": "transaction",
    "occurred_at": "2026-11-20T10:15:00Z",
    "visitor_id": "v-1",
    "transaction": {"value": "1.00", "currency": "GBP", "reference": "o-1"},
    "attribution": {"source": "google", "medium": "cpc"},
}
SALE_GOAL = {
    "name": "Phone sale",
    "rule": {"kind": "call_rating", "rating": "sale"},
    "value": {"type": "percent_of_transaction", "percent": 100},
}
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def _post(stack: InProcessStack, key: str, *events: dict[str, Any]) -> tuple[int, Any]:
    body = events[0] if len(events) == 1 else {"events": list(events)}
    return stack.api.request("POST", "/v1/events", key, body)


def _stored(stack: InProcessStack, account_id: str) -> dict[str, dict[str, Any]]:
    prefix = f"A#{account_id}#E#"
    return {
        item["event_id"]: item["body"] for item in stack.items() if item["pk"].startswith(prefix)
    }


def _conflicts(answer: dict[str, Any]) -> list[str]:
    assert answer["error"]["code"] == "event_id_conflict", answer
    for problem in answer["error"]["fields"]:
        assert "other content" in problem["reason"], problem
    return [problem["field"] for problem in answer["error"]["fields"]]


def test_a_rating_sent_with_its_calls_id_is_refused_and_counts_under_its_own_id(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    assert stack.api.request("POST", "/v1/goals", write, SALE_GOAL)[0] == 201
    assert _post(stack, write, CALL) == (202, {"accepted": ["CA-7"], "duplicates": []})

    status, answer = _post(stack, write, RATING | {"event_id": "CA-7"})
    assert status == 409
    assert _conflicts(answer) == ["events[0].event_id"]
    assert "CA-7" in answer["error"]["message"]
    assert _stored(stack, account["account_id"])["CA-7"]["type"] == "call"

    rating = RATING | {"event_id": "rating-CA-7"}
    assert _post(stack, write, rating) == (202, {"accepted": ["rating-CA-7"], "duplicates": []})
    stack.evaluate_pending()
    _, report = stack.api.request("GET", "/v1/reports/goals", read, query=NOVEMBER)
    sale = next(row for row in report["goals"] if row["name"] == "Phone sale")
    assert (sale["counted"], sale["value"]) == (1, {"GBP": "500.00"})


def test_one_id_twice_in_a_batch_with_other_values_stores_nothing(stack: InProcessStack) -> None:
    account = stack.new_account()
    ten = ORDER | {"transaction": ORDER["transaction"] | {"value": 10}}
    huge = ORDER | {"transaction": ORDER["transaction"] | {"value": 99999}}
    page = {"event_id": "pv-1", "type": "page_view", "url": "https://shop.example/"}

    status, answer = _post(stack, account["keys"]["write"], ten, page, huge)
    assert status == 409
    assert _conflicts(answer) == ["events[2].event_id"]
    assert "events[0]" in answer["error"]["fields"][0]["reason"]
    assert _stored(stack, account["account_id"]) == {}


def test_a_batch_names_every_conflicting_id_and_stores_nothing(stack: InProcessStack) -> None:
    account = stack.new_account()
    write = account["keys"]["write"]
    stored_view = {"event_id": "pv-a", "type": "page_view", "url": "https://shop.example/a"}
    assert _post(stack, write, stored_view, ORDER)[0] == 202

    other_order = ORDER | {"transaction": ORDER["transaction"] | {"value": "2.00"}}
    batch = [
        {"event_id": "new-1", "type": "lead", "lead_id": "L-1"},
        stored_view | {"url": "https://shop.example/b"},  # stored with another url
        {"event_id": "x", "type": "lead", "lead_id": "L-2"},
        {"event_id": "x", "type": "lead", "lead_id": "L-3"},  # earlier in this batch
        stored_view,  # the same content again: a duplicate, no conflict
        other_order,  # stored with 1.00 ...
        other_order,  # ... and the same other content again
    ]
    status, answer = _post(stack, write, *batch)
    assert status == 409
    assert _conflicts(answer) == [
        "events[1].event_id",
        "events[3].event_id",
        "events[5].event_id",
        "events[6].event_id",
    ]
    for event_id in ("pv-a", "x", "order-1"):
        assert event_id in answer["error"]["message"]
    stored = _stored(stack, account["account_id"])
    assert sorted(stored) == ["order-1", "pv-a"]
    assert stored["pv-a"]["url"] == "https://shop.example/a"


@pytest.mark.parametrize(
    "resend",
    [
        pytest.param(ORDER | {"transaction": ORDER["transaction"] | {"value": 1}}, id="1"),
        pytest.param(ORDER | {"transaction": ORDER["transaction"] | {"value": 1.0}}, id="1.0"),
        pytest.param(ORDER | {"transaction": ORDER["transaction"] | {"value": "1"}}, id="'1'"),
        pytest.param(dict(reversed(ORDER.items())), id="key order"),
        pytest.param(ORDER | {"occurred_at": "2026-11-20T11:15:00.000+01:00"}, id="offset"),
        pytest.param(ORDER | {"visit_id": None, "contact_id": None}, id="explicit nulls"),
        pytest.param(ORDER | {"visitor_id": "  v-1 "}, id="padding"),
    ],
)
def test_a_resend_of_the_same_content_however_written_is_a_duplicate(
    stack: InProcessStack, resend: dict[str, Any]
) -> None:
    account = stack.new_account()
    write = account["keys"]["write"]
    assert _post(stack, write, ORDER) == (202, {"accepted": ["order-1"], "duplicates": []})
    assert _post(stack, write, resend) == (202, {"accepted": [], "duplicates": ["order-1"]})


def test_formatting_of_calls_and_custom_fields_does_not_make_a_conflict(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write = account["keys"]["write"]
    missed = CALL | {"event_id": "CA-8", "call_id": "CA-8", "connected": False}
    del missed["bridged_seconds"]
    signup = {
        "event_id": "su-1",
        "type": "custom_trigger",
        "name": "signup",
        "fields": {"seats": 3, "trial": True, "plan": "pro"},
    }
    assert _post(stack, write, missed, signup)[0] == 202

    same = [
        missed | {"caller_number": "+44 20 7123 4567", "bridged_seconds": 0},
        signup | {"fields": {"plan": "pro", "seats": 3.0, "trial": True}},
    ]
    assert _post(stack, write, *same) == (202, {"accepted": [], "duplicates": ["CA-8", "su-1"]})
    # Text is not a number and a flag is not a count: rules tell them apart, so do ids.
    for fields in ({"seats": "3", "trial": True, "plan": "pro"}, {"seats": 3, "trial": 1}):
        status, answer = _post(stack, write, signup | {"fields": fields | {"plan": "pro"}})
        assert status == 409, fields
        assert _conflicts(answer) == ["events[0].event_id"]


def test_a_resend_relying_on_server_defaults_is_a_duplicate(stack: InProcessStack) -> None:
    """Without `occurred_at` the time received is used, and it differs at every resend;
    without `event_id` the id is derived from the content. Neither is what was sent."""
    account = stack.new_account()
    write = account["keys"]["write"]
    no_time = {"event_id": "pv-now", "type": "page_view", "url": "https://shop.example/"}
    no_id = {"type": "lead", "lead_id": "L-9", "occurred_at": "2026-11-20T10:15:00Z"}
    neither = {"type": "page_view", "url": "https://shop.example/pricing"}
    status, first = _post(stack, write, no_time, no_id, neither)
    assert status == 202 and len(first["accepted"]) == 3
    assert _post(stack, write, no_time, no_id, neither) == (
        202,
        {"accepted": [], "duplicates": first["accepted"]},
    )
    # Naming a time the first sending left to the server is other content.
    status, answer = _post(stack, write, no_time | {"occurred_at": "2026-11-20T10:15:00Z"})
    assert status == 409
    assert _conflicts(answer) == ["events[0].event_id"]


def test_a_repeat_of_an_event_stored_before_digests_is_judged_by_its_stored_body(
    stack: InProcessStack,
) -> None:
    """Events stored by earlier versions carry no digest of what was sent: their stored
    body is compared instead, its time only when the repeat names one."""
    account = stack.new_account()
    write = account["keys"]["write"]
    assert _post(stack, write, CALL)[0] == 202
    (key,) = [
        {"pk": item["pk"], "sk": item["sk"]}
        for item in stack.items()
        if item.get("event_id") == "CA-7" and item["pk"].startswith(f"A#{account['account_id']}#")
    ]
    stack.client.update_item(
        TableName="goalkeeper-test",
        Key=to_attributes(key),
        UpdateExpression="REMOVE content_digest",
    )
    untimed = {k: v for k, v in CALL.items() if k != "occurred_at"}
    respaced = CALL | {"caller_number": "+44 20 7123 4567"}
    for repeat in (CALL, untimed, respaced):
        assert _post(stack, write, repeat) == (202, {"accepted": [], "duplicates": ["CA-7"]})
    for other in (RATING | {"event_id": "CA-7"}, CALL | {"occurred_at": "2026-11-20T10:16:00Z"}):
        status, answer = _post(stack, write, other)
        assert status == 409, other
        assert _conflicts(answer) == ["events[0].event_id"]


def _plant_before_puts(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch, account_id: str, event: dict
) -> None:
    """Another request stores `event` after this request's check and before its puts."""
    put_many = Events.put_many

    def planting(events: Events, *args: Any, **kwargs: Any) -> Any:
        (planted,) = EventBatch.model_validate(event).events
        item = event_item(account_id, planted, datetime.now(UTC), "other-request", 30)
        stack.client.put_item(TableName=TABLE, Item=to_attributes(item))
        return put_many(events, *args, **kwargs)

    monkeypatch.setattr(Events, "put_many", planting)


def test_a_conflicting_write_after_the_check_is_still_a_409(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = stack.new_account()
    mine = {"event_id": "pv-1", "type": "page_view", "url": "https://shop.example/mine"}
    theirs = mine | {"url": "https://shop.example/theirs"}
    lead = {"event_id": "lead-1", "type": "lead", "lead_id": "L-1"}
    _plant_before_puts(stack, monkeypatch, account["account_id"], theirs)

    status, answer = _post(stack, account["keys"]["write"], lead, mine)
    assert status == 409
    assert _conflicts(answer) == ["events[1].event_id"]
    stored = _stored(stack, account["account_id"])
    assert stored["pv-1"]["url"] == "https://shop.example/theirs"
    # What the race can leave (README, Events): the request's other events, stored.
    assert sorted(stored) == ["lead-1", "pv-1"]


@pytest.fixture
def scripted(stack: InProcessStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultInjector]:
    from goalkeeper import runtime

    monkeypatch.setattr(botocore.endpoint, "time", BackoffRecorder())
    injector = FaultInjector(0.0, seed=1).attach(runtime.dal().client)
    try:
        yield injector
    finally:
        injector.detach()


def test_a_conflicting_write_met_after_every_put_attempt_failed_is_a_409_not_a_duplicate(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch, scripted: FaultInjector
) -> None:
    """Our put never got through; the consistent read that decides between 503 and
    stored finds another request's event under the id: a conflict, not ours."""
    account = stack.new_account()
    mine = {"event_id": "pv-1", "type": "page_view", "url": "https://shop.example/mine"}
    _plant_before_puts(
        stack, monkeypatch, account["account_id"], mine | {"url": "https://shop.example/theirs"}
    )
    scripted.script("PutItem", "throttle", "server_error", "throttle", "server_error")

    status, answer = _post(stack, account["keys"]["write"], mine)
    assert status == 409
    assert _conflicts(answer) == ["events[0].event_id"]
