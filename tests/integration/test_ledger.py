"""The value ledger (issue 20) on the in-process stack: refunds and later values of counted
conversions move the reports' net value (the gross beside it) in the same write; resends
are idempotent and bad input stores nothing (racing adjustments: tests/e2e/test_serve_e2e.py,
over `goalkeeper serve`, whose DynamoDB engines serialize transactions as DynamoDB does)."""

import csv
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from goalkeeper.ads_export import ADJUSTMENT_HEADERS, CONVERSION_HEADERS
from support.stack import InProcessStack

RANGE = {"from": "2026-11-01", "to": "2026-11-30"}
SALE = {
    "name": "Sale",
    "rule": {"kind": "transaction"},
    "dedup": {"keys": ["transaction_ref"]},
    "value": {"type": "percent_of_transaction", "percent": "100"},
}
LEAD = {"name": "Lead", "rule": {"kind": "lead"}, "dedup": {"keys": []}}
BOOKING = {
    "name": "Booking",
    "rule": {"kind": "custom_trigger", "name": "booking"},
    "dedup": {"keys": []},
    "value": {"type": "fixed", "amount": "50", "currency": "GBP"},
}
GCLID = "Cj0KCQiA-gclid"


def sale(event_id: str, reference: str, value: str, currency: str = "USD") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "transaction",
        "visitor_id": "v1",
        "occurred_at": "2026-11-10T10:00:00Z",
        "attribution": {"source": "google", "medium": "cpc", "click_id": GCLID},
        "transaction": {"value": value, "currency": currency, "reference": reference},
    }


def _conversions(stack: InProcessStack, account_id: str) -> dict[str, dict[str, Any]]:
    return {
        i["event_id"]: i
        for i in stack.items()
        if i.get("kind") == "conversion" and i["account_id"] == account_id
    }


def _setup(
    stack: InProcessStack, *events: dict[str, Any], timezone: str = "UTC"
) -> tuple[str, str, dict[str, Any]]:
    account = stack.new_account(timezone=timezone)
    write, read = account["keys"]["write"], account["keys"]["read"]
    stack.add_goals(write, [SALE, LEAD, BOOKING])
    stack.send(write, list(events))
    stack.evaluate_pending()
    return write, read, _conversions(stack, account["account_id"])


