"""Webhook subscriptions, their deliveries, and the event-bus marker of a conversion.

- A webhook item per subscription, under the account's webhooks partition, beside a
  counter that every create and delete moves in the same transaction (the limit holds
  under concurrent creates). Deleting marks the webhook deleted (its delivery log stays).
- A delivery item per (conversion, webhook), created with a conditional put keyed by
  both: a replayed stream batch finds it and creates nothing twice. Each attempt is
  claimed with a conditional update on `attempts`, so two copies of one queue message
  never both send it.
- A marker per conversion put on the event bus (see `Notifications.publish_claim`).
"""

import contextlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from goalkeeper import keys
from goalkeeper.dal.client import (
    TRANSACTION_CONFLICT_ATTEMPTS,
    ConditionFailed,
    Page,
    Table,
    attempts,
    back_off,
)
from goalkeeper.dal.transactions import Expression, TransactionCancelled
from goalkeeper.errors import Conflict, NotFound, WebhookLimitReached

if TYPE_CHECKING:  # the API's models: every function opens the Dal, few list webhooks
    from goalkeeper.models.webhooks import Delivery, Webhook

COUNT = "webhooks"
# A claimed attempt that never recorded its outcome (the function died) may be claimed
# again once this long has passed: more than the request timeout and the function's.
LEASE_SECONDS = 120


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def webhook_from_item(item: dict[str, Any]) -> "Webhook":
    from goalkeeper.models.webhooks import Webhook

    return Webhook(
        webhook_id=item["webhook_id"],
        url=item["url"],
        goal_ids=item.get("goal_ids"),
        description=item.get("description"),
        status=item["status"],
        created_at=item["created_at"],
        disabled_reason=item.get("disabled_reason"),
    )


def delivery_from_item(item: dict[str, Any]) -> "Delivery":
    from goalkeeper.models.webhooks import Delivery

    code = item.get("last_response_code")
    due = item.get("next_attempt_at")
    return Delivery(
        delivery_id=item["delivery_id"],
        webhook_id=item["webhook_id"],
        message_id=item["message_id"],
        conversion_id=item["conversion_id"],
        goal_id=item["goal_id"],
        status=item["status"],
        attempts=int(item.get("attempts", 0)),
        last_response_code=None if code is None else int(code),
        last_error=item.get("last_error"),
        next_attempt_at=None if due is None else iso(float(due)),
        created_at=item["created_at"],
        delivered_at=item.get("delivered_at"),
    )


def _set(expression: Expression, changes: dict[str, Any]) -> str:
    """SET the changes' values; REMOVE the attributes set to None."""
    sets = [
        f"{expression.name(n)} = {expression.value(v)}" for n, v in changes.items() if v is not None
    ]
    removed = [expression.name(n) for n, v in changes.items() if v is None]
    update = f"SET {', '.join(sets)}" if sets else ""
    if removed:
        update += f" REMOVE {', '.join(removed)}"
    return update.strip()


