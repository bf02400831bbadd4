"""The decision transaction and what a cancellation teaches it, without DynamoDB: claim
periods and their neighbours, writes that only widen a period, and void reasons read
by tag from synthetic cancellation reasons."""

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from goalkeeper.crediting import Credit
from goalkeeper.dal.decisions import DecisionState, StepFill, chunks
from goalkeeper.dal.transactions import MAX_ITEMS, Reason
from goalkeeper.dedup import ConversionPlan, Layout, library_layouts, plan_conversion
from goalkeeper.models.events import Event
from goalkeeper.models.goals import Goal, GoalSpec
from goalkeeper.steps import FunnelShape, Links, Span

NOW = datetime(2026, 9, 30, 12, tzinfo=UTC)
EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def _goal(goal_id: str, keys: list[str], window: int | None) -> Goal:
    spec = GoalSpec.model_validate(
        {
            "name": goal_id,
            "rule": {"kind": "custom_trigger", "name": "buy"},
            "dedup": {"keys": keys, "window_days": window},
        }
    )
    return Goal.from_spec(spec, goal_id, 1, NOW, NOW)


def _plan(goal: Goal, event_id: str, at: datetime, layouts: frozenset[Layout]) -> ConversionPlan:
    event = EVENT.validate_python(
        {"type": "custom_trigger", "name": "buy", "visitor_id": "v1", "occurred_at": at}
    )
    return plan_conversion(
        account_id="acc",
        event=event,  # type: ignore[arg-type]
        event_id=event_id,
        occurred_at=at,
        goal=goal,
        layouts=layouts,
        day=at.date().isoformat(),
        shards=1,
        value=None,
        credit=Credit.none(),
    )


def _items(state: DecisionState) -> dict[Any, dict[str, Any]]:
    return state.transaction("table").tagged()


WEEKLY = _goal("weekly", ["visitor"], 7)
EVERY = _goal("every", [], None)
LAYOUTS = library_layouts([WEEKLY, EVERY])


def test_a_weekly_check_reads_its_own_period_and_both_neighbours() -> None:
    plan = _plan(WEEKLY, "e1", NOW, LAYOUTS)
    (check,) = plan.checks
    tags = set(_items(DecisionState([plan])))
    assert {("claim", check.slot), ("before", check.slot.neighbour(-1))} <= tags
    assert ("after", check.slot.neighbour(1)) in tags
    lower, upper = check.bounds()
    assert (lower, upper) == ("2026-09-23T12:00:00.000000Z", "2026-10-07T12:00:00.000000Z")


def test_a_goal_that_checks_nothing_still_widens_the_periods_others_check() -> None:
    plan = _plan(EVERY, "e1", NOW, LAYOUTS)
    assert plan.checks == ()
    items = _items(DecisionState([plan]))
    (claim_tag,) = [tag for tag in items if tag[0] == "claim"]
    update = items[claim_tag]["Update"]
    # hi moves forward only: the write holds only while the period ends at or before it.
    assert "<=" in update["ConditionExpression"]
    assert "if_not_exists" in update["UpdateExpression"]  # lo is kept when there is one
    assert not [tag for tag in items if tag[0] in ("before", "after")]


def test_a_period_that_already_spans_the_event_is_not_written_again() -> None:
    plan = _plan(EVERY, "e1", NOW, LAYOUTS)
    (slot,) = plan.writes
    state = DecisionState([plan])
    earlier, later = NOW - timedelta(days=1), NOW + timedelta(days=1)
    state.claims[slot] = Span(
        lo_key=f"{earlier:%Y-%m-%dT%H:%M:%S.%fZ}#x",
        lo_at="x",
        hi_key=f"{later:%Y-%m-%dT%H:%M:%S.%fZ}#y",
        hi_at="y",
    )
    assert not [tag for tag in _items(state) if tag[0] == "claim"]
    # ... and one that starts after it only moves its start back, under a condition.
    state.claims[slot] = Span(lo_key="2027#x", lo_at="2027", hi_key="2028#y", hi_at="2028")
    update = _items(state)[("claim", slot)]["Update"]
    assert update["ConditionExpression"].endswith("> :v0")
    assert "hi_" not in str(update["ExpressionAttributeNames"].values())


def test_a_cancelled_neighbour_makes_the_check_void_naming_the_conversion_there() -> None:
    plan = _plan(WEEKLY, "e1", NOW, LAYOUTS)
    (check,) = plan.checks
    state = DecisionState([plan])
    before = check.slot.neighbour(-1)
    three_days_earlier = "2026-09-27T12:00:00.000000Z"
    reasons = {tag: Reason("None", {}) for tag in _items(state)}
    reasons[("before", before)] = Reason(
        "ConditionalCheckFailed",
        {"hi_at": three_days_earlier, "hi_key": f"{three_days_earlier}#e0", "hi_conversion": "c0"},
    )
    assert state.learn(reasons) is True
    void = state.voids["weekly"]
    assert (void.status, void.duplicate_of) == ("void", "c0")
    assert void.reason == "duplicate under key visitor within 7 days"
    # The next attempt writes the void conversion and no claim of the weekly goal.
    assert not [tag for tag in _items(state) if tag[0] in ("claim", "before", "after")]


