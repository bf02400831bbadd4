"""Attribution that follows the visitor, over HTTP against `goalkeeper serve` (each
engine): a landing with campaign parameters, then the thank-you page, a sale and a
call two days later, none of which carries attribution, all credited to the landing's
campaign and keyword; an account's model changed with PUT /v1/account. Call tracking
(issue 17): a visit without a browser is given a pool number, a call to it is posted
a minute later (by a phone system's JSON, or in Twilio's signed status callback), and it
counts as Call Qualified under the visit's keyword."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.served import ServedStack
from support.twilio_calls import call_sid, completed_call, connect_twilio, post_callback

ADMIN = "attribution-e2e-admin"
LANDING = (
    "https://shop.example/boots?utm_source=google&utm_medium=cpc&utm_campaign=winter&utm_term=boots"
)
WINTER = {"source": "google", "medium": "cpc", "campaign": "winter", "keyword": "boots"}
GOALS = [
    {"name": "Thank you", "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"}},
    {"name": "Big sale", "rule": {"kind": "transaction", "min_value": "100"}},
]
RANGE = "from=2026-11-01&to=2026-11-30"
POOLS = {
    "phone system JSON": ("+442079470000", "+442079470001"),
    "signed Twilio callback": ("+442079480000", "+442079480001"),
}
SEARCH = {"source": "google", "medium": "cpc", "keyword": "boiler repair", "click_id": "g-7"}


@pytest.fixture(scope="module")
def served(serve_engine: str) -> Iterator[ServedStack]:
    stack = ServedStack(ADMIN, ["--engine", serve_engine])
    yield stack
    if stack.process.poll() is None:
        stack.stop()


def _account(served: ServedStack) -> tuple[str, str]:
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write, read = account["keys"]["write"], account["keys"]["read"]
    for goal in GOALS:
        status, body = served.request("POST", "/v1/goals", write, goal)
        assert status == 201, body
    return write, read


def _journey(visitor: str) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{visitor}-land",
            "type": "page_view",
            "occurred_at": "2026-11-10T09:00:00Z",
            "visitor_id": visitor,
            "url": LANDING,
            "referrer": "https://www.google.com/",
        },
        {
            "event_id": f"{visitor}-direct",
            "type": "page_view",
            "occurred_at": "2026-11-11T08:00:00Z",
            "visitor_id": visitor,
            "url": "https://shop.example/",
        },
        {
            "event_id": f"{visitor}-thanks",
            "type": "page_view",
            "occurred_at": "2026-11-11T08:05:00Z",
            "visitor_id": visitor,
            "url": "https://shop.example/thank-you",
            "referrer": "https://shop.example/checkout",
        },
        {
            "event_id": f"{visitor}-sale",
            "type": "transaction",
            "occurred_at": "2026-11-11T08:06:00Z",
            "visitor_id": visitor,
            "transaction": {"value": "149.00", "currency": "GBP", "reference": f"{visitor}-o"},
        },
        {
            "event_id": f"{visitor}-call",
            "type": "call",
            "occurred_at": "2026-11-13T15:00:00Z",
            "visitor_id": visitor,
            "call_id": f"{visitor}-CA",
            "caller_number": "+442071234567",
            "connected": True,
            "bridged_seconds": 75,
        },
    ]


def _credits(served: ServedStack, read: str, visitor: str, count: int) -> dict[str, Any]:
    """The visitor's conversions (event id -> (attribution, source)) once `count` are there."""
    deadline = time.monotonic() + 15
    while True:
        status, trace = served.request("GET", f"/v1/visitors/{visitor}/trace", read)
        assert status == 200, trace
        found = {
            item["event_id"]: (item["attribution"], item["attribution_source"])
            for item in trace["items"]
            if item["kind"] == "conversion"
        }
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.server
def test_the_thank_you_page_the_sale_and_a_later_call_are_credited_to_the_landing(
    served: ServedStack,
) -> None:
    write, read = _account(served)
    status, body = served.request("POST", "/v1/events", write, {"events": _journey("v1")})
    assert status == 202, body

    credits = _credits(served, read, "v1", 3)
    # A direct return visit in between never replaces the paid touch (last_non_direct).
    assert credits == {
        "v1-thanks": (WINTER, "visitor"),
        "v1-sale": (WINTER, "visitor"),
        "v1-call": (WINTER, "visitor"),
    }
    status, report = served.request("GET", f"/v1/reports/top-keywords?{RANGE}&limit=10", read)
    assert status == 200, report
    assert [(row["keyword"], row["counted"]) for row in report["keywords"]] == [("boots", 3)]


