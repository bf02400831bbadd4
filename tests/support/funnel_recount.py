"""Funnel counters and prerequisites checked against the conversion items (invariant 3
for funnels): what tests of funnels and the recount test share."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from goalkeeper import counters
from goalkeeper.steps import seconds_bucket


def assert_funnels_equal_a_recount(items: list[dict[str, Any]]) -> int:
    """Funnel day counters equal a recount of the counted conversions' funnel records,
    and each record rests on a conversion that really is the previous step, counted,
    of the same visitor (or contact), earlier, within the window; each counted
    conversion of a goal with a prerequisite rests on a counted conversion of the
    required goal, earlier, within its window. Returns the funnel records seen."""
    conversions = {i["conversion_id"]: i for i in items if i.get("kind") == "conversion"}
    funnels = {i["funnel_id"]: i["funnel"] for i in items if i.get("kind") == "funnel"}
    goals = {i["goal_id"]: i["goal"] for i in items if i.get("kind") == "goal"}
    recount: dict[tuple, Counter] = defaultdict(Counter)
    records = 0
    for conversion in conversions.values():
        records += _check_conversion(conversion, conversions, funnels, goals, recount)
    kept: dict[tuple, Counter] = defaultdict(Counter)
    for item in items:
        if item.get("kind") != counters.FUNNEL_DAY_KIND:
            continue
        cell = (item[counters.FUNNEL_ID], item[counters.DAY])
        for step, count in counters.funnel_steps_of(item).items():
            kept[cell][("step", step)] += count
        for (step, bucket), count in counters.funnel_seconds_of(item).items():
            kept[cell][("seconds", step, bucket)] += count
    assert _plain(kept) == _plain(recount)
    return records


def _check_conversion(
    conversion: dict[str, Any],
    conversions: dict[str, dict[str, Any]],
    funnels: dict[str, dict[str, Any]],
    goals: dict[str, dict[str, Any]],
    recount: dict[tuple, Counter],
) -> int:
    records = conversion.get("funnels") or {}
    if conversion["status"] != "counted":
        assert not records and "prerequisite_conversion" not in conversion
        return 0
    requires = goals[conversion["goal_id"]].get("requires")
    if requires:  # (the goals of these workloads keep their first version)
        required = conversions[conversion["prerequisite_conversion"]]
        _assert_earlier_within(required, conversion, int(requires["within_days"]))
        assert required["goal_id"] == requires["goal_id"]
    for funnel_id, record in records.items():
        funnel = funnels[funnel_id]
        step = int(record["step"])
        assert funnel["steps"][step - 1] == conversion["goal_id"]
        recount[(funnel_id, conversion["day"])][("step", step)] += 1
        if step == 1:
            assert "previous_conversion" not in record
            continue
        previous = conversions[record["previous_conversion"]]
        _assert_earlier_within(previous, conversion, int(funnel["window_days"]))
        assert int(previous["funnels"][funnel_id]["step"]) == step - 1
        seconds = int(record["seconds_to_convert"])
        assert seconds == int((_at(conversion) - _at(previous)) // timedelta(seconds=1)), (
            conversion,
            previous,
        )
        recount[(funnel_id, conversion["day"])][("seconds", step, seconds_bucket(seconds))] += 1
    return len(records)


def _assert_earlier_within(earlier: dict[str, Any], later: dict[str, Any], days: int) -> None:
    assert earlier["status"] == "counted"
    subject = lambda c: c.get("visitor_id") or ("contact", c.get("contact_id"))  # noqa: E731
    assert subject(earlier) == subject(later)
    assert (earlier["occurred_at"], earlier["event_id"]) < (later["occurred_at"], later["event_id"])
    assert _at(later) - _at(earlier) <= timedelta(days=days)


def _at(conversion: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(conversion["occurred_at"])


def _plain(cells: dict) -> dict:
    return {cell: {k: v for k, v in counts.items() if v} for cell, counts in cells.items()}
