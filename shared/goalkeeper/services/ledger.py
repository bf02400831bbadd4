"""Adjusting a counted conversion's value (POST /v1/conversions/{conversion_id}/adjustments):
check the request against the conversion and its goal, plan the change (goalkeeper.ledger)
and write it with the counters in one transaction, planned again when another adjustment
of the conversion got there first.

Sale values after the call: a call rating carrying a value restates each counted
conversion of its call whose goal's value is a percentage of the transaction (the
rating's value is the call's transaction). The rating is still its own action (a
call_rating goal decides it as any event); the restatement is a system adjustment,
one per (rating, conversion), made at the rating's time. The latest rating by time
holds the value: each call keeps its latest rating with a value (a conditional put),
an earlier rating arriving later restates nothing, a redelivered one changes nothing,
and conversions of the call decided after the rating arrived take its value when
they are decided. A retracted conversion stays retracted."""

from collections.abc import Mapping
from datetime import datetime

from goalkeeper import keys
from goalkeeper.dal import Dal
from goalkeeper.dal.client import TRANSACTION_CONFLICT_ATTEMPTS, attempts
from goalkeeper.dal.ledger import (
    Adjustment,
    AdjustmentExists,
    ConversionChanged,
    LedgerConversion,
    NewAdjustment,
    RatedValue,
)
from goalkeeper.dedup import Decision
from goalkeeper.errors import Conflict, FieldProblem, NotFound
from goalkeeper.ledger import plan_adjustment
from goalkeeper.models.common import iso, local_day
from goalkeeper.models.events import Call, CallRating
from goalkeeper.models.goals import FixedValue, Goal, PercentOfTransaction
from goalkeeper.models.ledger import AdjustmentRequest
from goalkeeper.values import Money, percent_of

# Adjustments of one conversion racing this one: each lost race means planning again.
RACING_ADJUSTMENTS = 20


def adjust_conversion(
    dal: Dal,
    account_id: str,
    conversion_id: str,
    request: AdjustmentRequest,
    now: datetime,
    shards: int,
) -> tuple[Adjustment, bool]:
    """The adjustment, and whether this request made it (False: it was made before)."""
    stored = dal.ledger.adjustment(account_id, request.adjustment_id)
    if stored is not None:
        return _resent(stored, conversion_id, request), False
    timezone = dal.accounts.timezone(account_id)
    exhausted = "the conversion kept being adjusted concurrently"
    for _ in attempts(TRANSACTION_CONFLICT_ATTEMPTS + RACING_ADJUSTMENTS, exhausted):
        conversion = _counted(dal, account_id, conversion_id)
        goal = dal.goals.get(account_id, conversion.goal_id)
        fixed = goal.value.currency if goal and isinstance(goal.value, FixedValue) else None
        new = NewAdjustment(
            adjustment_id=request.adjustment_id,
            conversion=conversion,
            plan=plan_adjustment(conversion_id, conversion.standing, request, fixed),
            kind=request.type,
            reason=request.reason,
            at=iso(now),
            ads_day=local_day(now, timezone),
            shard=keys.shard_of(conversion.event_id, shards),
        )
        try:
            return dal.ledger.record(new), True
        except AdjustmentExists as taken:
            return _resent(taken.stored, conversion_id, request), False
        except ConversionChanged:
            continue  # another adjustment (or nothing) is there now: plan on what is
    raise AssertionError("unreachable: attempts raises when spent")


def rating_arrived(
    dal: Dal,
    account_id: str,
    goals: Mapping[str, Goal],
    rating: CallRating,
    rating_event_id: str,
    shards: int,
) -> list[Adjustment]:
    """A rating with a value becomes its call's latest (unless a later one is kept) and
    restates the call's conversions decided so far."""
    transaction = rating.transaction_facts()
    if transaction is None:
        return []
    rated = RatedValue(
        rating.call_id,
        rating_event_id,
        iso(rating.occurred_at),  # type: ignore[arg-type]
        Money(transaction.value, transaction.currency),
    )
    if not dal.ledger.keep_latest_rating(account_id, rated):
        return []  # a later rating holds the call's value
    conversions = dal.ledger.call_conversions(account_id, rated.call_id)
    return _restate_call(dal, account_id, goals, rated, conversions, shards)


def call_decided(
    dal: Dal,
    account_id: str,
    goals: Mapping[str, Goal],
    call: Call,
    decisions: list[Decision],
    shards: int,
) -> list[Adjustment]:
    """A call's conversions decided after a rating of it arrived take that rating's value
    (the rating is read only when a counted conversion's goal takes a percentage)."""
    counted = [
        decision.conversion_id
        for decision in decisions
        if decision.status == "counted" and _takes_percent(goals.get(decision.goal_id))
    ]
    rated = dal.ledger.latest_rating(account_id, call.call_id) if counted else None
    if rated is None:
        return []
    conversions = [dal.ledger.conversion(account_id, conversion_id) for conversion_id in counted]
    return _restate_call(dal, account_id, goals, rated, [c for c in conversions if c], shards)


def _takes_percent(goal: Goal | None) -> bool:
    return goal is not None and isinstance(goal.value, PercentOfTransaction)


def _restate_call(
    dal: Dal,
    account_id: str,
    goals: Mapping[str, Goal],
    rated: RatedValue,
    conversions: list[LedgerConversion],
    shards: int,
) -> list[Adjustment]:
    made = []
    for conversion in conversions:
        goal = goals.get(conversion.goal_id)
        if goal is None or not isinstance(goal.value, PercentOfTransaction):
            continue
        value = percent_of(goal.value, rated.value)
        # Built, not validated: the value is computed here, and a percentage of a large
        # sale may exceed what a client may send, which must not fail the rating.
        request = AdjustmentRequest.model_construct(
            adjustment_id=keys.rating_adjustment_id(
                rated.rating_event_id, conversion.conversion_id
            ),
            type="restate",
            value=value.amount,
            currency=value.currency,
            reason=f"sale value of call rating {rated.rating_event_id}",
        )
        at = datetime.fromisoformat(rated.occurred_at)
        try:
            adjustment, _ = adjust_conversion(
                dal, account_id, conversion.conversion_id, request, at, shards
            )
        except Conflict:
            continue  # retracted (a refund stands), or its id taken by another content
        made.append(adjustment)
    return made


def _counted(dal: Dal, account_id: str, conversion_id: str) -> LedgerConversion:
    conversion = dal.ledger.conversion(account_id, conversion_id)
    if conversion is None:
        raise NotFound(
            f"no conversion {conversion_id!r} in this account",
            [FieldProblem("conversion_id", "no such conversion")],
        )
    if conversion.status != "counted":
        raise Conflict(
            f"conversion {conversion_id} is void (a duplicate): only counted conversions "
            "carry value to adjust",
            [FieldProblem("conversion_id", "is void")],
        )
    return conversion


def _resent(stored: Adjustment, conversion_id: str, request: AdjustmentRequest) -> Adjustment:
    if stored.asks(conversion_id, request.type, request.value, request.currency, request.reason):
        return stored
    raise Conflict(
        f"adjustment {request.adjustment_id} was already made with another content",
        [FieldProblem("adjustment_id", "is already used by another adjustment")],
    )
