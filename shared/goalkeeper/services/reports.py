"""Report queries. They read pre-aggregated items, never events: the per-goal
reports read one key range of day counters per shard (an item per day, and per
goal that reached a decision that day), so their cost depends on the date range
and the goals, never on the events behind them. Attribution counters (one per
day, goal, shard and distinct set of labels) grow with the labels clients send,
so the attribution report reads them a page at a time behind a cursor, and the
top-keywords ranking reads a bounded number or refuses the range."""

import base64
import binascii
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from goalkeeper import keys
from goalkeeper.counters import ATTRIBUTION_DIMENSIONS, NONE_LABEL
from goalkeeper.dal import Dal
from goalkeeper.dal.client import is_key_value
from goalkeeper.dal.counters import AttributionCounter, DaySeen, GoalDay, Tally
from goalkeeper.dal.events import is_trace_position
from goalkeeper.dal.ledger import Adjustment, money_json, standing_of
from goalkeeper.errors import FieldProblem, InvalidInput, NotFound
from goalkeeper.models.common import iso, money_text
from goalkeeper.models.goals import Goal
from goalkeeper.services.goals import get_goal, list_goals

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
# Attribution counters one request reads at most (the report's largest page) ...
ATTRIBUTION_PAGE_ITEMS = 1000
# ... and at most, plus one, for a top-keywords ranking, which needs all of the range's.
TOP_KEYWORDS_MAX_ITEMS = 10_000
HEALTH_WINDOW = timedelta(hours=24)
HEALTH_LOOKBACK_DAYS = 30
GROUPS = ("converting", "non_converting", "all")


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def attribution_keys(self) -> tuple[str, str]:
        return keys.attribution_sk(self.start.isoformat()), keys.attribution_sk(
            self.end.isoformat(), "~"
        )

    def days(self) -> list[str]:
        return [
            (self.start + timedelta(days=n)).isoformat()
            for n in range((self.end - self.start).days + 1)
        ]


def date_range(
    start: date | None,
    end: date | None,
    timezone: str,
    now: datetime,
    max_days: int = MAX_RANGE_DAYS,
) -> DateRange:
    today = now.astimezone(ZoneInfo(timezone)).date()
    end = end or today
    if start is None:
        earliest_end = date.min + timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if end < earliest_end:
            raise InvalidInput(
                "the default range would start before the first day of the calendar",
                [FieldProblem("to", f"must be {earliest_end} or later when 'from' is not given")],
            )
        start = end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidInput(
            "the date range is inverted", [FieldProblem("from", "must not be after 'to'")]
        )
    if (end - start).days >= max_days:
        raise InvalidInput(
            "the date range is too long",
            [FieldProblem("to", f"at most {max_days - 1} days after 'from'")],
        )
    return DateRange(start, end)


def account_date_range(
    dal: Dal, account_id: str, start: date | None, end: date | None, now: datetime
) -> DateRange:
    """`date_range` in days of the account's own timezone."""
    return date_range(start, end, dal.accounts.timezone(account_id), now)


@dataclass
class Totals:
    """Counters summed over items; money per currency, never mixed."""

    counted: int = 0
    void: int = 0
    visitors_converted: int = 0
    values: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    last_match_at: str | None = None
    retracted: int = 0
    adjusted: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, tally: Tally) -> None:
        """Counters of one goal-day or attribution item."""
        self.merge(
            Totals(
                tally.counted,
                tally.void,
                tally.visitors_converted,
                dict(tally.values),
                tally.last_match_at,
                tally.retracted,
                dict(tally.adjusted),
            )
        )

    def merge(self, other: "Totals") -> None:
        self.counted += other.counted
        self.void += other.void
        self.visitors_converted += other.visitors_converted
        self.retracted += other.retracted
        for currency, amount in other.values.items():
            self.values[currency] += amount
        for currency, amount in other.adjusted.items():
            self.adjusted[currency] += amount
        if other.last_match_at and (
            self.last_match_at is None or other.last_match_at > self.last_match_at
        ):
            self.last_match_at = other.last_match_at

    def value_text(self) -> dict[str, str]:
        """The net value per currency: as counted, plus every adjustment (goalkeeper.ledger)."""
        net: dict[str, Decimal] = defaultdict(Decimal, self.values)
        for currency, amount in self.adjusted.items():
            net[currency] += amount
        return {currency: money_text(amount) for currency, amount in sorted(net.items())}

    def gross_text(self) -> dict[str, str]:
        """The value per currency as counted, before adjustments."""
        return {currency: money_text(amount) for currency, amount in sorted(self.values.items())}

    def money(self) -> dict[str, Any]:
        """The value fields of a report row: net, gross, and how many were retracted."""
        return {
            "value": self.value_text(),
            "gross_value": self.gross_text(),
            "retracted": self.retracted,
        }


