"""The value ledger's arithmetic, pure: what an adjustment does to a counted conversion's
value and to the report counters that hold it.

A conversion's *gross* value is what it was counted with (never rewritten); its *net*
value is what the ledger says now. A retraction (a refund) makes the net nothing and
marks the conversion retracted: it stays counted (it happened, and its de-duplication
claims stand), but its value leaves the reports' net and it is counted among the
retracted. A restatement replaces the net value, in the same currency or another (a
percent-of-transaction goal's sale may close in another currency). A retracted
conversion takes no further adjustment, as Google Ads ignores adjustments of a
retracted conversion. The counters keep the gross and, beside it, the sum of the
adjustments per currency: net = gross + adjusted.
"""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from goalkeeper.errors import Conflict, FieldProblem, InvalidInput
from goalkeeper.models.ledger import RETRACT, AdjustmentRequest
from goalkeeper.values import Money


@dataclass(frozen=True)
class Standing:
    """A counted conversion's value as the ledger stands, after `adjustments` of them."""

    value: Money | None
    retracted: bool = False
    adjustments: int = 0


@dataclass(frozen=True)
class AdjustmentPlan:
    before: Standing
    after: Standing
    # The change of the conversion's net value per currency (no zero entries).
    deltas: dict[str, Decimal]

    @property
    def retracts(self) -> bool:
        return self.after.retracted and not self.before.retracted


def plan_adjustment(
    conversion_id: str, before: Standing, request: AdjustmentRequest, fixed_currency: str | None
) -> AdjustmentPlan:
    """The adjustment's effect; `fixed_currency` is the goal's when its value is fixed
    (a restatement keeps it). Raises Conflict for a retracted conversion, InvalidInput
    for a restatement whose currency cannot be known or is not the goal's."""
    if before.retracted:
        raise Conflict(
            f"conversion {conversion_id} was retracted; a retracted conversion takes no "
            "further adjustment",
            [FieldProblem("conversion_id", "is retracted")],
        )
    after_value = None
    if request.type != RETRACT:
        assert request.value is not None  # the model requires it for a restatement
        known = before.value.currency if before.value is not None else None
        currency = request.currency or fixed_currency or known
        if currency is None:
            raise InvalidInput(
                "the restatement needs a currency",
                [FieldProblem("currency", "is required: the conversion has no value yet")],
            )
        if fixed_currency is not None and currency != fixed_currency:
            raise InvalidInput(
                "the restatement's currency is not the goal's",
                [FieldProblem("currency", f"must be {fixed_currency}, the goal's fixed value's")],
            )
        after_value = Money(request.value, currency)
    after = Standing(after_value, request.type == RETRACT, before.adjustments + 1)
    return AdjustmentPlan(before, after, value_deltas(before.value, after_value))


def value_deltas(before: Money | None, after: Money | None) -> dict[str, Decimal]:
    deltas: dict[str, Decimal] = defaultdict(Decimal)
    if before is not None:
        deltas[before.currency] -= before.amount
    if after is not None:
        deltas[after.currency] += after.amount
    return {currency: delta for currency, delta in deltas.items() if delta}
