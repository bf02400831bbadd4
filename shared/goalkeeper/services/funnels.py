"""Funnels: define them (POST|GET|DELETE /v1/funnels) and report them
(GET /v1/reports/funnels/{funnel_id}) from the day counters the deciding writes keep
(goalkeeper.steps, goalkeeper.dal.decisions)."""

import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from goalkeeper.dal import Dal
from goalkeeper.errors import Conflict, FieldProblem, InvalidInput, NotFound
from goalkeeper.models.funnels import Funnel, FunnelSpec
from goalkeeper.services.goals import list_goals
from goalkeeper.services.reports import DateRange
from goalkeeper.steps import bucket_bounds, bucket_value, median_bucket

# Each place of a goal in a funnel adds up to four items to its counted conversions'
# write (two conditions, a progress write, the funnel's counters): a goal may be a step
# of at most this many funnels, so one goal's decision still fits in one transaction.
MAX_FUNNELS_PER_GOAL = 3
MAX_FUNNELS_PER_ACCOUNT = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _new_id(now: datetime) -> str:
    """Like a goal id: the creation time first, so listing order is creation order."""
    micros = (now - _EPOCH) // timedelta(microseconds=1)
    return f"fun_{micros:014x}{secrets.token_hex(6)}"


def create_funnel(dal: Dal, account_id: str, spec: FunnelSpec, now: datetime) -> Funnel:
    """A new funnel of the account's goals. Its checks and its write are one unit: the
    write is conditioned on the goal library's version they read (Conflict if another
    change came between)."""
    version = dal.goals.library_version(account_id)
    if version is None:
        raise NotFound("no such account")
    goals = {goal.goal_id for goal in list_goals(dal.goals, account_id)}
    unknown = [
        FieldProblem(f"steps.{index}", "names no goal of this account")
        for index, goal_id in enumerate(spec.steps)
        if goal_id not in goals
    ]
    if unknown:
        raise InvalidInput("every step must be a goal of this account", unknown)
    live = [funnel for funnel in dal.funnels.all(account_id) if funnel.active]
    if len(live) >= MAX_FUNNELS_PER_ACCOUNT:
        raise Conflict(
            f"this account already has {MAX_FUNNELS_PER_ACCOUNT} funnels; delete one first"
        )
    places: dict[str, int] = defaultdict(int)
    for funnel in live:
        for goal_id in funnel.steps:
            places[goal_id] += 1
    crowded = [
        FieldProblem(f"steps.{index}", f"is already a step of {MAX_FUNNELS_PER_GOAL} funnels")
        for index, goal_id in enumerate(spec.steps)
        if places[goal_id] >= MAX_FUNNELS_PER_GOAL
    ]
    if crowded:
        raise Conflict(f"a goal may be a step of at most {MAX_FUNNELS_PER_GOAL} funnels", crowded)
    funnel = Funnel(**spec.model_dump(), funnel_id=_new_id(now), created_at=now)
    dal.funnels.save(account_id, funnel, version.version)
    return funnel


def list_funnels(dal: Dal, account_id: str) -> list[Funnel]:
    """The account's funnels (not deleted), in creation order."""
    funnels = [funnel for funnel in dal.funnels.all(account_id) if funnel.active]
    return sorted(funnels, key=lambda funnel: funnel.funnel_id)


def get_funnel(dal: Dal, account_id: str, funnel_id: str, deleted: bool = False) -> Funnel:
    funnel = dal.funnels.get(account_id, funnel_id)
    if funnel is None or not (funnel.active or deleted):
        raise NotFound(f"no funnel {funnel_id!r} in this account")
    return funnel


def delete_funnel(dal: Dal, account_id: str, funnel_id: str) -> Funnel:
    """The funnel stops counting (conversions decided after this answer do not reach it)
    and leaves the listing; its report stays readable."""
    funnel = get_funnel(dal, account_id, funnel_id)
    version = dal.goals.library_version(account_id)
    if version is None:
        raise NotFound("no such account")
    deleted = funnel.model_copy(update={"active": False})
    dal.funnels.save(account_id, deleted, version.version)
    return deleted


def funnel_report(
    dal: Dal, account_id: str, funnel_id: str, span: DateRange, shards: int
) -> dict[str, Any]:
    """Per step: entered (reached the previous step; the first step: reached it),
    converted (reached this step), drop_off (entered - converted) and the median seconds
    since the previous step; and the same per day, whose days add up to the totals.

    Read from the funnel's day counters only: one key range per shard, at most
    days x shards items, whatever the traffic behind them. Conversions decided before
    the funnel's creation (`created_at`) are on its steps only where a backfill put
    them (goalkeeper.services.funnel_backfill)."""
    funnel = get_funnel(dal, account_id, funnel_id, deleted=True)
    names = {goal.goal_id: goal.name for goal in list_goals(dal.goals, account_id)}
    reached: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    histograms: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for day in dal.counters.funnel_days(
        account_id, funnel_id, shards, span.start.isoformat(), span.end.isoformat()
    ):
        for step, count in day.steps.items():
            reached[day.day][step] += count
        for (step, bucket), count in day.seconds.items():
            histograms[step][bucket] += count
    totals: dict[int, int] = defaultdict(int)
    for counts in reached.values():
        for step, count in counts.items():
            totals[step] += count
    steps = []
    for row in _rows(funnel, totals, names):
        histogram = histograms.get(row["step"], {})
        median = median_bucket(histogram) if row["step"] > 1 else None
        row["median_seconds_to_convert"] = None if median is None else bucket_value(median)
        row["median_seconds_range"] = None if median is None else list(bucket_bounds(median))
        steps.append(row)
    return {
        "funnel_id": funnel.funnel_id,
        "name": funnel.name,
        "active": funnel.active,
        "window_days": funnel.window_days,
        # Counted live from its creation on; before it, only what a backfill filled.
        "created_at": funnel.model_dump(mode="json")["created_at"],
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "steps": steps,
        "days": [
            {"date": day, "steps": _rows(funnel, reached.get(day, {}), names)}
            for day in span.days()
        ],
    }


def _rows(funnel: Funnel, reached: dict[int, int], names: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for index, goal_id in enumerate(funnel.steps, start=1):
        converted = reached.get(index, 0)
        entered = converted if index == 1 else reached.get(index - 1, 0)
        rows.append(
            {
                "step": index,
                "goal_id": goal_id,
                "name": names.get(goal_id),
                "entered": entered,
                "converted": converted,
                "drop_off": entered - converted,
            }
        )
    return rows
