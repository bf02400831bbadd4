"""The reports marketers read, with real numbers from events sent through the API."""

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from goalkeeper.services import reports
from support.stack import InProcessStack

DAY = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
RANGE = {"from": "2026-11-01", "to": "2026-11-30"}
PAID = {"source": "google", "medium": "cpc", "campaign": "winter", "keyword": "boiler repair"}
SOCIAL = {"source": "facebook", "medium": "social", "campaign": "winter"}


def _at(hours: float) -> str:
    return (DAY + timedelta(hours=hours)).isoformat()


@pytest.fixture
def shop(stack: InProcessStack, ingest_in_order: None) -> dict:
    """An account with a sale goal worth 10% of the sale and a thank-you page goal.

    Its events are stored in the order sent: which of ann's two thank-you page views
    counts (the first decided) then follows arrival, as the trace test expects."""
    account = stack.new_account()
    write = account["keys"]["write"]
    sale = {
        "name": "Big sale",
        "rule": {"kind": "transaction", "min_value": "100"},
        "value": {"type": "percent_of_transaction", "percent": "10"},
    }
    thanks = {
        "name": "Thank-you page",
        "converting": False,
        "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"},
        "value": {"type": "fixed", "amount": "5", "currency": "GBP"},
    }
    goals = {}
    for spec in (sale, thanks):
        status, goal = stack.api.request("POST", "/v1/goals", write, spec)
        assert status == 201, goal
        goals[spec["name"]] = goal["goal_id"]
    events = [
        {
            "event_id": "pv-1",
            "type": "page_view",
            "visitor_id": "ann",
            "visit_id": "a1",
            "url": "https://shop.example/thank-you",
            "occurred_at": _at(0),
            "attribution": PAID,
        },
        {
            "event_id": "pv-2",
            "type": "page_view",
            "visitor_id": "ann",
            "visit_id": "a1",
            "url": "https://shop.example/thank-you?again",
            "occurred_at": _at(1),
            "attribution": PAID,
        },
        {
            "event_id": "pv-3",
            "type": "page_view",
            "visitor_id": "bob",
            "visit_id": "b1",
            "url": "https://shop.example/basket",
            "occurred_at": _at(2),
            "attribution": SOCIAL,
        },
        {
            "event_id": "tx-1",
            "type": "transaction",
            "visitor_id": "ann",
            "occurred_at": _at(3),
            "attribution": PAID,
            "transaction": {"value": "250.00", "currency": "USD", "reference": "o-1"},
        },
        {
            "event_id": "tx-2",
            "type": "transaction",
            "visitor_id": "bob",
            "occurred_at": _at(26),
            "attribution": SOCIAL,
            "transaction": {"value": "120", "currency": "EUR", "reference": "o-2"},
        },
        {
            "event_id": "tx-3",
            "type": "transaction",
            "visitor_id": "bob",
            "occurred_at": _at(27),
            "transaction": {"value": "99.99", "currency": "EUR", "reference": "o-3"},
        },
    ]
    status, body = stack.api.request("POST", "/v1/events", write, {"events": events})
    assert status == 202, body
    stack.evaluate_pending()
    return {"read": account["keys"]["read"], "goals": goals}


def _get(stack: InProcessStack, path: str, key: str, **query: str) -> dict:
    status, body = stack.api.request("GET", path, key, query=query)
    assert status == 200, body
    return body


def test_goals_report_counts_values_per_currency_and_groups(
    stack: InProcessStack, shop: dict
) -> None:
    report = _get(stack, "/v1/reports/goals", shop["read"], **RANGE)
    rows = {row["name"]: row for row in report["goals"]}
    sale, thanks = rows["Big sale"], rows["Thank-you page"]
    assert (sale["counted"], sale["void"]) == (2, 0)  # 99.99 is below the threshold
    assert sale["value"] == {"EUR": "12.00", "USD": "25.00"}  # never summed across currencies
    assert sale["visitors_converted"] == 2
    assert (thanks["counted"], thanks["void"]) == (1, 1)  # ann's second view is a duplicate
    assert thanks["value"] == {"GBP": "5.00"}
    assert report["visitors_seen"] == 3  # ann on the 10th, bob on the 10th and the 11th
    assert sale["conversion_rate"] == round(2 / 3, 4)
    assert thanks["conversion_rate"] == round(1 / 3, 4)
    assert report["groups"]["converting"]["counted"] >= 2
    assert report["groups"]["non_converting"] == {
        "counted": 1,
        "void": 1,
        "visitors_converted": 1,
        "value": {"GBP": "5.00"},  # net of refunds and later values (none here) ...
        "gross_value": {"GBP": "5.00"},  # ... beside the value as counted
        "retracted": 0,
    }