def test_a_period_holding_only_this_events_conversions_blocks_none_of_them() -> None:
    plan = _plan(WEEKLY, "e1", NOW, LAYOUTS)
    (check,) = plan.checks
    own = Span(lo_key=plan.order_key, hi_key=plan.order_key, hi_at="", lo_at="")
    assert check.blocking_in_own(own) is None
    other = Span(lo_key=plan.order_key, hi_key="~later", hi_conversion="c9")
    assert check.blocking_in_own(other) == "c9"


def test_a_conversion_decided_before_is_kept_as_it_was() -> None:
    plan = _plan(WEEKLY, "e1", NOW, LAYOUTS)
    state = DecisionState([plan])
    reasons = {tag: Reason("None", {}) for tag in _items(state)}
    reasons[("conversion", "weekly")] = Reason(
        "ConditionalCheckFailed", {"status": "void", "reason": "r", "duplicate_of": "c1"}
    )
    assert state.learn(reasons) is True
    assert state.done
    (decision,) = state.results()
    assert (decision.status, decision.duplicate_of, decision.replayed) == ("void", "c1", True)


def test_an_event_reaching_many_goals_is_split_into_transactions_that_fit() -> None:
    goals = [_goal(f"g{n:02d}", ["visitor", "goal"], 30) for n in range(40)]
    layouts = library_layouts(goals)
    plans = [_plan(goal, "e1", NOW, layouts) for goal in goals]
    groups = chunks(plans, None, "table")
    assert len(groups) > 1
    assert sum(len(group.plans) for group in groups) == len(plans)
    assert all(len(group.transaction("table")) <= MAX_ITEMS for group in groups)


# -- a stored conversion put on a funnel's step after the fact (a funnel backfill) --------

FUNNEL = FunnelShape("fun_1", ("every", "weekly"), 7)


def _fill(has_funnels: bool) -> StepFill:
    """WEEKLY's conversion at NOW, step 2 of FUNNEL (after EVERY)."""
    plan = plan_conversion(
        account_id="acc",
        event=EVENT.validate_python(  # type: ignore[arg-type]
            {"type": "custom_trigger", "name": "buy", "visitor_id": "v1", "occurred_at": NOW}
        ),
        event_id="e2",
        occurred_at=NOW,
        goal=WEEKLY,
        layouts=LAYOUTS,
        day=NOW.date().isoformat(),
        shards=1,
        value=None,
        credit=Credit.none(),
        links=Links.build((), [FUNNEL]),
    )
    return StepFill(plan, has_funnels)


def test_a_step_is_put_only_when_the_previous_step_is_known_to_be_reached() -> None:
    fill = _fill(has_funnels=False)
    after = fill.step.after
    assert after is not None and after.own is not None
    assert not fill.reached()  # nothing known on the previous step's track
    earlier = NOW - timedelta(hours=1)
    fill.progress[after.own] = Span(f"{earlier:%Y}#e1", earlier.isoformat(), "c1")
    assert fill.reached()

    items = fill.transaction("table").tagged()
    update = items["conversion"]["Update"]
    # No funnel record on the conversion yet: the map is created, on that condition.
    assert "attribute_not_exists(#n" in update["ConditionExpression"]
    (record,) = [
        v["M"]["fun_1"]["M"] for v in update["ExpressionAttributeValues"].values() if "M" in v
    ]
    assert (record["step"], record["previous_conversion"]) == ({"N": "2"}, {"S": "c1"})
    # The step rests on the own period's earliest conversion: named by an equality.
    check = items[("progress", after.own)]["ConditionCheck"]
    assert " = " in check["ConditionExpression"]
    assert {"S": f"{earlier:%Y}#e1"} in check["ExpressionAttributeValues"].values()
    assert ("funnel", "fun_1") in items


def test_what_a_cancelled_step_write_teaches() -> None:
    fill = _fill(has_funnels=False)

    def conversion_holds(item: dict[str, Any]) -> bool:
        return fill.learn({"conversion": Reason("ConditionalCheckFailed", item)})

    # Another funnel's record is there: the next attempt adds to the map.
    assert conversion_holds({"status": "counted", "funnels": {"fun_0": {"step": 1}}})
    assert fill.has_funnels and fill.on_step is None
    assert not conversion_holds({"status": "counted", "funnels": {"fun_0": {"step": 1}}})
    # This funnel's record is there (a racing run or evaluation put it): settled.
    assert conversion_holds({"status": "counted", "funnels": {"fun_1": {"step": 2}}})
    assert fill.on_step is True
    # No longer a counted conversion: never on a step.
    fill = _fill(has_funnels=True)
    assert conversion_holds({"status": "void"})
    assert fill.on_step is False