def _rate(converted: int, seen: int) -> float | None:
    return round(converted / seen, 4) if seen else None


@dataclass
class DailyTotals:
    """The days of a range, each with every goal's counters and the visitors seen."""

    goals: dict[str, dict[str, Totals]] = field(default_factory=lambda: defaultdict(dict))
    visitors_seen: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def for_goal(self, goal_id: str) -> dict[str, Totals]:
        return self.goals.get(goal_id, {})

    def goal_total(self, goal_id: str) -> Totals:
        total = Totals()
        for day_totals in self.for_goal(goal_id).values():
            total.merge(day_totals)
        return total


def daily_totals(
    dal: Dal, account_id: str, span: DateRange, shards: int, goal_id: str | None = None
) -> DailyTotals:
    """Every goal's counters in the range (one key range per shard: the items of the
    goals that reached a decision each day), or one goal's (exact keys, days x shards)."""
    totals = DailyTotals()
    found: list[GoalDay | DaySeen]
    if goal_id is None:
        found = dal.counters.days(account_id, shards, span.start.isoformat(), span.end.isoformat())
    else:
        found = list(dal.counters.goal_days(account_id, goal_id, span.days(), shards))
    for counted in found:
        if isinstance(counted, GoalDay):
            totals.goals[counted.goal_id].setdefault(counted.day, Totals()).add(counted.tally)
        else:
            totals.visitors_seen[counted.day] += counted.visitors_seen
    return totals


def goals_report(dal: Dal, account_id: str, span: DateRange, shards: int) -> dict[str, Any]:
    daily = daily_totals(dal, account_id, span, shards)
    visitors_seen = sum(daily.visitors_seen.values())
    rows = []
    groups = {"converting": Totals(), "non_converting": Totals()}
    for goal in list_goals(dal.goals, account_id):
        totals = daily.goal_total(goal.goal_id)
        groups["converting" if goal.converting else "non_converting"].merge(totals)
        rows.append(
            {
                "goal_id": goal.goal_id,
                "name": goal.name,
                "converting": goal.converting,
                "active": goal.active,
                "counted": totals.counted,
                "void": totals.void,
                "visitors_converted": totals.visitors_converted,
                "conversion_rate": _rate(totals.visitors_converted, visitors_seen),
                **totals.money(),
            }
        )
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "visitors_seen": visitors_seen,
        "goals": rows,
        "groups": {
            name: {
                "counted": totals.counted,
                "void": totals.void,
                "visitors_converted": totals.visitors_converted,
                **totals.money(),
            }
            for name, totals in groups.items()
        },
    }


def goal_timeseries(
    dal: Dal, account_id: str, goal_id: str, span: DateRange, shards: int
) -> dict[str, Any]:
    goal = get_goal(dal.goals, account_id, goal_id)
    by_day = daily_totals(dal, account_id, span, shards, goal_id).for_goal(goal_id)
    days = []
    for day in span.days():
        totals = by_day.get(day, Totals())
        days.append(
            {
                "date": day,
                "counted": totals.counted,
                "void": totals.void,
                "visitors_converted": totals.visitors_converted,
                **totals.money(),
            }
        )
    return {
        "goal_id": goal.goal_id,
        "name": goal.name,
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "days": days,
    }


def _in_group(goal: Goal | None, group: str) -> bool:
    if goal is None:
        return False
    return group == "all" or goal.converting == (group == "converting")


def _attribution_rows(
    items: list[AttributionCounter], goals: dict[str, Goal], dimension: str, group: str
) -> list[dict[str, Any]]:
    """The counters summed per label of `dimension`, most conversions first."""
    by_label: dict[str, Totals] = defaultdict(Totals)
    goals_by_label: dict[str, set[str]] = defaultdict(set)
    for item in items:
        if _in_group(goals.get(item.goal_id), group):
            by_label[item.labels[dimension]].add(item.tally)
            goals_by_label[item.labels[dimension]].add(item.goal_id)
    rows = [
        {
            dimension: label,
            "counted": totals.counted,
            **totals.money(),
            "goals": sorted(goals_by_label[label]),
        }
        for label, totals in by_label.items()
    ]
    return sorted(rows, key=lambda row: (-row["counted"], row[dimension]))


