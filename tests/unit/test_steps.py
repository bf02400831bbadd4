"""Steps without DynamoDB (goalkeeper.steps, dal.decisions): which progress item a
prerequisite or a funnel step rests on, the conditions its write carries, what a
cancellation teaches, keeping a check and a write of one item apart, and the
seconds-to-convert histogram."""

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from goalkeeper.crediting import Credit
from goalkeeper.dal.decisions import DecisionState, chunks
from goalkeeper.dal.transactions import Reason
from goalkeeper.dedup import ConversionPlan, library_layouts, plan_conversion
from goalkeeper.models.common import iso
from goalkeeper.models.events import Event
from goalkeeper.models.goals import Goal, GoalSpec
from goalkeeper.steps import (
    FunnelShape,
    Links,
    Span,
    bucket_bounds,
    bucket_value,
    median_bucket,
    seconds_bucket,
)

NOW = datetime(2026, 9, 30, 12, tzinfo=UTC)
EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def _goal(goal_id: str, requires: str | None = None, within: int = 7) -> Goal:
    spec: dict[str, Any] = {"name": goal_id, "rule": {"kind": "custom_trigger", "name": "x"}}
    if requires:
        spec["requires"] = {"goal_id": requires, "within_days": within}
    return Goal.from_spec(GoalSpec.model_validate(spec), goal_id, 1, NOW, NOW)


FORM, BUY = _goal("form"), _goal("buy", requires="form", within=7)
LINKS = Links.build([("form", 7)], [FunnelShape("f1", ("form", "buy"), 3)])


def _plan(goal: Goal, event_id: str = "e1", at: datetime = NOW, **who: str) -> ConversionPlan:
    who = {"visitor_id": "v1"} if not who else {k: v for k, v in who.items() if v}
    event = EVENT.validate_python({"type": "custom_trigger", "name": "x", "occurred_at": at} | who)
    return plan_conversion(
        account_id="acc",
        event=event,  # type: ignore[arg-type]
        event_id=event_id,
        occurred_at=at,
        goal=goal,
        layouts=library_layouts([FORM, BUY]),
        day=at.date().isoformat(),
        shards=1,
        value=None,
        credit=Credit.none(),
        links=LINKS,
    )


def _items(state: DecisionState) -> dict[Any, dict[str, Any]]:
    return state.transaction("table").tagged()


def _span(at: datetime, event_id: str, conversion: str) -> dict[str, str]:
    key = f"{iso(at)}#{event_id}"
    return {
        "lo_key": key,
        "lo_at": iso(at),
        "lo_conversion": conversion,
        "hi_key": key,
        "hi_at": iso(at),
        "hi_conversion": conversion,
    }


def test_not_met_is_void_with_conditions_that_nothing_earlier_is_there() -> None:
    plan = _plan(BUY)
    state = DecisionState([plan])
    assert state.decision(plan).status == "void"
    assert state.decision(plan).reason == (
        "prerequisite not met: no counted conversion of goal form within 7 days before"
    )
    items = _items(state)
    check = plan.prerequisite
    assert check is not None and check.own is not None and check.before is not None
    own = items[("progress", check.own)]["ConditionCheck"]
    before = items[("progress", check.before)]["ConditionCheck"]
    assert own["ConditionExpression"].endswith(">= :v0")
    assert before["ConditionExpression"].endswith("< :v0")
    assert before["ExpressionAttributeValues"][":v0"] == {"S": iso(NOW - timedelta(days=7))}
    # A void conversion joins no track and no funnel.
    assert not [tag for tag in items if tag[0] == "funnel"]


def test_a_cancellation_showing_an_earlier_conversion_makes_it_count_resting_on_it() -> None:
    plan = _plan(BUY)
    state = DecisionState([plan])
    check = plan.prerequisite
    assert check is not None and check.before is not None
    reasons = {tag: Reason("None", {}) for tag in _items(state)}
    two_days_earlier = NOW - timedelta(days=2)
    # The period before holds a form two days earlier (periods are 7 days long).
    earlier_in_before = check.before.bucket == check.track.bucket(two_days_earlier)
    mark = check.before if earlier_in_before else check.own
    reasons[("progress", mark)] = Reason(
        "ConditionalCheckFailed", _span(two_days_earlier, "e0", "c0")
    )
    assert state.learn(reasons) is True
    assert state.decision(plan).status == "counted"
    items = _items(state)
    # Now the write rests on that item's end, by equality, and records it.
    checked = [tag for tag in items if tag[0] == "progress" and "ConditionCheck" in items[tag]]
    (condition,) = [tag for tag in checked if tag[1].track == check.track]
    assert condition == ("progress", mark)
    assert "= :v0" in items[condition]["ConditionCheck"]["ConditionExpression"]
    conversion = items[("conversion", "buy")]["Put"]["Item"]
    assert conversion["prerequisite_conversion"] == {"S": "c0"}
    # Step 2 of the funnel needs "form" on the funnel's own track (3 days): not known
    # there, so the write also says that track holds nothing earlier (two conditions).
    assert "funnels" not in conversion
    assert len(checked) == 3


