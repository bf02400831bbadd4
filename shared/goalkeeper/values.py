"""What a conversion is worth: pure arithmetic on decimals, never floats."""

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from goalkeeper.models.events import EventBase
from goalkeeper.models.goals import FixedValue, GoalValue, PercentOfTransaction

# Four places keep percentages of any ISO 4217 amount exact enough for every
# currency's minor unit (0 to 3 places) without inventing precision.
VALUE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str


def conversion_value(value: GoalValue, event: EventBase) -> Money | None:
    if isinstance(value, FixedValue):
        return Money(value.amount, value.currency)
    if isinstance(value, PercentOfTransaction):
        transaction = event.transaction_facts()
        if transaction is None:
            return None
        return percent_of(value, Money(transaction.value, transaction.currency))
    return None


def percent_of(value: PercentOfTransaction, transaction: Money) -> Money:
    amount = (transaction.amount * value.percent / 100).quantize(VALUE_QUANTUM, ROUND_HALF_EVEN)
    return Money(amount, transaction.currency)