@dataclass(frozen=True)
class CounterPosition:
    """Where reading a range's attribution counters stands: the shard being read,
    and the sort key of the last counter read in it (None: from its start)."""

    shard: int = 0
    after: str | None = None


def _read_counters(
    dal: Dal,
    account_id: str,
    span: DateRange,
    shards: int,
    position: CounterPosition,
    budget: int,
) -> tuple[list[AttributionCounter], CounterPosition | None]:
    """At most `budget` attribution counters of the range, shard after shard from
    `position`, and the position to continue from (None: the range is read)."""
    items: list[AttributionCounter] = []
    shard, after = position.shard, position.after
    while shard < shards and len(items) < budget:
        page = dal.counters.attribution_page(
            account_id, shard, span.attribution_keys, after, budget - len(items)
        )
        items.extend(page.items)
        if page.after:
            after = page.after
        else:
            shard, after = shard + 1, None
    return items, CounterPosition(shard, after) if shard < shards else None


def _check_choices(dimension: str, group: str) -> None:
    if dimension not in ATTRIBUTION_DIMENSIONS:
        raise InvalidInput(
            "unknown dimension",
            [FieldProblem("dimension", f"must be one of {', '.join(ATTRIBUTION_DIMENSIONS)}")],
        )
    if group not in GROUPS:
        raise InvalidInput(
            "unknown group", [FieldProblem("group", f"must be one of {', '.join(GROUPS)}")]
        )


def attribution_report(
    dal: Dal,
    account_id: str,
    span: DateRange,
    shards: int,
    dimension: str,
    group: str,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """One page: the rows of at most `limit` counters (<= ATTRIBUTION_PAGE_ITEMS).

    A label's counters are spread over days, goals, shards and the other
    dimensions' labels, so a range with more counters than a page gives a label
    on several pages: the report is the sum of its pages (README).
    """
    _check_choices(dimension, group)
    position = _counter_position(cursor, span, shards) if cursor else CounterPosition()
    items, following = _read_counters(dal, account_id, span, shards, position, limit)
    goals = {goal.goal_id: goal for goal in list_goals(dal.goals, account_id)}
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "dimension": dimension,
        "group": group,
        "rows": _attribution_rows(items, goals, dimension, group),
        "next_cursor": _encode_position(following) if following else None,
    }


def top_keywords(
    dal: Dal, account_id: str, span: DateRange, shards: int, limit: int
) -> dict[str, Any]:
    """A ranking needs every counter of the range: at most TOP_KEYWORDS_MAX_ITEMS are
    read, and a range holding more is refused rather than ranked on a part of it."""
    items, _ = _read_counters(
        dal, account_id, span, shards, CounterPosition(), TOP_KEYWORDS_MAX_ITEMS + 1
    )
    if len(items) > TOP_KEYWORDS_MAX_ITEMS:
        raise InvalidInput(
            "the range holds too many attribution counters to rank in one request",
            [
                FieldProblem(
                    "from",
                    f"the range holds more than {TOP_KEYWORDS_MAX_ITEMS} attribution "
                    "counters: choose a shorter range, or read them all with "
                    "/v1/reports/attribution?dimension=keyword&group=converting",
                )
            ],
        )
    goals = {goal.goal_id: goal for goal in list_goals(dal.goals, account_id)}
    rows = _attribution_rows(items, goals, "keyword", "converting")
    ranked = [row for row in rows if row["keyword"] != NONE_LABEL][:limit]
    return {"from": span.start.isoformat(), "to": span.end.isoformat(), "keywords": ranked}


def goal_health(
    dal: Dal, account_id: str, goal_id: str, shards: int, now: datetime
) -> dict[str, Any]:
    """When the goal last matched an event, from its daily counters (last 30 days)."""
    goal = get_goal(dal.goals, account_id, goal_id)
    today = now.date()
    span = DateRange(today - timedelta(days=HEALTH_LOOKBACK_DAYS), today + timedelta(days=1))
    totals = daily_totals(dal, account_id, span, shards, goal_id).goal_total(goal_id)
    last = totals.last_match_at
    recent = last is not None and last >= iso(now - HEALTH_WINDOW)
    if not goal.active:
        status, message = "inactive", "the goal is deactivated"
    elif recent:
        status, message = "ok", "matching events arrived in the last 24 hours"
    else:
        status, message = "no_recent_match", "no matching event in the last 24 hours"
    return {
        "goal_id": goal.goal_id,
        "name": goal.name,
        "status": status,
        "message": message,
        "last_match_at": last,
        "checked_at": iso(now),
    }


