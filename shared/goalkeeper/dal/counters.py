"""The report counters, read back: the items the decisions' transactions keep (see
goalkeeper.dal.decisions), per (account, shard, day), with the attribute names of
goalkeeper.counters. Reports read them through this module only, typed.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from goalkeeper import counters, keys
from goalkeeper.dal.client import Table
from goalkeeper.dal.transactions import Expression


@dataclass(frozen=True)
class Tally:
    """The counts of one counters item; money per currency, never mixed."""

    counted: int = 0
    void: int = 0
    visitors_converted: int = 0
    values: dict[str, Decimal] = field(default_factory=dict)  # as counted (gross)
    last_match_at: str | None = None
    # The value ledger: conversions retracted, the adjustments' changes per currency.
    retracted: int = 0
    adjusted: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def of(cls, item: dict[str, Any]) -> "Tally":
        return cls(
            counted=int(item.get(counters.COUNTED, 0)),
            void=int(item.get(counters.VOID, 0)),
            visitors_converted=int(item.get(counters.VISITORS_CONVERTED, 0)),
            values=counters.values_of(item),
            last_match_at=item.get(counters.LAST_MATCH_AT),
            retracted=int(item.get(counters.RETRACTED, 0)),
            adjusted=counters.adjusted_of(item),
        )


@dataclass(frozen=True)
class GoalDay:
    """One goal's counters on one day (one of the day's shards)."""

    day: str
    goal_id: str
    tally: Tally


@dataclass(frozen=True)
class DaySeen:
    """The visitors seen on one day (one of the day's shards)."""

    day: str
    visitors_seen: int


@dataclass(frozen=True)
class AttributionCounter:
    """One goal's counted conversions on one day for one set of attribution labels."""

    day: str
    goal_id: str
    labels: dict[str, str]
    tally: Tally


@dataclass(frozen=True)
class AttributionPage:
    """At most a page of one shard's attribution counters, and the sort key to read on
    after (None: the shard's range is read)."""

    items: list[AttributionCounter]
    after: str | None


@dataclass(frozen=True)
class FunnelDay:
    """One funnel's counters on one day (one of the day's shards): per step, the
    conversions that reached it; per (step, seconds bucket), how many of them came that
    long after the previous step."""

    day: str
    steps: dict[int, int]
    seconds: dict[tuple[int, int], int]


def _day_item(item: dict[str, Any]) -> GoalDay | DaySeen:
    if item.get(counters.KIND) == counters.GOAL_DAY_KIND:
        return GoalDay(item[counters.DAY], item[counters.GOAL_ID], Tally.of(item))
    return DaySeen(item[counters.DAY], int(item.get(counters.VISITORS_SEEN, 0)))


def _attribution(item: dict[str, Any]) -> AttributionCounter:
    labels = {name: item[name] for name in counters.ATTRIBUTION_DIMENSIONS}
    return AttributionCounter(item[counters.DAY], item[counters.GOAL_ID], labels, Tally.of(item))


def _shard_range(account_id: str, shard: int, sk_range: tuple[str, str]) -> dict[str, Any]:
    expression = Expression()
    pk = expression.value(keys.aggregate_pk(account_id, shard))
    low, high = expression.value(sk_range[0]), expression.value(sk_range[1])
    condition = (
        f"{expression.name(keys.PK)} = {pk} AND {expression.name(keys.SK)} BETWEEN {low} AND {high}"
    )
    return {"KeyConditionExpression": condition, **expression.request()}


class Counters:
    def __init__(self, table: Table) -> None:
        self._table = table

    def days(
        self, account_id: str, shards: int, first_day: str, last_day: str
    ) -> list[GoalDay | DaySeen]:
        """Every counters item of the days in [first_day, last_day]: the visitors seen,
        and each goal that reached a decision on the day (one key range per shard)."""
        sk_range = keys.counters_range(first_day, last_day)
        return [
            _day_item(item)
            for shard in range(shards)
            for item in self._table.query(**_shard_range(account_id, shard, sk_range))
        ]

    def goal_days(
        self, account_id: str, goal_id: str, days: list[str], shards: int
    ) -> list[GoalDay]:
        """One goal's counters of these days (exact keys, days x shards)."""
        found = self._table.get_many(
            [
                keys.goal_day_counters(account_id, shard, day, goal_id)
                for day in days
                for shard in range(shards)
            ]
        )
        return [day for day in map(_day_item, found) if isinstance(day, GoalDay)]

    def funnel_days(
        self, account_id: str, funnel_id: str, shards: int, first_day: str, last_day: str
    ) -> list[FunnelDay]:
        """A funnel's counters of the days in [first_day, last_day] (one key range per
        shard, at most one item per day and shard)."""
        sk_range = keys.funnel_counters_range(funnel_id, first_day, last_day)
        return [
            FunnelDay(
                item[counters.DAY],
                counters.funnel_steps_of(item),
                counters.funnel_seconds_of(item),
            )
            for shard in range(shards)
            for item in self._table.query(**_shard_range(account_id, shard, sk_range))
        ]

    def attribution_page(
        self,
        account_id: str,
        shard: int,
        sk_range: tuple[str, str],
        after: str | None,
        limit: int,
    ) -> AttributionPage:
        """At most `limit` attribution counters of one shard with sort keys in
        `sk_range`, from just after the sort key `after`."""
        pk = keys.aggregate_pk(account_id, shard)
        page = self._table.page(
            limit,
            {keys.PK: pk, keys.SK: after} if after else None,
            **_shard_range(account_id, shard, sk_range),
        )
        return AttributionPage(
            [_attribution(item) for item in page.items],
            page.cursor[keys.SK] if page.cursor else None,
        )