def test_timeseries_has_one_row_per_day_with_zeros(stack: InProcessStack, shop: dict) -> None:
    goal = shop["goals"]["Big sale"]
    series = _get(
        stack,
        f"/v1/reports/goals/{goal}/timeseries",
        shop["read"],
        **{"from": "2026-11-09", "to": "2026-11-12"},
    )
    assert [(d["date"], d["counted"]) for d in series["days"]] == [
        ("2026-11-09", 0),
        ("2026-11-10", 1),
        ("2026-11-11", 1),
        ("2026-11-12", 0),
    ]
    assert series["days"][1]["value"] == {"USD": "25.00"}


def test_attribution_by_source_and_campaign(stack: InProcessStack, shop: dict) -> None:
    by_source = _get(
        stack, "/v1/reports/attribution", shop["read"], dimension="source", group="all", **RANGE
    )
    rows = {row["source"]: row for row in by_source["rows"]}
    assert rows["google"]["counted"] == 2  # ann: thank-you page + sale
    assert rows["google"]["value"] == {"GBP": "5.00", "USD": "25.00"}
    assert rows["facebook"]["counted"] == 1
    converting = _get(
        stack,
        "/v1/reports/attribution",
        shop["read"],
        dimension="campaign",
        group="converting",
        **RANGE,
    )
    assert [(r["campaign"], r["counted"]) for r in converting["rows"]] == [("winter", 2)]


def _attribution_pages(stack: InProcessStack, read: str, **query: str) -> list[dict]:
    pages = [_get(stack, "/v1/reports/attribution", read, **query)]
    while pages[-1]["next_cursor"]:
        cursor = pages[-1]["next_cursor"]
        pages.append(_get(stack, "/v1/reports/attribution", read, cursor=cursor, **query))
    return pages


def test_attribution_pages_read_at_most_limit_counters_and_sum_to_the_report(
    stack: InProcessStack, shop: dict
) -> None:
    """Three counters (ann's two conversions from google, bob's sale from facebook),
    read one per page: each page has the rows of its one counter, and the pages
    added up by label are the report."""
    whole = _get(stack, "/v1/reports/attribution", shop["read"], dimension="source", **RANGE)
    pages = _attribution_pages(stack, shop["read"], dimension="source", limit="1", **RANGE)
    assert whole["next_cursor"] is None
    assert len([page for page in pages if page["rows"]]) == 3
    assert all(len(page["rows"]) <= 1 for page in pages)
    summed: dict[str, dict] = {}
    for row in (row for page in pages for row in page["rows"]):
        total = summed.setdefault(row["source"], {"counted": 0, "value": {}, "goals": set()})
        total["counted"] += row["counted"]
        for currency, amount in row["value"].items():
            total["value"][currency] = str(
                Decimal(total["value"].get(currency, 0)) + Decimal(amount)
            )
        total["goals"] |= set(row["goals"])
    assert summed == {
        row["source"]: {
            "counted": row["counted"],
            "value": row["value"],
            "goals": set(row["goals"]),
        }
        for row in whole["rows"]
    }


ATTRIBUTION_FORGERIES = {
    "a shard past the last": lambda real: {"shard": 4},
    "a negative shard": lambda real: {"shard": -1},
    "a shard as text": lambda real: {"shard": "0"},
    "a position before the range": lambda real: {"shard": 0, "after": "X#2026-10-31#"},
    "a position after the range": lambda real: {"shard": 0, "after": "X#2026-12-01#"},
    "a position of another kind": lambda real: {"shard": 0, "after": "D#2026-11-10"},
    "a position as a number": lambda real: {"shard": 0, "after": 7},
    "a position that is not UTF-8": lambda real: {"shard": 0, "after": "X#2026-11-10#\ud800"},
    "an unknown part": lambda real: real | {"offset": 1},
}