# -- visitor trace ---------------------------------------------------------

_EVENT_HIDDEN = {"event_id", "type", "occurred_at", "visitor_id", "caller_hash"}


def _trace_entry(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("kind") == "adjustment":  # right after its conversion (keys.adjustment_trace_sk)
        return {"kind": "adjustment", **Adjustment.of(item).to_json()}
    if item.get("kind") == "conversion":
        entry = {
            "kind": "conversion",
            "at": item["occurred_at"],
            "conversion_id": item["conversion_id"],
            "event_id": item["event_id"],
            "goal_id": item["goal_id"],
            "goal_name": item.get("goal_name"),
            "goal_version": int(item.get("goal_version", 1)),
            "status": item["status"],
            "reason": item.get("reason"),
            "duplicate_of": item.get("duplicate_of"),
            "attribution": _plain(item.get("attribution")),
            # Conversions decided before crediting existed carried their event's own.
            "attribution_source": item.get(
                "attribution_source", "event" if item.get("attribution") else "none"
            ),
        }
        # Its steps (goalkeeper.steps): the required goal's conversion it rests on, and
        # the funnel steps it reached with the previous step's conversion and the seconds.
        if item.get("prerequisite_conversion"):
            entry["prerequisite_conversion"] = item["prerequisite_conversion"]
        if item.get("funnels"):
            entry["funnels"] = _plain(item["funnels"])
        if item.get("value_currency"):
            entry["value"] = {
                "amount": money_text(item["value_amount"]),
                "currency": item["value_currency"],
            }
        standing = standing_of(item)
        if standing.adjustments:  # the value ledger's word on it (goalkeeper.ledger)
            entry["net_value"] = money_json(standing.value)
            entry["retracted"] = standing.retracted
            entry["adjustments"] = standing.adjustments
        return entry
    body = {k: v for k, v in item.get("body", {}).items() if k not in _EVENT_HIDDEN}
    return {
        "kind": "event",
        "at": item["occurred_at"],
        "event_id": item["event_id"],
        "type": item["type"],
        **_plain(body),
    }


def _plain(data: Any) -> Any:
    """Stored numbers come back as Decimal; JSON wants them as numbers or text."""
    if isinstance(data, dict):
        return {key: _plain(value) for key, value in data.items()}
    if isinstance(data, list | set | tuple):
        return [_plain(value) for value in data]
    if isinstance(data, Decimal):
        return int(data) if data == data.to_integral_value() else str(data)
    return data


def visitor_trace(
    dal: Dal, account_id: str, visitor_id: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    start = _decode(cursor) if cursor else None
    if start is not None and not is_trace_position(start, account_id, visitor_id):
        raise _invalid_cursor("the cursor is not one this visitor's trace gave")
    page = dal.events.trace_page(account_id, visitor_id, limit, start)
    if start is None and not page.items:
        raise NotFound(f"no events for visitor {visitor_id!r} in this account")
    return {
        "visitor_id": visitor_id,
        "items": [_trace_entry(item) for item in page.items],
        "next_cursor": _encode(page.cursor) if page.cursor else None,
    }


# -- cursors ---------------------------------------------------------------


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, sort_keys=True).encode()).decode()


def _decode(cursor: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError) as error:
        raise _invalid_cursor("the cursor is not valid") from error
    if not isinstance(data, dict) or not all(isinstance(v, str | int) for v in data.values()):
        raise _invalid_cursor("the cursor is not valid")
    return data


def _invalid_cursor(message: str) -> InvalidInput:
    return InvalidInput(message, [FieldProblem("cursor", "invalid")])


def _encode_position(position: CounterPosition) -> str:
    data: dict[str, Any] = {"shard": position.shard}
    if position.after is not None:
        data["after"] = position.after
    return _encode(data)


def _counter_position(cursor: str, span: DateRange, shards: int) -> CounterPosition:
    """The position an attribution cursor holds, if it is one this range can continue
    from: DynamoDB refuses a start key outside the range it is asked to read."""
    data = _decode(cursor)
    shard, after = data.get("shard"), data.get("after")
    low, high = span.attribution_keys
    if not (
        set(data) <= {"shard", "after"}
        and type(shard) is int
        and 0 <= shard < shards
        and (after is None or (is_key_value(after) and low <= after <= high))
    ):
        raise _invalid_cursor("the cursor is not one this report gave for this date range")
    return CounterPosition(shard, after)
