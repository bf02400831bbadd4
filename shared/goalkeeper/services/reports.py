"""Report queries. They read pre-aggregated daily items, never events, so their
cost depends on the date range and the number of goals, not on stored data."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from goalkeeper import keys
from goalkeeper.errors import FieldProblem, InvalidInput
from goalkeeper.models.common import money_text
from goalkeeper.services.goals import list_goals
from goalkeeper.storage import Store

MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


@dataclass(frozen=True)
class DateRange:
    start: date
    end: date

    @property
    def sort_keys(self) -> tuple[str, str]:
        # '#G#~' sorts after every goal id of the last day.
        return keys.aggregate_sk(self.start.isoformat()), keys.aggregate_sk(
            self.end.isoformat(), "~"
        )


def date_range(start: date | None, end: date | None, timezone: str, now: datetime) -> DateRange:
    today = now.astimezone(ZoneInfo(timezone)).date()
    end = end or today
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidInput(
            "the date range is inverted", [FieldProblem("from", "must not be after 'to'")]
        )
    if (end - start).days >= MAX_RANGE_DAYS:
        raise InvalidInput(
            "the date range is too long",
            [FieldProblem("to", f"at most {MAX_RANGE_DAYS} days after 'from'")],
        )
    return DateRange(start, end)


@dataclass
class GoalTotals:
    counted: int = 0
    void: int = 0
    values: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    last_match_at: str | None = None

    def add(self, item: dict[str, Any]) -> None:
        self.counted += int(item.get("counted", 0))
        self.void += int(item.get("void", 0))
        for name, amount in item.items():
            if name.startswith("value_"):
                self.values[name.removeprefix("value_")] += amount
        at = item.get("last_match_at")
        if at and (self.last_match_at is None or at > self.last_match_at):
            self.last_match_at = at


def _totals_by_goal(
    store: Store, account_id: str, span: DateRange, shards: int
) -> dict[str, GoalTotals]:
    totals: dict[str, GoalTotals] = defaultdict(GoalTotals)
    for item in store.aggregate_items(account_id, shards, *span.sort_keys):
        totals[item["goal_id"]].add(item)
    return totals


def goals_report(store: Store, account_id: str, span: DateRange, shards: int) -> dict[str, Any]:
    totals = _totals_by_goal(store, account_id, span, shards)
    rows = []
    for goal in list_goals(store, account_id):
        goal_totals = totals.get(goal.goal_id, GoalTotals())
        rows.append(
            {
                "goal_id": goal.goal_id,
                "name": goal.name,
                "converting": goal.converting,
                "active": goal.active,
                "counted": goal_totals.counted,
                "void": goal_totals.void,
                "value": {
                    currency: money_text(amount)
                    for currency, amount in sorted(goal_totals.values.items())
                },
            }
        )
    return {"from": span.start.isoformat(), "to": span.end.isoformat(), "goals": rows}