def adjust(
    stack: InProcessStack, write: str, conversion_id: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    path = f"/v1/conversions/{conversion_id}/adjustments"
    return stack.api.request("POST", path, write, body)


def _goal_row(stack: InProcessStack, read: str, name: str) -> dict[str, Any]:
    status, report = stack.api.request("GET", "/v1/reports/goals", read, query=RANGE)
    assert status == 200, report
    return next(row for row in report["goals"] if row["name"] == name)


def test_a_refund_and_a_restatement_show_as_net_value_beside_the_gross(
    stack: InProcessStack,
) -> None:
    write, read, conversions = _setup(
        stack, sale("s1", "o-1", "100.00"), sale("s2", "o-2", "40.00")
    )
    first, second = conversions["s1"]["conversion_id"], conversions["s2"]["conversion_id"]
    refund = {"adjustment_id": "refund-1", "type": "retract", "reason": "order refunded"}
    status, made = adjust(stack, write, first, refund)
    assert status == 201, made
    assert made["previous_value"] == {"amount": "100.00", "currency": "USD"}
    assert made["value"] is None
    restate = {
        "adjustment_id": "upsell-2",
        "type": "restate",
        "value": "4000",
        "currency": "EUR",
        "reason": "closed as a bigger deal",
    }
    assert adjust(stack, write, second, restate)[0] == 201

    row = _goal_row(stack, read, "Sale")
    assert row["counted"] == 2  # a refund leaves the conversion counted ...
    assert row["retracted"] == 1  # ... and says it was retracted
    assert row["gross_value"] == {"USD": "140.00"}
    assert row["value"] == {"EUR": "4000.00", "USD": "0.00"}
    status, keywords = stack.api.request(
        "GET", "/v1/reports/attribution", read, query=RANGE | {"dimension": "source"}
    )
    assert status == 200
    google = next(r for r in keywords["rows"] if r["source"] == "google")
    assert google["value"] == {"EUR": "4000.00", "USD": "0.00"}

    # The trace shows each adjustment right under its conversion.
    status, trace = stack.api.request("GET", "/v1/visitors/v1/trace", read)
    assert status == 200
    kinds = [(item["kind"], item.get("conversion_id")) for item in trace["items"]]
    at = kinds.index(("conversion", first))
    assert kinds[at + 1] == ("adjustment", first)
    converted = trace["items"][at]
    assert converted["retracted"] is True and converted["net_value"] is None
    assert trace["items"][at + 1]["reason"] == "order refunded"


def test_a_resent_adjustment_is_answered_from_the_first_and_changes_nothing(
    stack: InProcessStack,
) -> None:
    write, read, conversions = _setup(stack, sale("s1", "o-1", "100.00"))
    conversion_id = conversions["s1"]["conversion_id"]
    body = {"adjustment_id": "a-1", "type": "restate", "value": "80", "reason": "discount"}
    status, first = adjust(stack, write, conversion_id, body)
    assert status == 201, first
    status, again = adjust(stack, write, conversion_id, body)
    assert (status, again) == (200, first)
    status, other = adjust(stack, write, conversion_id, body | {"value": "70"})
    assert status == 409 and other["error"]["fields"][0]["field"] == "adjustment_id"
    assert _goal_row(stack, read, "Sale")["value"] == {"USD": "80.00"}


def test_bad_adjustments_are_refused_naming_the_field_and_store_nothing(
    stack: InProcessStack,
) -> None:
    booking = {
        "event_id": "b1",
        "type": "custom_trigger",
        "name": "booking",
        "visitor_id": "v2",
        "occurred_at": "2026-11-10T11:00:00Z",
    }
    lead = {
        "event_id": "l1",
        "type": "lead",
        "lead_id": "l-1",
        "occurred_at": "2026-11-12T09:00:00Z",
    }
    write, read, conversions = _setup(
        stack, sale("s1", "o-1", "100.00"), sale("s1-again", "o-1", "100.00"), booking, lead
    )
    # One order sent twice: one counted, the other void (whichever was decided second).
    statuses = {
        conversions[e]["status"]: conversions[e]["conversion_id"] for e in ("s1", "s1-again")
    }
    counted, void = statuses["counted"], statuses["void"]
    fixed = conversions["b1"]["conversion_id"]
    other = stack.new_account()["keys"]["write"]
    before = stack.items()
    cases = [
        (counted, {"type": "restate", "value": "-5", "reason": "x"}, 400, "value"),
        (counted, {"type": "restate", "reason": "x"}, 400, "value"),
        (counted, {"type": "retract", "value": "5", "reason": "x"}, 400, "value"),
        (
            fixed,
            {"type": "restate", "value": "60", "currency": "USD", "reason": "x"},
            400,
            "currency",
        ),
        (
            conversions["l1"]["conversion_id"],
            {"type": "restate", "value": "9", "reason": "x"},
            400,
            "currency",
        ),
        ("no-such-conversion", {"type": "retract", "reason": "x"}, 404, "conversion_id"),
        (void, {"type": "retract", "reason": "x"}, 409, "conversion_id"),
    ]
    for number, (conversion_id, body, expected, field) in enumerate(cases):
        status, answer = adjust(stack, write, conversion_id, body | {"adjustment_id": f"b{number}"})
        assert status == expected, (body, answer)
        assert field in [problem["field"] for problem in answer["error"]["fields"]], answer
    assert stack.items() == before
    # Another account's conversion is not found, and stays as it was.
    body = {"adjustment_id": "x1", "type": "retract", "reason": "x"}
    assert adjust(stack, other, counted, body)[0] == 404
    assert stack.items() == before
    # A fixed-value goal's restatement takes its currency when none is given.
    body = {"adjustment_id": "fx", "type": "restate", "value": "75", "reason": "upgrade"}
    status, made = adjust(stack, write, fixed, body)
    assert status == 201 and made["value"] == {"amount": "75.00", "currency": "GBP"}
    assert _goal_row(stack, read, "Booking")["value"] == {"GBP": "75.00"}
    # A lead (no value) that became a sale three weeks later takes the sale's value.
    body = {"adjustment_id": "won", "type": "restate", "value": "4000", "currency": "EUR"}
    status, made = adjust(
        stack, write, conversions["l1"]["conversion_id"], body | {"reason": "won"}
    )
    assert status == 201, made
    lead_row = _goal_row(stack, read, "Lead")
    assert (lead_row["value"], lead_row["gross_value"]) == ({"EUR": "4000.00"}, {})


def test_a_retracted_conversion_takes_no_further_adjustment(stack: InProcessStack) -> None:
    write, read, conversions = _setup(stack, sale("s1", "o-1", "100.00"))
    conversion_id = conversions["s1"]["conversion_id"]
    retract = {"adjustment_id": "r1", "type": "retract", "reason": "refund"}
    assert adjust(stack, write, conversion_id, retract)[0] == 201
    for body in (
        retract | {"adjustment_id": "r2"},
        {"adjustment_id": "r3", "type": "restate", "value": "5", "reason": "x"},
    ):
        status, answer = adjust(stack, write, conversion_id, body)
        assert status == 409, answer
    assert _goal_row(stack, read, "Sale")["value"] == {"USD": "0.00"}


def _export(stack: InProcessStack, read: str, **query: str) -> tuple[str, list[list[str]]]:
    response = stack.api.response("GET", "/v1/exports/google-ads", read, query=RANGE | query)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/csv")
    parameters, *lines = response.get_data(as_text=True).splitlines()
    return parameters, list(csv.reader(lines))


def test_the_google_ads_export_lists_click_conversions_and_their_adjustments(
    stack: InProcessStack,
) -> None:
    organic = sale("s3", "o-3", "30.00") | {"attribution": {"source": "bing", "click_id": "m"}}
    write, read, conversions = _setup(
        stack,
        sale("s1", "o-1", "100.00"),
        sale("s2", "o-2", "40.00", "EUR"),
        organic,
        timezone="Europe/Paris",
    )
    parameters, rows = _export(stack, read)
    assert parameters == "Parameters:TimeZone=Europe/Paris"
    assert rows[0] == list(CONVERSION_HEADERS)
    assert sorted(rows[1:]) == [  # the bing click is not Google's
        [GCLID, "Sale", "2026-11-10 11:00:00+0100", "100.00", "USD"],
        [GCLID, "Sale", "2026-11-10 11:00:00+0100", "40.00", "EUR"],
    ]
    retract = {"adjustment_id": "r1", "type": "retract", "reason": "refund"}
    assert adjust(stack, write, conversions["s1"]["conversion_id"], retract)[0] == 201
    restate = {"adjustment_id": "r2", "type": "restate", "value": "55.5", "reason": "upsell"}
    assert adjust(stack, write, conversions["s2"]["conversion_id"], restate)[0] == 201
    today = datetime.now(ZoneInfo("Europe/Paris")).date().isoformat()
    _, rows = _export(stack, read, kind="adjustments", **{"from": today, "to": today})
    assert rows[0] == list(ADJUSTMENT_HEADERS)
    kinds = sorted((row[4], row[5], row[6]) for row in rows[1:])
    assert kinds == [("RESTATE", "55.50", "EUR"), ("RETRACT", "", "")]
    assert all(row[2] == "2026-11-10 11:00:00+0100" for row in rows[1:])
    # Only the goals asked for; an unknown one is named.
    _, rows = _export(stack, read, goal_ids=conversions["s1"]["goal_id"])
    assert len(rows) == 3
    status, answer = stack.api.request(
        "GET", "/v1/exports/google-ads", read, query=RANGE | {"goal_ids": "nope"}
    )
    assert status == 400 and answer["error"]["fields"][0]["field"] == "goal_ids"


QUALIFIED_CALL = {
    "name": "Qualified call",
    "rule": {"kind": "call", "connected": True, "min_bridged_seconds": 60},
    "dedup": {"keys": []},
    "value": {"type": "percent_of_transaction", "percent": "10"},
}
ANSWERED_CALL = {
    "name": "Answered call",
    "rule": {"kind": "call", "connected": True},
    "dedup": {"keys": []},
    "value": {"type": "fixed", "amount": "5", "currency": "USD"},
}
SOLD = {
    "name": "Sold on the phone",
    "rule": {"kind": "call_rating", "rating": "sold"},
    "dedup": {"keys": []},
}


def _rating(event_id: str, value: str | None, minute: int, call_id: str = "CA-1") -> dict[str, Any]:
    rating = {
        "event_id": event_id,
        "type": "call_rating",
        "call_id": call_id,
        "rating": "sold",
        "visitor_id": "caller",
        "occurred_at": f"2026-11-10T10:{minute:02d}:00Z",
    }
    return rating | ({"value": value, "currency": "EUR"} if value else {})


def _call(event_id: str, call_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "call",
        "call_id": call_id,
        "visitor_id": "caller",
        "caller_number": "+442071234567",
        "connected": True,
        "bridged_seconds": 300,
        "occurred_at": "2026-11-10T10:00:00Z",
    }


def test_a_call_rating_s_sale_value_restates_its_call_s_percent_of_transaction_conversion(
    stack: InProcessStack,
) -> None:
    from goalkeeper import runtime
    from goalkeeper.history import stored_event
    from goalkeeper.services.ledger import rating_arrived

    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    stack.add_goals(write, [QUALIFIED_CALL, ANSWERED_CALL, SOLD])

    def send(*events: dict[str, Any]) -> dict[str, Any]:
        stack.send(write, list(events))
        stack.evaluate_pending()
        return _goal_row(stack, read, "Qualified call")

    assert send(_call("call-1", "CA-1"))["value"] == {}  # a call carries no sale
    qualified = send(_rating("rating-0", None, 15), _rating("rating-1", "500", 20))
    assert (qualified["value"], qualified["gross_value"]) == ({"EUR": "50.00"}, {})
    # The rating is still its own action, and a fixed value is the goal's to say.
    assert _goal_row(stack, read, "Sold on the phone")["counted"] == 2
    assert _goal_row(stack, read, "Answered call")["value"] == {"USD": "5.00"}
    # A later rating restates again; one from before it, arriving late, changes nothing.
    assert send(_rating("rating-2", "700", 30))["value"] == {"EUR": "70.00"}
    assert send(_rating("rating-early", "300", 10))["value"] == {"EUR": "70.00"}
    # Redelivered ratings change nothing either.
    stored = {
        i["event_id"]: stored_event(i)
        for i in stack.items()
        if i.get("kind") == "event" and i["account_id"] == account["account_id"]
    }
    dal, account_id = runtime.dal(), account["account_id"]
    goals = {goal.goal_id: goal for goal in dal.goals.library(account_id)}
    assert rating_arrived(dal, account_id, goals, stored["rating-1"], "rating-1", 4) == []
    again = rating_arrived(dal, account_id, goals, stored["rating-2"], "rating-2", 4)
    assert [a.value and a.value.amount for a in again] == [70]  # the stored restatement
    assert _goal_row(stack, read, "Qualified call")["value"] == {"EUR": "70.00"}
    trace = stack.api.request("GET", "/v1/visitors/caller/trace", read)[1]
    adjustments = [i for i in trace["items"] if i["kind"] == "adjustment"]
    assert [a["value"]["amount"] for a in adjustments] == ["50.00", "70.00"]
    # A rating that arrives before its call is decided gives the call its value then.
    send(_rating("rating-3", "1000", 40, call_id="CA-2"))
    assert send(_call("call-2", "CA-2"))["value"] == {"EUR": "170.00"}
