"""Big goal libraries (issue 12, findings 3, 5 and 7): an event reaching dozens of goals
is decided for every one of them, no counters item grows with the library, and the
markers that count a visitor once per day are kept as long as the counters."""

from datetime import datetime, timedelta

import pytest

from goalkeeper import counters
from goalkeeper_cli.local_stack.template import load_template
from support.faults import FaultInjector
from support.stack import InProcessStack

pytestmark = pytest.mark.long

GOALS = 40
T = datetime(2026, 9, 1, 12, 0, 0)
DEDUPS = [
    {"keys": ["visitor"], "window_days": 7},
    {"keys": ["visitor", "goal"], "window_days": 30},
    {"keys": ["visitor", "transaction_ref"]},
    {"keys": ["visit"], "window_days": 1},
    {"keys": []},
]


def _library(stack: InProcessStack, write: str) -> list[str]:
    goal_ids = []
    for n in range(GOALS):
        spec = {
            "name": f"sale {n}",
            "rule": {"kind": "custom_trigger", "name": "sale"},
            "dedup": DEDUPS[n % len(DEDUPS)],
            "once_per_visit": n % 7 == 0,
            "value": {"type": "fixed", "amount": "5", "currency": "EUR"},
        }
        status, goal = stack.api.request("POST", "/v1/goals", write, spec)
        assert status == 201, goal
        goal_ids.append(goal["goal_id"])
    return goal_ids


def _sale(event_id: str, days: float, visit: str = "s1") -> dict:
    return {
        "event_id": event_id,
        "type": "custom_trigger",
        "name": "sale",
        "occurred_at": (T + timedelta(days=days)).isoformat() + "Z",
        "visitor_id": "v1",
        "visit_id": visit,
        "transaction": {"value": "100", "currency": "EUR", "reference": event_id},
    }


