"""The dry-run's simulation, pure: matches judged in time order against the claims
stored before, as evaluation would have judged them (no table, no stack)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from goalkeeper.crediting import Credit
from goalkeeper.dedup import ConversionPlan, Layout, Slot, judge_in_order
from goalkeeper.dedup import plan_conversion as plan_for
from goalkeeper.history import stored_event
from goalkeeper.models.goals import Goal, GoalSpec
from goalkeeper.steps import Span

ACCOUNT = "acc-1"
T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)
WINDOW = Layout(("visitor",), 30)


def _goal(**spec: Any) -> Goal:
    spec = {"name": "Signup", "rule": {"kind": "custom_trigger", "name": "signup"}} | spec
    return Goal.from_spec(GoalSpec.model_validate(spec), "g-new", 1, T0, T0)


def _plan(goal: Goal, event_id: str, days: float, visitor: str = "v-1") -> ConversionPlan:
    at = T0 + timedelta(days=days)
    body = {
        "event_id": event_id,
        "type": "custom_trigger",
        "name": "signup",
        "visitor_id": visitor,
        "occurred_at": at.isoformat(),
    }
    return plan_for(
        account_id=ACCOUNT,
        event=stored_event({"body": body}),
        event_id=event_id,
        occurred_at=at,
        goal=goal,
        layouts=frozenset({WINDOW}),
        day=at.date().isoformat(),
        shards=1,
        value=None,
        credit=Credit.none(),
    )


def _stored(plan: ConversionPlan, conversion: str) -> dict[Slot, Span]:
    """A claim holding one counted conversion of another goal, at `plan`'s time."""
    (slot,) = [slot for slot in plan.writes if slot.layout == WINDOW]
    at = plan.occurred_at
    state = Span(f"{at}#x", at, conversion, f"{at}#x", at, conversion)
    return {slot: state}


def _outcome(judged: list) -> list[tuple[str, str, str | None]]:
    return [(plan.event_id, d.status, d.duplicate_of) for plan, d in judged]


def test_matches_are_judged_in_time_order_whatever_order_they_come_in() -> None:
    goal = _goal(dedup={"keys": ["visitor"], "window_days": 30})
    first, second, third = (
        _plan(goal, name, days) for name, days in (("a", 0), ("b", 5), ("c", 31))
    )

    judged = judge_in_order([third, second, first], {})

    assert _outcome(judged) == [
        ("a", "counted", None),
        ("b", "void", first.conversion_id),
        ("c", "counted", None),  # 31 days after a
    ]
    assert judged[1][1].reason == "duplicate under key visitor within 30 days"


def test_a_void_match_claims_nothing() -> None:
    goal = _goal(dedup={"keys": ["visitor"], "window_days": 30})
    plans = [_plan(goal, "a", 0), _plan(goal, "b", 20), _plan(goal, "c", 35)]

    # c is 15 days after b, but b is void: only a (35 days before) could void it.
    assert [d.status for _, d in judge_in_order(plans, {})] == ["counted", "void", "counted"]


@pytest.mark.parametrize(
    ("days", "visitor", "expected"),
    [
        (9, "v-1", ("counted", None)),  # 31 days before the stored conversion
        (11, "v-1", ("void", "c-stored")),  # 29 days before
        (69.5, "v-1", ("void", "c-stored")),  # 29.5 days after
        (71, "v-1", ("counted", None)),  # 31 days after
        (40, "v-2", ("counted", None)),
    ],
)
def test_stored_conversions_void_matches_within_the_window_on_either_side(
    days: float, visitor: str, expected: tuple[str, str | None]
) -> None:
    goal = _goal(dedup={"keys": ["visitor"], "window_days": 30})
    stored = _stored(_plan(goal, "stored-event", 40), "c-stored")

    ((_, decision),) = judge_in_order([_plan(goal, "e", days, visitor)], stored)

    assert (decision.status, decision.duplicate_of) == expected


def test_a_stored_conversion_of_the_same_event_does_not_void_it() -> None:
    goal = _goal(dedup={"keys": ["visitor"], "window_days": 30})
    plan = _plan(goal, "a", 3)
    (slot,) = [slot for slot in plan.writes if slot.layout == WINDOW]
    own = Span(plan.order_key, plan.occurred_at, "c-x", plan.order_key, plan.occurred_at, "c-x")

    assert _outcome(judge_in_order([plan], {slot: own})) == [("a", "counted", None)]


def test_a_goal_keyed_check_sees_only_the_dry_runs_own_matches() -> None:
    goal = _goal(dedup={"keys": ["visitor", "goal"]})
    plans = [_plan(goal, "a", 0), _plan(goal, "b", 300)]
    other_goal = _stored(_plan(goal, "x", -1), "c-other")

    assert _outcome(judge_in_order(plans, other_goal)) == [
        ("a", "counted", None),
        ("b", "void", plans[0].conversion_id),
    ]