class Webhooks:
    def __init__(self, table: Table) -> None:
        self._table = table

    # --- subscriptions ------------------------------------------------------------------

    def create(self, item: dict[str, Any], limit: int) -> None:
        """Store a new webhook item (built by the service) and count it, at once;
        WebhookLimitReached when the account already holds `limit`."""
        account_id = item["account_id"]
        exhausted = "creating the webhook kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, exhausted):
            transaction = self._table.transaction()
            transaction.create("webhook", keys.webhook(account_id, item["webhook_id"]) | item)
            expression = Expression()
            count = expression.name(COUNT)
            transaction.update(
                "count",
                keys.webhook_count(account_id),
                f"ADD {count} {expression.value(1)}",
                expression,
                f"attribute_not_exists({count}) OR {count} < {expression.value(limit)}",
            )
            try:
                self._table.commit(transaction)
                return
            except TransactionCancelled as cancelled:
                if cancelled.reasons["count"].failed_condition:
                    raise WebhookLimitReached(limit) from cancelled
                if cancelled.reasons["webhook"].failed_condition:
                    return  # our own earlier attempt, applied with its answer lost
                back_off(cancelled, attempt)

    def items(self, account_id: str) -> list[dict[str, Any]]:
        """Every webhook item of the account, deleted ones included (a handful)."""
        expression = Expression()
        pk, sk = expression.name(keys.PK), expression.name(keys.SK)
        condition = (
            f"{pk} = {expression.value(keys.webhooks_pk(account_id))} AND "
            f"begins_with({sk}, {expression.value('WH#')})"
        )
        return list(
            self._table.query(
                KeyConditionExpression=condition, ConsistentRead=True, **expression.request()
            )
        )

    def get_item(self, account_id: str, webhook_id: str) -> dict[str, Any] | None:
        return self._table.get(keys.webhook(account_id, webhook_id), consistent=True)

    def delete(self, account_id: str, webhook_id: str) -> None:
        """Mark the webhook deleted and uncount it; NotFound if there is none (or it was)."""
        exhausted = "deleting the webhook kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, exhausted):
            transaction = self._table.transaction()
            expression = Expression()
            status = expression.name("status")
            deleted = expression.value("deleted")
            transaction.update(
                "webhook",
                keys.webhook(account_id, webhook_id),
                f"SET {status} = {deleted}",
                expression,
                f"attribute_exists({expression.name(keys.PK)}) AND {status} <> {deleted}",
            )
            counting = Expression()
            transaction.update(
                "count",
                keys.webhook_count(account_id),
                f"ADD {counting.name(COUNT)} {counting.value(-1)}",
                counting,
            )
            try:
                self._table.commit(transaction)
                return
            except TransactionCancelled as cancelled:
                if cancelled.reasons["webhook"].failed_condition:
                    raise NotFound("no such webhook") from cancelled
                back_off(cancelled, attempt)

    def disable(self, account_id: str, webhook_id: str, reason: str) -> None:
        """Stop deliveries to an active webhook (a 410 from its receiver)."""
        expression = Expression()
        status = expression.name("status")
        update = _set(expression, {"status": "disabled", "disabled_reason": reason})
        with contextlib.suppress(ConditionFailed):  # deleted or disabled already
            self._table.update(
                keys.webhook(account_id, webhook_id),
                update,
                condition=f"{status} = {expression.value('active')}",
                **expression.request(),
            )

    # --- deliveries ---------------------------------------------------------------------

    def create_delivery(self, item: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create a delivery unless its (conversion, webhook) has one: (the item as
        stored, whether this call created it)."""
        key = keys.delivery(item["account_id"], item["webhook_id"], item["delivery_id"])
        stored = key | item
        try:
            self._table.call(
                "put_item",
                TableName=self._table.name,
                Item=_attributes(stored),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as exists:
            return exists.item, False
        return stored, True

    def get_delivery(
        self, account_id: str, webhook_id: str, delivery_id: str
    ) -> dict[str, Any] | None:
        return self._table.get(keys.delivery(account_id, webhook_id, delivery_id), consistent=True)

    def deliveries(
        self, account_id: str, webhook_id: str, limit: int, start: dict[str, Any] | None
    ) -> Page:
        expression = Expression()
        condition = (
            f"{expression.name(keys.PK)} = "
            f"{expression.value(keys.deliveries_pk(account_id, webhook_id))}"
        )
        return self._table.page(
            limit, start, KeyConditionExpression=condition, **expression.request()
        )

    def claim_attempt(
        self, account_id: str, webhook_id: str, delivery_id: str, attempt: int, now: float
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Take attempt number `attempt` (0-based) of a pending delivery, or retake one
        whose sender's lease ran out: (the delivery as claimed, None), or (None, the
        delivery as it is) when another copy of the message took it, or it moved on."""
        expression = Expression()
        tries, status, lease = (expression.name(n) for n in ("attempts", "status", "lease_until"))
        n, sending = expression.value(attempt), expression.value("sending")
        condition = (
            f"({tries} = {n} AND {status} = {expression.value('pending')}) OR "
            f"({tries} = {expression.value(attempt + 1)} AND {status} = {sending} "
            f"AND {lease} < {expression.value(Decimal(int(now)))})"
        )
        update = (
            f"SET {tries} = {expression.value(attempt + 1)}, {status} = {sending}, "
            f"{lease} = {expression.value(int(now) + LEASE_SECONDS)}"
        )
        try:
            claimed = self._table.update(
                keys.delivery(account_id, webhook_id, delivery_id),
                update,
                condition=condition,
                returned="ALL_NEW",
                old_on_failure=True,
                **expression.request(),
            )
        except ConditionFailed as failed:
            return None, failed.item or None
        return claimed, None

    def record_attempt(
        self,
        account_id: str,
        webhook_id: str,
        delivery_id: str,
        attempts_made: int,
        changes: dict[str, Any],
    ) -> bool:
        """Write an attempt's outcome, on condition the attempt is still ours (the
        delivery still `sending` that attempt); False when it is not."""
        expression = Expression()
        condition = (
            f"{expression.name('attempts')} = {expression.value(attempts_made)} AND "
            f"{expression.name('status')} = {expression.value('sending')}"
        )
        try:
            self._table.update(
                keys.delivery(account_id, webhook_id, delivery_id),
                _set(expression, changes | {"lease_until": None}),
                condition=condition,
                **expression.request(),
            )
        except ConditionFailed:
            return False
        return True

    def restart(
        self, account_id: str, webhook_id: str, delivery_id: str, now: float
    ) -> dict[str, Any]:
        """Make a finished delivery pending again, its retry window starting now (the
        retry route); Conflict while it is still pending or sending, NotFound if none."""
        expression = Expression()
        status = expression.name("status")
        finished = ", ".join(expression.value(s) for s in ("delivered", "dead", "cancelled"))
        update = _set(
            expression,
            {
                "status": "pending",
                "window_start": Decimal(str(round(now, 3))),
                "next_attempt_at": Decimal(str(round(now, 3))),
            },
        )
        # Delays grow again from the first: failures are counted from `window_base`.
        update += f", {expression.name('window_base')} = {expression.name('attempts')}"
        try:
            restarted = self._table.update(
                keys.delivery(account_id, webhook_id, delivery_id),
                update,
                condition=f"{status} IN ({finished})",
                returned="ALL_NEW",
                old_on_failure=True,
                **expression.request(),
            )
        except ConditionFailed as failed:
            if not failed.item:
                raise NotFound("no such delivery") from failed
            raise Conflict(
                f"the delivery is {failed.item['status']}: it is already being retried"
            ) from failed
        return restarted

    # --- the event bus ------------------------------------------------------------------

    def publish_claim(self, account_id: str, conversion_id: str, now: str) -> bool:
        """Whether the conversion still has to be put on the bus: True the first time, and
        again while an earlier put never confirmed (the marker is still `pending`)."""
        key = keys.conversion_published(account_id, conversion_id)
        try:
            self._table.call(
                "put_item",
                TableName=self._table.name,
                Item=_attributes(key | {"kind": "bus_marker", "state": "pending", "at": now}),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ConditionFailed as exists:
            return exists.item.get("state") != "published"
        return True

    def published(self, account_id: str, conversion_id: str, event_id: str) -> None:
        expression = Expression()
        update = _set(expression, {"state": "published", "bus_event_id": event_id})
        self._table.update(
            keys.conversion_published(account_id, conversion_id), update, **expression.request()
        )


def _attributes(item: dict[str, Any]) -> dict[str, Any]:
    from goalkeeper.attributes import to_attributes

    return to_attributes(item)
