"""The value ledger: adjustments of counted conversions (goalkeeper.ledger), each written
in one transaction with the conversion's net value and the report counters it moves.

The transaction's items, by tag:
  "adjustment"   Put of the adjustment under its client-given id, only if new
  "conversion"   Update of the conversion's net value, on condition that it is counted
                 and has taken exactly the adjustments the plan was made against (two
                 racing adjustments of one conversion serialize: the later one is planned
                 again on the earlier one's result)
  "goal_day"     Update of the goal's day counters the conversion was counted in
  "attribution"  Update of the attribution counters it was counted in
so the counters always equal a recount of the conversions and their adjustments.
Conversions and adjustments carrying an ad click id also sit on the day index (gsi3),
by conversion day and by adjustment day, for the Google Ads export.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from goalkeeper import counters, keys
from goalkeeper.attributes import to_attributes
from goalkeeper.dal.client import (
    TRANSACTION_CONFLICT_ATTEMPTS,
    ConditionFailed,
    Table,
    attempts,
    back_off,
)
from goalkeeper.dal.transactions import Expression, Transaction, TransactionCancelled
from goalkeeper.ledger import AdjustmentPlan, Standing
from goalkeeper.models.common import money_text
from goalkeeper.values import Money

# The conversion item's ledger attributes (absent until its first adjustment).
ADJUSTMENTS = "adjustments"
NET_AMOUNT = "net_amount"
NET_CURRENCY = "net_currency"
RETRACTED = "retracted"


def _money(item: dict[str, Any], amount: str, currency: str) -> Money | None:
    if item.get(currency) is None:
        return None
    return Money(Decimal(item[amount]), item[currency])


def standing_of(item: dict[str, Any]) -> Standing:
    """A conversion item's value as the ledger stands."""
    adjustments = int(item.get(ADJUSTMENTS, 0))
    if not adjustments:
        return Standing(_money(item, "value_amount", "value_currency"))
    return Standing(_money(item, NET_AMOUNT, NET_CURRENCY), bool(item.get(RETRACTED)), adjustments)


def ads_click(attribution: dict[str, Any] | None) -> str | None:
    return (attribution or {}).get("click_id")


@dataclass(frozen=True)
class LedgerConversion:
    """A stored conversion, as far as adjusting it needs."""

    account_id: str
    conversion_id: str
    goal_id: str
    event_id: str
    occurred_at: str
    day: str
    status: str
    visitor_id: str | None
    attribution: dict[str, Any] | None
    standing: Standing
    gross: Money | None  # the value it was counted with

    @classmethod
    def of(cls, item: dict[str, Any]) -> "LedgerConversion":
        return cls(
            item["account_id"],
            item["conversion_id"],
            item["goal_id"],
            item["event_id"],
            item["occurred_at"],
            item["day"],
            item["status"],
            item.get("visitor_id"),
            item.get("attribution"),
            standing_of(item),
            _money(item, "value_amount", "value_currency"),
        )


@dataclass(frozen=True)
class Adjustment:
    """One stored adjustment: what was asked, and the value it replaced."""

    adjustment_id: str
    conversion_id: str
    goal_id: str
    type: str
    value: Money | None
    reason: str
    at: str
    sequence: int
    previous: Money | None
    # What the Google Ads export needs of its conversion.
    conversion_at: str
    attribution: dict[str, Any] | None

    @classmethod
    def of(cls, item: dict[str, Any]) -> "Adjustment":
        return cls(
            item["adjustment_id"],
            item["conversion_id"],
            item["goal_id"],
            item["type"],
            _money(item, "value_amount", "value_currency"),
            item["reason"],
            item["at"],
            int(item["sequence"]),
            _money(item, "previous_amount", "previous_currency"),
            item["conversion_at"],
            item.get("attribution"),
        )

    def asks(
        self,
        conversion_id: str,
        kind: str,
        amount: Decimal | None,
        currency: str | None,
        reason: str,
    ) -> bool:
        """Whether a request asks for exactly this adjustment (a resend); a request that
        named no currency asks for the one the adjustment took."""
        value = self.value
        return (conversion_id, kind, reason) == (self.conversion_id, self.type, self.reason) and (
            (value.amount, currency or value.currency) == (amount, value.currency)
            if value is not None
            else amount is None and currency is None
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "adjustment_id": self.adjustment_id,
            "conversion_id": self.conversion_id,
            "goal_id": self.goal_id,
            "type": self.type,
            "value": money_json(self.value),
            "previous_value": money_json(self.previous),
            "reason": self.reason,
            "at": self.at,
            "sequence": self.sequence,
        }


def money_json(money: Money | None) -> dict[str, str] | None:
    if money is None:
        return None
    return {"amount": money_text(money.amount), "currency": money.currency}


