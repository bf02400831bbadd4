"""Adjusting a counted conversion's value (POST /v1/conversions/{conversion_id}/adjustments):
check the request against the conversion and its goal, plan the change (goalkeeper.ledger)
and write it with the counters in one transaction, planned again when another adjustment
of the conversion got there first.

Sale values after the call: a call rating carrying a value restates each counted
conversion of its call whose goal's value is a percentage of the transaction (the
rating's value is the call's transaction). The rating is still its own action (a
call_rating goal decides it as any event); the restatement is a system adjustment,
one per (rating, conversion), made at the rating's time, so a redelivered rating
changes nothing and the latest rating processed holds the value. A retracted
conversion stays retracted."""

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
)
from goalkeeper.errors import Conflict, FieldProblem, NotFound
from goalkeeper.ledger import plan_adjustment
from goalkeeper.models.common import iso, local_day
from goalkeeper.models.events import CallRating
from goalkeeper.models.goals import FixedValue, PercentOfTransaction
from goalkeeper.models.ledger import AdjustmentRequest
from goalkeeper.values import conversion_value

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


def restate_rated_call(
    dal: Dal, account_id: str, rating: CallRating, rating_event_id: str, shards: int
) -> list[Adjustment]:
    """The restatements a rating with a value makes of its call's conversions."""
    if rating.transaction_facts() is None:
        return []
    made = []
    for conversion in dal.ledger.call_conversions(account_id, rating.call_id):
        goal = dal.goals.get(account_id, conversion.goal_id)
        value = conversion_value(goal.value, rating) if goal is not None else None
        if goal is None or not isinstance(goal.value, PercentOfTransaction) or value is None:
            continue
        # Built, not validated: the value is computed here, and a percentage of a large
        # sale may exceed what a client may send, which must not fail the rating.
        request = AdjustmentRequest.model_construct(
            adjustment_id=keys.rating_adjustment_id(rating_event_id, conversion.conversion_id),
            type="restate",
            value=value.amount,
            currency=value.currency,
            reason=f"sale value of call rating {rating_event_id}",
        )
        at: datetime = rating.occurred_at  # type: ignore[assignment]
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