@pytest.mark.parametrize("forge", ATTRIBUTION_FORGERIES.values(), ids=ATTRIBUTION_FORGERIES)
def test_a_forged_attribution_cursor_is_400_naming_the_cursor(
    stack: InProcessStack, shop: dict, forge
) -> None:
    first = _get(stack, "/v1/reports/attribution", shop["read"], limit="1", **RANGE)
    forged = _cursor(json.dumps(forge(_cursor_data(first["next_cursor"]))))
    status, body = stack.api.request(
        "GET", "/v1/reports/attribution", shop["read"], query=RANGE | {"cursor": forged}
    )
    assert status == 400, body
    assert [p["field"] for p in body["error"]["fields"]] == ["cursor"]


def test_top_keywords_ranks_converting_keywords(stack: InProcessStack, shop: dict) -> None:
    top = _get(stack, "/v1/reports/top-keywords", shop["read"], limit="200", **RANGE)
    assert [(k["keyword"], k["counted"]) for k in top["keywords"]] == [("boiler repair", 1)]


def test_top_keywords_refuses_a_range_with_more_counters_than_it_reads(
    stack: InProcessStack, shop: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shop's range holds three attribution counters: a bound of three ranks
    them, a bound of two refuses the range instead of ranking a part of it."""
    monkeypatch.setattr(reports, "TOP_KEYWORDS_MAX_ITEMS", 3)
    _get(stack, "/v1/reports/top-keywords", shop["read"], **RANGE)
    monkeypatch.setattr(reports, "TOP_KEYWORDS_MAX_ITEMS", 2)
    status, body = stack.api.request("GET", "/v1/reports/top-keywords", shop["read"], query=RANGE)
    assert status == 400, body
    assert [p["field"] for p in body["error"]["fields"]] == ["from"]
    assert "more than 2 attribution counters" in body["error"]["fields"][0]["reason"]


def test_visitor_trace_shows_events_and_void_conversions_in_order(
    stack: InProcessStack, shop: dict
) -> None:
    trace = _get(stack, "/v1/visitors/ann/trace", shop["read"])
    kinds = [(item["kind"], item.get("event_id")) for item in trace["items"]]
    assert kinds == [
        ("event", "pv-1"),
        ("conversion", "pv-1"),
        ("event", "pv-2"),
        ("conversion", "pv-2"),
        ("event", "tx-1"),
        ("conversion", "tx-1"),
    ]
    void = trace["items"][3]
    assert void["status"] == "void"
    assert "visitor+goal" in void["reason"]
    assert void["duplicate_of"] == trace["items"][1]["conversion_id"]
    assert trace["items"][5]["value"] == {"amount": "25.00", "currency": "USD"}


def test_visitor_trace_pages(stack: InProcessStack, shop: dict) -> None:
    first = _get(stack, "/v1/visitors/ann/trace", shop["read"], limit="4")
    rest = _get(
        stack, "/v1/visitors/ann/trace", shop["read"], limit="4", cursor=first["next_cursor"]
    )
    assert len(first["items"]) == 4 and len(rest["items"]) == 2
    assert rest["next_cursor"] is None
    # The pages are the whole trace cut in two: every item exactly once, in order.
    whole = _get(stack, "/v1/visitors/ann/trace", shop["read"])
    assert whole["next_cursor"] is None
    assert first["items"] + rest["items"] == whole["items"]
    ids = [item.get("conversion_id") or item["event_id"] for item in whole["items"]]
    assert len(set(ids)) == len(ids) == 6


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_visitor_trace_pages_of_any_size_hold_each_item_once_in_order(
    stack: InProcessStack, shop: dict, limit: int
) -> None:
    whole = _get(stack, "/v1/visitors/ann/trace", shop["read"])["items"]
    paged, cursor = [], None
    for _ in range(len(whole) + 1):
        query = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        page = _get(stack, "/v1/visitors/ann/trace", shop["read"], **query)
        assert len(page["items"]) <= limit
        assert page["items"] or page["next_cursor"] is None  # no empty page leads on
        paged += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert paged == whole


def test_health_says_when_a_goal_last_matched(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    goals = {g["name"]: g["goal_id"] for g in _get(stack, "/v1/goals", read)["goals"]}
    now = datetime.now(UTC).replace(microsecond=0)
    call = {
        "event_id": "c-1",
        "type": "call",
        "call_id": "c-1",
        "connected": True,
        "bridged_seconds": 90,
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
    }
    assert stack.api.request("POST", "/v1/events", write, call)[0] == 202
    stack.evaluate_pending()
    healthy = _get(stack, f"/v1/goals/{goals['Call Qualified']}/health", read)
    silent = _get(stack, f"/v1/goals/{goals['Call Not Connected']}/health", read)
    assert healthy["status"] == "ok"
    assert healthy["last_match_at"].startswith((now - timedelta(hours=1)).date().isoformat())
    assert silent["status"] == "no_recent_match"
    assert silent["message"] == "no matching event in the last 24 hours"
    assert silent["last_match_at"] is None


def test_a_foreign_cursor_is_refused(stack: InProcessStack, shop: dict) -> None:
    first = _get(stack, "/v1/visitors/ann/trace", shop["read"], limit="1")
    status, body = stack.api.request(
        "GET", "/v1/visitors/bob/trace", shop["read"], query={"cursor": first["next_cursor"]}
    )
    assert status == 400
    assert body["error"]["fields"][0]["field"] == "cursor"


# -- hostile queries (issue 12, finding 9) ----------------------------------------

DATED_REPORTS = [
    "/v1/reports/goals",
    "/v1/reports/goals/{goal_id}/timeseries",
    "/v1/reports/attribution",
    "/v1/reports/top-keywords",
]


def _dated_report(template: str, shop: dict) -> str:
    return template.replace("{goal_id}", shop["goals"]["Big sale"])


@pytest.mark.parametrize("template", DATED_REPORTS)
def test_a_range_ending_before_the_default_start_can_exist_is_400_naming_to(
    stack: InProcessStack, shop: dict, template: str
) -> None:
    status, body = stack.api.request(
        "GET", _dated_report(template, shop), shop["read"], query={"to": "0001-01-01"}
    )
    assert status == 400, body
    assert [p["field"] for p in body["error"]["fields"]] == ["to"]


@pytest.mark.parametrize(
    "query",
    [
        {"to": "9999-12-31"},
        {"from": "9999-12-31", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "0001-01-31"},
        {"to": "0001-01-30"},
    ],
    ids=["last day alone", "last day", "first days", "first default range"],
)
@pytest.mark.parametrize("template", DATED_REPORTS)
def test_ranges_at_the_ends_of_the_calendar_are_answered(
    stack: InProcessStack, shop: dict, template: str, query: dict
) -> None:
    _get(stack, _dated_report(template, shop), shop["read"], **query)


def _cursor_data(cursor: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(cursor))


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# Each forgery turns the data of a real trace cursor into the JSON text of a forged one.
FORGERIES = {
    "a key left out": lambda real: json.dumps({k: v for k, v in real.items() if k != "sk"}),
    "a key added": lambda real: json.dumps(real | {"gsi2pk": "A#x"}),
    "a number for a key": lambda real: json.dumps(real | {"sk": 5}),
    "an empty key": lambda real: json.dumps(real | {"gsi1sk": ""}),
    "a key longer than DynamoDB takes": lambda real: json.dumps(real | {"sk": "s" * 1100}),
    "a key that is not UTF-8": lambda real: json.dumps(real | {"sk": "\ud800"}),
    "a list": lambda real: json.dumps([real]),
    "nested 1,500 deep": lambda real: "[" * 1500,  # base64: within the 2,048 characters
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_trace_cursor_is_400_naming_the_cursor(
    stack: InProcessStack, shop: dict, forge
) -> None:
    first = _get(stack, "/v1/visitors/ann/trace", shop["read"], limit="1")
    forged = _cursor(forge(_cursor_data(first["next_cursor"])))
    status, body = stack.api.request(
        "GET", "/v1/visitors/ann/trace", shop["read"], query={"cursor": forged}
    )
    assert status == 400, body
    assert [p["field"] for p in body["error"]["fields"]] == ["cursor"]
