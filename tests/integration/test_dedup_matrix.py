"""DESIGN §3 de-duplication, as table-driven scenarios through the real stack.

Each scenario: goal G (the goal under test) and goal H (another goal, never
de-duplicated) exist; a first event is counted for G or H; then a second event
matches G. Oracle: the second is void exactly when the first was counted
inside G's window and agrees with it on every key of G's de-dup rule
(visitor, goal, transaction reference...). A goal de-duplicated on "visitor"
only therefore also looks at the other goal's conversions.
"""

import itertools
from datetime import datetime, timedelta

import pytest

from support.stack import InProcessStack

START = datetime(2026, 8, 1, 12, 0, 0)
KEY_SETS = (
    ("visitor",),
    ("visitor", "goal"),
    ("visitor", "transaction_ref"),
    ("visitor", "goal", "transaction_ref"),
    ("goal", "transaction_ref"),
    ("visit",),
)
WINDOWS = (None, 7)


def _goal(stack: InProcessStack, write: str, name: str, **extra: object) -> str:
    spec = {"name": name, "rule": {"kind": "custom_trigger", "name": name}} | extra
    status, goal = stack.api.request("POST", "/v1/goals", write, spec)
    assert status == 201, goal
    return goal["goal_id"]


def _trigger(
    event_id: str, name: str, at: datetime, ref: str, visit: str = "visit-1", **extra: object
) -> dict:
    return {
        "event_id": event_id,
        "type": "custom_trigger",
        "name": name,
        "occurred_at": at.isoformat() + "Z",
        "visitor_id": "visitor-1",
        "visit_id": visit,
        "transaction": {"value": "10", "currency": "USD", "reference": ref},
    } | extra


def _statuses(stack: InProcessStack) -> dict[tuple[str, str], str]:
    return {
        (item["event_id"], item["goal_id"]): item["status"]
        for item in stack.items()
        if item.get("kind") == "conversion"
    }


def _send(stack: InProcessStack, write: str, *events: dict) -> None:
    for event in events:
        status, body = stack.api.request("POST", "/v1/events", write, event)
        assert status == 202, body
        stack.evaluate_pending()  # decisions are made in arrival order


SCENARIOS = [
    pytest.param(
        keys,
        window,
        same_goal,
        same_ref,
        same_visit,
        inside,
        id=f"{'+'.join(keys)}"
        f"-{'forever' if window is None else f'{window}d'}-{'same' if same_goal else 'other'}"
        f"goal-{'same' if same_ref else 'other'}ref-{'same' if same_visit else 'other'}"
        f"visit-{'inside' if inside else 'outside'}",
    )
    for keys, window, same_goal, same_ref, same_visit, inside in itertools.product(
        KEY_SETS, WINDOWS, (True, False), (True, False), (True, False), (True, False)
    )
    if not (window is None and not inside)  # "outside forever" does not exist
]


@pytest.mark.parametrize(
    ("keys", "window", "same_goal", "same_ref", "same_visit", "inside"), SCENARIOS
)
def test_second_conversion_is_void_exactly_when_every_key_agrees_within_the_window(
    stack: InProcessStack,
    keys: tuple[str, ...],
    window: int | None,
    same_goal: bool,
    same_ref: bool,
    same_visit: bool,
    inside: bool,
) -> None:
    write = stack.new_account()["keys"]["write"]
    goal = _goal(stack, write, "signup", dedup={"keys": list(keys), "window_days": window})
    other = _goal(stack, write, "purchase", dedup={"keys": []})
    later = START + timedelta(days=3 if inside else 10)
    first = _trigger("e-1", "signup" if same_goal else "purchase", START, "ref-1")
    second = _trigger(
        "e-2",
        "signup",
        later,
        "ref-1" if same_ref else "ref-2",
        visit="visit-1" if same_visit else "visit-2",
    )
    _send(stack, write, first, second)

    agrees = {"visitor": True, "goal": same_goal, "transaction_ref": same_ref, "visit": same_visit}
    expected_void = inside and all(agrees[key] for key in keys)
    statuses = _statuses(stack)
    assert statuses[("e-1", goal if same_goal else other)] == "counted"
    assert statuses[("e-2", goal)] == ("void" if expected_void else "counted")


def test_other_visitors_never_void_each_other(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    goal = _goal(stack, write, "signup", dedup={"keys": ["visitor"]})
    first = _trigger("e-1", "signup", START, "ref-1")
    second = _trigger("e-2", "signup", START, "ref-1", visitor_id="visitor-2")
    _send(stack, write, first, second)
    assert _statuses(stack)[("e-2", goal)] == "counted"


@pytest.mark.parametrize(
    ("option", "field", "same", "expected"),
    [
        ("once_per_visit", "visit_id", True, "void"),
        ("once_per_visit", "visit_id", False, "counted"),
        ("once_per_contact", "contact_id", True, "void"),
        ("once_per_contact", "contact_id", False, "counted"),
    ],
)
def test_once_per_visit_and_once_per_contact(
    stack: InProcessStack, option: str, field: str, same: bool, expected: str
) -> None:
    write = stack.new_account()["keys"]["write"]
    goal = _goal(stack, write, "signup", dedup={"keys": []}, **{option: True})
    first = _trigger("e-1", "signup", START, "ref-1", **{field: "scope-1"})
    second = _trigger("e-2", "signup", START, "ref-2", **{field: "scope-1" if same else "scope-2"})
    _send(stack, write, first, second)
    assert _statuses(stack)[("e-2", goal)] == expected


def test_one_event_reaching_two_goals_counts_for_both(stack: InProcessStack) -> None:
    """'No counted goal before' means before this event: a visitor-only goal is not
    voided by another goal the same event reached."""
    write = stack.new_account()["keys"]["write"]
    first = _goal(stack, write, "signup", dedup={"keys": ["visitor", "goal"]})
    spec = {
        "name": "any",
        "rule": {"kind": "custom_trigger", "name": "signup"},
        "dedup": {"keys": ["visitor"]},
    }
    second = stack.api.request("POST", "/v1/goals", write, spec)[1]["goal_id"]
    _send(stack, write, _trigger("e-1", "signup", START, "ref-1"))
    statuses = _statuses(stack)
    assert statuses[("e-1", first)] == statuses[("e-1", second)] == "counted"


def _call(event_id: str, day: int, caller: str = "+442071234567") -> dict:
    return {
        "event_id": event_id,
        "type": "call",
        "call_id": event_id,
        "occurred_at": (START + timedelta(days=day)).isoformat() + "Z",
        "caller_number": caller,
        "connected": True,
        "bridged_seconds": 120,
    }


def test_target_calls_count_a_caller_once_per_30_day_sales_cycle(stack: InProcessStack) -> None:
    write = stack.new_account()["keys"]["write"]
    spec = {
        "name": "Target call",
        "rule": {"kind": "call", "connected": True, "first_time_caller_days": 30},
    }
    status, goal = stack.api.request("POST", "/v1/goals", write, spec)
    assert status == 201
    target = goal["goal_id"]
    calls = [
        _call("c-day0", 0),
        _call("c-day10", 10),  # within 30 days of the counted day-0 call
        _call("c-other", 11, caller="+15551234567"),  # another caller: first time
        _call("c-day45", 45),  # 45 days after the last counted call
        _call("c-day60", 60),  # 15 days after day 45
    ]
    _send(stack, write, *calls)
    statuses = _statuses(stack)
    assert [statuses[(call["event_id"], target)] for call in calls] == [
        "counted",
        "void",
        "counted",
        "counted",
        "void",
    ]