class AdjustmentExists(Exception):
    """The adjustment id is taken (by this adjustment sent before, or another)."""

    def __init__(self, stored: Adjustment) -> None:
        super().__init__(f"adjustment {stored.adjustment_id} exists")
        self.stored = stored


class ConversionChanged(Exception):
    """The conversion is not as the plan saw it: adjusted meanwhile, or gone."""

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("the conversion changed")
        self.item = item


@dataclass(frozen=True)
class NewAdjustment:
    """What one adjustment writes: the plan for its conversion, and its own record."""

    adjustment_id: str
    conversion: LedgerConversion
    plan: AdjustmentPlan
    kind: str
    reason: str
    at: str
    ads_day: str  # the account day it is made on (the export's adjustment days)
    shard: int  # the conversion's counters' shard


def adjustment_item(new: NewAdjustment) -> dict[str, Any]:
    conversion, plan = new.conversion, new.plan
    item: dict[str, Any] = keys.adjustment(conversion.account_id, new.adjustment_id) | {
        "kind": "adjustment",
        "account_id": conversion.account_id,
        "adjustment_id": new.adjustment_id,
        "conversion_id": conversion.conversion_id,
        "goal_id": conversion.goal_id,
        "day": conversion.day,
        "type": new.kind,
        "reason": new.reason,
        "at": new.at,
        "sequence": plan.after.adjustments,
        "conversion_at": conversion.occurred_at,
        "attribution": conversion.attribution,
        "deltas": plan.deltas,
    }
    if plan.after.value is not None:
        item |= {
            "value_amount": plan.after.value.amount,
            "value_currency": plan.after.value.currency,
        }
    if plan.before.value is not None:
        item |= {
            "previous_amount": plan.before.value.amount,
            "previous_currency": plan.before.value.currency,
        }
    if conversion.visitor_id:
        conversion_sk = keys.trace_sk(conversion.occurred_at, "G", conversion.conversion_id)
        item["gsi1pk"] = keys.visitor_trace_pk(conversion.account_id, conversion.visitor_id)
        item["gsi1sk"] = keys.adjustment_trace_sk(conversion_sk, plan.after.adjustments)
    if ads_click(conversion.attribution):
        item["gsi3pk"] = keys.ads_adjustments_day_pk(conversion.account_id, new.ads_day)
        item["gsi3sk"] = keys.trace_sk(new.at, "A", new.adjustment_id)
    return {name: value for name, value in item.items() if value is not None}


def adjustment_transaction(table: str, new: NewAdjustment) -> Transaction:
    conversion, plan = new.conversion, new.plan
    transaction = Transaction(table)
    transaction.create("adjustment", adjustment_item(new), return_old=True)
    transaction.update(
        "conversion",
        keys.conversion(conversion.account_id, conversion.conversion_id),
        *_conversion_update(plan),
        return_old=True,
    )
    if not plan.deltas and not plan.retracts:
        return transaction  # a restatement to the same value moves no counter
    labels = tuple(counters.attribution_labels(conversion.attribution).values())
    account_id, day, goal_id = conversion.account_id, conversion.day, conversion.goal_id
    cells = {
        "goal_day": keys.goal_day_counters(account_id, new.shard, day, goal_id),
        "attribution": keys.attribution(account_id, new.shard, day, goal_id, labels),
    }
    for tag, key in cells.items():
        transaction.update(tag, key, *_counters_update(plan))
    return transaction


def _conversion_update(plan: AdjustmentPlan) -> tuple[str, Expression, str]:
    expression = Expression()
    count = expression.name(ADJUSTMENTS)
    sets = [
        f"{count} = {expression.value(plan.after.adjustments)}",
        f"{expression.name(RETRACTED)} = {expression.value(plan.after.retracted)}",
    ]
    removes = []
    if plan.after.value is None:
        removes = [expression.name(NET_AMOUNT), expression.name(NET_CURRENCY)]
    else:
        sets.append(f"{expression.name(NET_AMOUNT)} = {expression.value(plan.after.value.amount)}")
        currency = expression.value(plan.after.value.currency)
        sets.append(f"{expression.name(NET_CURRENCY)} = {currency}")
    update = f"SET {', '.join(sets)}" + (f" REMOVE {', '.join(removes)}" if removes else "")
    counted = f"{expression.name('status')} = {expression.value('counted')}"
    unchanged = (
        f"{count} = {expression.value(plan.before.adjustments)}"
        if plan.before.adjustments
        else f"attribute_not_exists({count})"
    )
    return update, expression, f"{counted} AND {unchanged}"


def _counters_update(plan: AdjustmentPlan) -> tuple[str, Expression]:
    """The change of one counters item (the conversion's value and retractions)."""
    expression = Expression()
    adds = [
        f"{expression.name(counters.adjusted_attribute(currency))} {expression.value(delta)}"
        for currency, delta in sorted(plan.deltas.items())
    ]
    if plan.retracts:
        adds.append(f"{expression.name(counters.RETRACTED)} {expression.value(1)}")
    return f"ADD {', '.join(adds)}", expression


