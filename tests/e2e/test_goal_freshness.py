"""Goal changes apply at once (issue 13, part 1), over `goalkeeper serve`: every event
received after a goal change was answered 2xx is evaluated with that change, while
the evaluation function keeps the account's library warm between batches."""

import time
from collections.abc import Iterator
from typing import Any

import pytest

from support.served import ServedStack

ROUNDS = 50


@pytest.fixture(scope="module")
def served(serve_engine: str) -> Iterator[ServedStack]:
    stack = ServedStack("freshness-admin-key", ["--engine", serve_engine])
    yield stack
    stack.stop()


def _account(served: ServedStack) -> tuple[str, str]:
    account = served.request("POST", "/v1/accounts", served.admin_key, {})[1]
    return account["keys"]["write"], account["keys"]["read"]


def _goal(served: ServedStack, write: str, trigger: str) -> str:
    spec = {"name": trigger, "rule": {"kind": "custom_trigger", "name": trigger}}
    status, goal = served.request("POST", "/v1/goals", write, spec)
    assert status == 201, goal
    return goal["goal_id"]


def _send(served: ServedStack, write: str, event_id: str, trigger: str) -> None:
    event = {
        "event_id": event_id,
        "type": "custom_trigger",
        "name": trigger,
        "visitor_id": f"visitor-{event_id}",  # one visitor per event: visitors seen count them
    }
    status, body = served.request("POST", "/v1/events", write, event)
    assert status == 202, body


def _evaluated(served: ServedStack, read: str, events: int) -> dict[str, Any]:
    """The goals report once `events` events (one visitor each) have been evaluated:
    every evaluated event counts its visitor among the visitors seen."""
    deadline = time.monotonic() + 120
    while True:
        report = served.request("GET", "/v1/reports/goals", read)[1]
        if report["visitors_seen"] >= events or time.monotonic() > deadline:
            assert report["visitors_seen"] == events
            return {row["goal_id"]: row for row in report["goals"]}
        time.sleep(0.2)


@pytest.mark.server
def test_a_goal_created_just_before_its_first_event_counts_it_every_time(
    served: ServedStack,
) -> None:
    write, read = _account(served)
    _goal(served, write, "warm-up")
    _send(served, write, "warm-up-1", "warm-up")
    _evaluated(served, read, 1)  # the evaluation function now holds the library

    goals = []
    for n in range(ROUNDS):
        goals.append(_goal(served, write, f"trigger-{n}"))
        _send(served, write, f"event-{n}", f"trigger-{n}")
    rows = _evaluated(served, read, ROUNDS + 1)
    assert [rows[goal]["counted"] for goal in goals] == [1] * ROUNDS


@pytest.mark.server
def test_a_replaced_goal_applies_its_new_rule_to_the_next_event(served: ServedStack) -> None:
    write, read = _account(served)
    goal = _goal(served, write, "old-name")
    _send(served, write, "before", "old-name")
    _evaluated(served, read, 1)

    spec = {"name": "renamed", "rule": {"kind": "custom_trigger", "name": "new-name"}}
    status, body = served.request("PUT", f"/v1/goals/{goal}", write, spec)
    assert status == 200, body
    _send(served, write, "old-after", "old-name")
    _send(served, write, "new-after", "new-name")
    rows = _evaluated(served, read, 3)
    assert rows[goal]["counted"] == 2  # "before" (old rule) and "new-after" (new rule)
    trace = served.request("GET", "/v1/visitors/visitor-old-after/trace", read)[1]
    assert [item["kind"] for item in trace["items"]] == ["event"]


@pytest.mark.server
def test_a_deactivated_goal_is_reached_by_no_later_event(served: ServedStack) -> None:
    write, read = _account(served)
    goal = _goal(served, write, "retired")
    _send(served, write, "before", "retired")
    _evaluated(served, read, 1)

    status, body = served.request("DELETE", f"/v1/goals/{goal}", write)
    assert status == 200, body
    _send(served, write, "after", "retired")
    rows = _evaluated(served, read, 2)
    assert rows[goal]["counted"] == 1
    trace = served.request("GET", "/v1/visitors/visitor-after/trace", read)[1]
    assert [item["kind"] for item in trace["items"]] == ["event"]