@pytest.mark.server
def test_the_last_touch_model_credits_the_direct_return_visit(served: ServedStack) -> None:
    write, read = _account(served)
    settings = {"attribution": {"model": "last_touch", "lookback_days": 30}}
    status, body = served.request("PUT", "/v1/account", write, settings)
    assert status == 200, body
    assert served.request("GET", "/v1/account", read)[1]["attribution"] == settings["attribution"]

    status, body = served.request("POST", "/v1/events", write, {"events": _journey("v2")})
    assert status == 202, body
    direct = {"source": "(direct)", "medium": "(none)"}
    assert _credits(served, read, "v2", 3) == {
        "v2-thanks": (direct, "visitor"),
        "v2-sale": (direct, "visitor"),
        "v2-call": (direct, "visitor"),
    }


def _keywords(served: ServedStack, read: str, day: str) -> list[tuple[str, int, list[str]]]:
    goals = served.request("GET", "/v1/goals", read)[1]
    names = {goal["goal_id"]: goal["name"] for goal in goals["goals"]}
    path = f"/v1/reports/attribution?dimension=keyword&group=all&from={day}&to={day}"
    status, report = served.request("GET", path, read)
    assert status == 200, report
    return [(r["keyword"], r["counted"], [names[g] for g in r["goals"]]) for r in report["rows"]]


@pytest.mark.server
@pytest.mark.parametrize("posted_by", ["phone system JSON", "signed Twilio callback"])
def test_a_call_to_the_number_a_visit_was_shown_counts_under_its_keyword(
    served: ServedStack, posted_by: str
) -> None:
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    keys = account["keys"]
    # A number belongs to one account: each variant has its own pool.
    own, number = POOLS[posted_by]
    body = {"number": number, "kind": "pool", "replaces": own}
    status, answer = served.request("POST", "/v1/numbers", keys["write"], body)
    assert status == 201, answer
    visit = {"visitor_id": "vis-1", "visit_id": "visit-1", "attribution": SEARCH, "replaces": own}
    status, held = served.request("POST", "/v1/numbers/assign", keys["site"], visit)
    assert (status, held["number"], held["pooled"]) == (200, number, True)
    # The caller dials a minute later (the phone system reports the call's own start time;
    # Twilio's to the second).
    started = (datetime.now(UTC) + timedelta(seconds=60)).replace(microsecond=0)
    if posted_by == "signed Twilio callback":
        webhook_url = connect_twilio(served.request, keys["write"])
        params = completed_call(call_sid(posted_by), 95, started, to=number, caller="+447700900456")
        status, answer = post_callback(webhook_url, params)
        assert status == 200, answer
    else:
        call = {
            "type": "call",
            "call_id": "CA-e2e-1",
            "caller_number": "+447700900456",
            "tracking_number": number,
            "connected": True,
            "bridged_seconds": 95,
            "occurred_at": started.isoformat(),
        }
        status, answer = served.request("POST", "/v1/events", keys["write"], call)
        assert status == 202, answer
    deadline = time.monotonic() + 15
    expected = [("boiler repair", 1, ["Call Qualified"])]
    while (found := _keywords(served, keys["read"], started.date().isoformat())) != expected:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    status, trace = served.request("GET", "/v1/visitors/vis-1/trace", keys["read"])
    assert status == 200, trace
    (event,) = [item for item in trace["items"] if item["kind"] == "event"]
    assert (event["visit_id"], event["matched_by"], event["attribution"]) == (
        "visit-1",
        "pool",
        SEARCH,
    )
    assert event["at"] == started.isoformat(timespec="microseconds").replace("+00:00", "Z")