def test_an_event_reaching_forty_goals_is_decided_for_every_one(stack: InProcessStack) -> None:
    account_keys = stack.new_account()["keys"]
    write = account_keys["write"]
    goal_ids = _library(stack, write)
    for event in (_sale("first", 0), _sale("second", 2, visit="s2")):
        assert stack.api.request("POST", "/v1/events", write, event)[0] == 202
        stack.evaluate_pending()
    items = stack.items()
    assert not stack.dead_letters.exists() or not stack.dead_letters.read_text()
    decided = {
        (item["event_id"], item["goal_id"]): item["status"]
        for item in items
        if item.get("kind") == "conversion"
    }
    assert {decided[("first", goal)] for goal in goal_ids} == {"counted"}
    second = [decided[("second", goal)] for goal in goal_ids]
    # Two days later in another visit: the 7-day visitor and 30-day visitor+goal goals
    # are duplicates; a new transaction reference, visit or no key at all counts.
    expected = ["void", "void", "counted", "counted", "counted"] * (GOALS // len(DEDUPS))
    assert second == expected

    status, report = stack.api.request(
        "GET",
        "/v1/reports/goals",
        account_keys["read"],
        query={"from": "2026-09-01", "to": "2026-09-03"},
    )
    assert status == 200
    rows = {row["goal_id"]: row for row in report["goals"]}
    assert sum(rows[goal]["counted"] for goal in goal_ids) == GOALS + second.count("counted")
    assert sum(rows[goal]["void"] for goal in goal_ids) == second.count("void")
    assert rows[goal_ids[2]]["value"] == {"EUR": "10.00"}


def test_no_counters_item_holds_more_than_one_goals_counters(stack: InProcessStack) -> None:
    """The day's counters used to be one item for every goal (~141 bytes a goal, past
    DynamoDB's 400 KB item limit after ~2,900 converting goals)."""
    write = stack.new_account()["keys"]["write"]
    _library(stack, write)
    assert stack.api.request("POST", "/v1/events", write, _sale("first", 0))[0] == 202
    stack.evaluate_pending()
    kinds = (counters.DAY_KIND, counters.GOAL_DAY_KIND)
    counter_items = [item for item in stack.items() if item.get("kind") in kinds]
    assert len(counter_items) == GOALS + 1
    fixed = {"pk", "sk", "kind", "day", "goal_id", counters.LAST_MATCH_AT}
    fixed |= {counters.COUNTED, counters.VOID, counters.VISITORS_CONVERTED}
    for item in counter_items:
        # Fixed attributes, plus one value per currency: nothing per goal.
        extra = set(item) - fixed - {counters.VISITORS_SEEN}
        assert extra <= {counters.value_attribute("EUR")}, sorted(extra)


def test_visitor_markers_are_kept_as_long_as_the_counters(stack: InProcessStack) -> None:
    """A marker DynamoDB deleted would let a late event of its day count the visitor
    again; markers carry no expiry (the table's TTL attribute)."""
    table = next(
        resource
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::DynamoDB::Table"
    )
    ttl_attribute = table["Properties"]["TimeToLiveSpecification"]["AttributeName"]
    write = stack.new_account()["keys"]["write"]
    _library(stack, write)
    assert stack.api.request("POST", "/v1/events", write, _sale("first", 0))[0] == 202
    stack.evaluate_pending()
    markers = [item for item in stack.items() if item.get("kind") == "visitor_marker"]
    assert len(markers) == GOALS + 1  # one per goal converted, one for the visit seen
    assert not [marker for marker in markers if ttl_attribute in marker]


def test_distinct_dedup_layouts_are_bounded_and_the_bound_still_decides(
    stack: InProcessStack,
) -> None:
    """Every counted conversion writes a claim per distinct layout (keys without
    'goal', with a window): at the bound, one event reaching every goal is decided."""
    from goalkeeper.dedup import MAX_SHARED_LAYOUTS

    write = stack.new_account()["keys"]["write"]

    def create(window: int) -> tuple[int, dict]:
        spec = {
            "name": f"{window}-day visitor",
            "rule": {"kind": "custom_trigger", "name": "sale"},
            "dedup": {"keys": ["visitor"], "window_days": window},
        }
        return stack.api.request("POST", "/v1/goals", write, spec)

    goal_ids = []
    for window in range(1, MAX_SHARED_LAYOUTS + 1):
        status, goal = create(window)
        assert status == 201, goal
        goal_ids.append(goal["goal_id"])
    status, refused = create(MAX_SHARED_LAYOUTS + 1)
    assert status == 409
    assert refused["error"]["fields"][0]["field"] == "dedup"
    assert create(5)[0] == 201  # a layout the library already uses adds no write

    assert stack.api.request("POST", "/v1/events", write, _sale("first", 0))[0] == 202
    stack.evaluate_pending()
    statuses = {
        item["goal_id"]: item["status"]
        for item in stack.items()
        if item.get("kind") == "conversion" and item["event_id"] == "first"
    }
    assert [statuses[goal] for goal in goal_ids] == ["counted"] * MAX_SHARED_LAYOUTS


def test_a_write_dynamodb_refuses_as_invalid_fails_its_event_alone_and_alerts(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ValidationException is a defect to alert on, not a busy store: the event's record
    fails alone (the events after it are decided, not deferred as after an outage) and
    counts in the DecisionWritesRejected metric (an error log says which event)."""
    from aws_lambda_powertools import Metrics

    from goalkeeper import runtime

    metrics: list[str] = []
    monkeypatch.setattr(
        Metrics, "add_metric", lambda _self, name, *_args, **_kw: metrics.append(name)
    )
    write = stack.new_account()["keys"]["write"]
    _library(stack, write)
    events = [_sale("before", 0), _sale("bad", 1), _sale("after", 2)]
    assert stack.api.request("POST", "/v1/events", write, {"events": events})[0] == 202
    # DynamoDB refuses every decision transaction of event "bad" as invalid.
    faults = FaultInjector(rate=0, seed=1).refuse(
        "TransactWriteItems", lambda request: b'"event_id": {"S": "bad"}' in request.body
    )
    faults.attach(runtime.dal().client)
    try:
        stack.evaluate_pending()
    finally:
        faults.detach()
    assert faults.total(operation="TransactWriteItems") >= 1
    decided = {item["event_id"] for item in stack.items() if item.get("kind") == "conversion"}
    assert decided == {"before", "after"}
    assert "DecisionWritesRejected" in metrics
    assert '"event_id": {"S": "bad"}' in stack.dead_letters.read_text()  # kept for a redrive
