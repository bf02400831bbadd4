"""The report counters' item kinds and attribute names, shared by the decision writes
that keep them and the reports that read them.

Counters are kept per (account, shard, day): one *day* item (visitors seen), and
one *goal day* item per goal that reached a decision that day. Every item has a
fixed set of attributes (plus one value per currency), so none can grow with the
size of the goal library.
"""

from typing import Any

# Every counters item names its kind, its day and (but the day item) its goal.
KIND = "kind"
DAY = "day"
GOAL_ID = "goal_id"

DAY_KIND = "day_counters"
GOAL_DAY_KIND = "goal_counters"
ATTRIBUTION_KIND = "attribution"
FUNNEL_DAY_KIND = "funnel_counters"
FUNNEL_ID = "funnel_id"

VISITORS_SEEN = "visitors_seen"
COUNTED = "counted"
VOID = "void"
VISITORS_CONVERTED = "visitors_converted"
LAST_MATCH_AT = "last_match_at"
_VALUE_PREFIX = "value#"
# The value ledger (goalkeeper.ledger): conversions retracted, and per currency the sum
# of the adjustments' changes to the value (net value = value + adjusted).
RETRACTED = "retracted"
_ADJUSTED_PREFIX = "adjusted#"

ATTRIBUTION_DIMENSIONS = ("source", "medium", "campaign", "keyword")
NONE_LABEL = "(none)"


def item_labels(kind: str, day: str, goal_id: str | None = None) -> dict[str, str]:
    """The attributes that name a counters item."""
    labels = {KIND: kind, DAY: day}
    if goal_id is not None:
        labels[GOAL_ID] = goal_id
    return labels


def value_attribute(currency: str) -> str:
    return f"{_VALUE_PREFIX}{currency}"


def values_of(item: dict[str, Any]) -> dict[str, Any]:
    """The amounts per currency kept in a counters item."""
    return _per_currency(item, _VALUE_PREFIX)


def adjusted_attribute(currency: str) -> str:
    return f"{_ADJUSTED_PREFIX}{currency}"


def adjusted_of(item: dict[str, Any]) -> dict[str, Any]:
    """The adjustments' changes per currency kept in a counters item."""
    return _per_currency(item, _ADJUSTED_PREFIX)


def _per_currency(item: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {
        name.removeprefix(prefix): amount
        for name, amount in item.items()
        if name.startswith(prefix)
    }


def attribution_labels(attribution: dict[str, Any] | None) -> dict[str, str]:
    attribution = attribution or {}
    return {name: attribution.get(name) or NONE_LABEL for name in ATTRIBUTION_DIMENSIONS}


# A funnel's day item: per step, the conversions that reached it, and (from the second
# step on) a histogram of their seconds since the previous step (goalkeeper.steps).
_STEP_PREFIX = "step#"
_SECONDS_PREFIX = "secs#"


def funnel_step_attribute(step: int) -> str:
    return f"{_STEP_PREFIX}{step}"


def funnel_seconds_attribute(step: int, bucket: int) -> str:
    return f"{_SECONDS_PREFIX}{step}#{bucket}"


def funnel_steps_of(item: dict[str, Any]) -> dict[int, int]:
    """Step -> conversions that reached it, in a funnel's day item."""
    return {
        int(name.removeprefix(_STEP_PREFIX)): int(count)
        for name, count in item.items()
        if name.startswith(_STEP_PREFIX)
    }


def funnel_seconds_of(item: dict[str, Any]) -> dict[tuple[int, int], int]:
    """(step, seconds bucket) -> conversions, in a funnel's day item."""
    found = {}
    for name, count in item.items():
        if name.startswith(_SECONDS_PREFIX):
            step, bucket = name.removeprefix(_SECONDS_PREFIX).split("#")
            found[(int(step), int(bucket))] = int(count)
    return found