@dataclass(frozen=True)
class RatedValue:
    """A call rating's sale value: its call's transaction (services.ledger)."""

    call_id: str
    rating_event_id: str
    occurred_at: str
    value: Money

    @property
    def order_key(self) -> str:
        """Orders ratings by time, then event: the latest one holds the value."""
        return f"{self.occurred_at}#{self.rating_event_id}"

    @classmethod
    def of(cls, item: dict[str, Any]) -> "RatedValue":
        value = _money(item, "value_amount", "value_currency")
        assert value is not None  # only ratings with a value are kept
        return cls(item["call_id"], item["rating_event_id"], item["occurred_at"], value)


class Ledger:
    def __init__(self, table: Table) -> None:
        self._table = table

    def keep_latest_rating(self, account_id: str, rated: RatedValue) -> bool:
        """Keep `rated` as its call's latest rating with a value, unless a later one is
        kept; whether it is the latest (kept now, or before by a redelivery)."""
        item = keys.call_rating_value(account_id, rated.call_id) | {
            "kind": "call_rating_value",
            "call_id": rated.call_id,
            "rating_event_id": rated.rating_event_id,
            "occurred_at": rated.occurred_at,
            "order_key": rated.order_key,
            "value_amount": rated.value.amount,
            "value_currency": rated.value.currency,
        }
        expression = Expression()
        order = expression.name("order_key")
        condition = (
            f"attribute_not_exists({expression.name(keys.PK)}) OR "
            f"{order} <= {expression.value(rated.order_key)}"
        )
        try:
            self._table.call(
                "put_item",
                TableName=self._table.name,
                Item=to_attributes(item),
                ConditionExpression=condition,
                **expression.request(),
            )
        except ConditionFailed:
            return False
        return True

    def latest_rating(self, account_id: str, call_id: str) -> RatedValue | None:
        item = self._table.get(keys.call_rating_value(account_id, call_id), consistent=True)
        return RatedValue.of(item) if item else None

    def conversion(self, account_id: str, conversion_id: str) -> LedgerConversion | None:
        item = self._table.get(keys.conversion(account_id, conversion_id), consistent=True)
        return LedgerConversion.of(item) if item else None

    def adjustment(self, account_id: str, adjustment_id: str) -> Adjustment | None:
        item = self._table.get(keys.adjustment(account_id, adjustment_id), consistent=True)
        return Adjustment.of(item) if item else None

    def record(self, new: NewAdjustment) -> Adjustment:
        """Write the adjustment, the conversion's net value and the counters at once.
        AdjustmentExists: the id is taken; ConversionChanged: plan again."""
        transaction = adjustment_transaction(self._table.name, new)
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, "the adjustment kept conflicting"):
            try:
                self._table.commit(transaction)
            except TransactionCancelled as cancelled:
                taken = cancelled.reasons.get("adjustment")
                if taken is not None and taken.failed_condition:
                    raise AdjustmentExists(Adjustment.of(taken.item)) from cancelled
                changed = cancelled.reasons.get("conversion")
                if changed is not None and changed.failed_condition:
                    raise ConversionChanged(changed.item) from cancelled
                back_off(cancelled, attempt)  # lost to a concurrent write: try again
                continue
            break
        return Adjustment.of(adjustment_item(new))

    def call_conversions(self, account_id: str, call_id: str) -> list[LedgerConversion]:
        """The counted conversions of one call (the scope index, gsi2)."""
        expression = Expression()
        pk = keys.call_conversions_pk(account_id, call_id)
        items = self._table.query(
            IndexName=keys.SCOPE_INDEX,
            KeyConditionExpression=f"{expression.name('gsi2pk')} = {expression.value(pk)}",
            **expression.request(),
        )
        return [LedgerConversion.of(item) for item in items]

    def ads_conversions(self, account_id: str, day: str) -> list[LedgerConversion]:
        """The counted conversions carrying a click id of one account day, in time order,
        each with the value it was counted with (`gross`) and as it stands."""
        items = self._day_index(keys.ads_conversions_day_pk(account_id, day))
        return [LedgerConversion.of(item) for item in items]

    def ads_adjustments(self, account_id: str, day: str) -> list[Adjustment]:
        """The adjustments of conversions carrying a click id made on one account day."""
        items = self._day_index(keys.ads_adjustments_day_pk(account_id, day))
        return [Adjustment.of(item) for item in items]

    def _day_index(self, pk: str) -> Any:
        expression = Expression()
        condition = f"{expression.name('gsi3pk')} = {expression.value(pk)}"
        return self._table.query(
            IndexName=keys.DAY_INDEX, KeyConditionExpression=condition, **expression.request()
        )