def test_a_conversion_of_the_same_event_is_not_earlier() -> None:
    plan = _plan(BUY)
    check = plan.prerequisite
    assert check is not None and check.own is not None
    own = {check.own: Span.of(_span(NOW, "e1", "c-own"))}
    assert check.judge(own) is None
    own = {check.own: Span.of(_span(NOW - timedelta(seconds=1), "e0", "c0"))}
    met = check.judge(own)
    assert met is not None and (met.end, met.conversion) == ("hi", "c0")
    assert check.seconds_since(met) == 1


def test_within_the_window_means_at_most_that_many_days_before() -> None:
    plan = _plan(BUY)
    check = plan.prerequisite
    assert check is not None and check.before is not None and check.own is not None
    for days, met in ((7, True), (7.0001, False)):
        at = NOW - timedelta(days=days)
        mark = check.own if check.track.bucket(at) == check.own.bucket else check.before
        found = check.judge({mark: Span.of(_span(at, "e0", "c0"))})
        assert (found is not None) == met, days


def test_a_goal_and_the_goal_requiring_it_in_one_event_are_decided_apart() -> None:
    form, buy = _plan(FORM), _plan(BUY)
    assert set(form.progress_written()) & set(buy.progress_reads())
    groups = chunks([form, buy], None, "table")
    assert [[plan.goal_id for plan in group.plans] for group in groups] == [["form"], ["buy"]]
    # A counted form joins the goal track (7 days) and the funnel's first step (3 days),
    # and counts on the funnel's first step.
    items = _items(groups[0])
    tracks = {tag[1].track for tag in items if tag[0] == "progress"}
    assert {(t.kind, t.ident, t.window_days) for t in tracks} == {
        ("goal", "form", 7),
        ("funnel", "f1#S1", 3),
    }
    funnel = items[("funnel", "f1")]["Update"]
    assert "step#1" in funnel["ExpressionAttributeNames"].values()


def test_a_contact_is_its_own_subject_and_no_subject_never_meets_a_step() -> None:
    by_contact = _plan(BUY, contact_id="c1")
    assert by_contact.prerequisite is not None and by_contact.prerequisite.subject == "C#c1"
    nobody = _plan(BUY, visitor_id="")  # neither visitor nor contact
    assert nobody.prerequisite is not None and nobody.prerequisite.marks() == ()
    state = DecisionState([nobody])
    assert state.decision(nobody).status == "void"
    assert not [tag for tag in _items(state) if tag[0] == "progress"]


def test_the_histogram_buckets_are_quarter_octaves_and_the_median_is_within_ten_percent() -> None:
    assert [seconds_bucket(s) for s in (0, 1, 2, 3, 4)] == [0, 1, 5, 7, 9]
    previous_high = 0
    for bucket in range(1, 116):
        low, high = bucket_bounds(bucket)
        if low > high:
            continue  # a quarter-octave holding no whole second
        assert low == previous_high + 1 or bucket == 1
        assert all(seconds_bucket(s) == bucket for s in {low, high})
        value = bucket_value(bucket)
        assert low <= value <= high
        # The geometric middle, rounded: within 9.1% (plus the rounding's half second).
        assert all(abs(value - s) <= 0.0906 * s + 0.5 for s in (low, high))
        previous_high = high
    assert seconds_bucket(3650 * 86400) == 113
    assert median_bucket({}) is None
    assert median_bucket({5: 1, 9: 1}) == 5  # the lower median
    assert median_bucket({5: 1, 9: 2}) == 9


def test_a_group_is_sized_for_its_largest_attempt_whatever_it_learns() -> None:
    from goalkeeper.dal.decisions import _most_items

    plan = _plan(BUY)
    unmet = DecisionState([plan])
    check = plan.prerequisite
    assert check is not None and check.own is not None
    met = DecisionState([plan])
    met.progress[check.own] = Span.of(_span(NOW - timedelta(hours=1), "e0", "c0"))
    assert unmet.decision(plan).status == "void" and met.decision(plan).status == "counted"
    # Counted writes more than void: the bound holds for both attempts.
    assert len(_items(unmet)) < len(_items(met)) <= _most_items(unmet, "table")
