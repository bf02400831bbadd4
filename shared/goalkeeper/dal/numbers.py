"""Tracking numbers, their pools and the holds of pool numbers by visits.

- An owner item per number, outside every account (like an API key's lookup item):
  registering writes the account into it on condition that no other account holds
  it, so a number belongs to one account only. Deleting releases it.
- A number item per tracking number of the account (static or pool); deleting marks
  it deleted, so calls made while it was in use still resolve.
- A pool per site number it stands in for (`replaces`): one partition holding the
  pool item (its name), one current-hold item per number and the pool's day counters.
  A hold is taken by a conditional write on the number's current-hold item (free,
  expired, or held by the same visit), in one transaction with the hold's history
  item: a number is never held by two live visits, and no hold goes unrecorded.
- Hold history per number, sorted by start: renewals extend a hold, another visit's
  hold is a new item; a call finds the hold covering its start with one Query.
"""

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from goalkeeper import keys
from goalkeeper.dal.client import (
    TRANSACTION_CONFLICT_ATTEMPTS,
    ConditionFailed,
    Table,
    attempts,
    back_off,
)
from goalkeeper.dal.transactions import Expression, TransactionCancelled
from goalkeeper.errors import Conflict, FieldProblem, NotFound
from goalkeeper.models.common import iso
from goalkeeper.numbers import Hold, NumberState

# A pool's day item: new holds, answers finding the pool exhausted, calls matched to a
# visit and not, and the most holds at once an assignment saw.
ASSIGNMENTS, EXHAUSTED, CALLS_MATCHED, CALLS_UNMATCHED = (
    "assignments",
    "exhausted",
    "calls_matched",
    "calls_unmatched",
)
PEAK = "peak_holds"


@dataclass(frozen=True)
class PoolView:
    """What one consistent Query of a pool's partition reads: its name, today's peak
    so far, and every number's current hold."""

    name: str
    peak_today: int
    numbers: list[NumberState]


@dataclass(frozen=True)
class PoolPeriod:
    """A pool's name (None: no such pool) and its day counters summed over a period
    (the peak: the highest of its days)."""

    name: str | None
    assignments: int = 0
    exhausted: int = 0
    calls_matched: int = 0
    calls_unmatched: int = 0
    peak_holds: int = 0


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _state(item: dict[str, Any]) -> NumberState:
    return NumberState(
        number=item["number"],
        created_at=datetime.fromisoformat(item["created_at"]),
        visit_id=item.get("visit_id"),
        held_until=_time(item.get("held_until")),
        hold_started=_time(item.get("hold_started")),
        retired=bool(item.get("retired")),
    )


def _hold(item: dict[str, Any]) -> Hold:
    return Hold(
        number=item["number"],
        started_at=datetime.fromisoformat(item["started_at"]),
        until=datetime.fromisoformat(item["until"]),
        visitor_id=item["visitor_id"],
        visit_id=item["visit_id"],
        attribution=item.get("attribution"),
    )


def _sets(expression: Expression, values: dict[str, Any]) -> str:
    return ", ".join(f"{expression.name(n)} = {expression.value(v)}" for n, v in values.items())


class Numbers:
    def __init__(self, table: Table) -> None:
        self._table = table

    # --- the account's numbers ----------------------------------------------------------

    def register(self, account_id: str, item: dict[str, Any], pool_name: str | None) -> None:
        """Store a number item (built by the service) and claim the number for the
        account, at once; for a pool number also its pool and its current-hold item.
        Conflict naming the field when another account holds the number, this account
        holds it already, or its pool has another name."""
        number, replaces = item["number"], item.get("replaces")
        transaction = self._table.transaction()
        owner = Expression()
        account = owner.name("account_id")
        me = owner.value(account_id)
        transaction.update(
            "owner",
            keys.number_owner(number),
            f"SET {account} = {me}",
            owner,
            f"attribute_not_exists({account}) OR {account} = {me}",
        )
        stored = Expression()
        transaction.put(
            "number",
            keys.number(account_id, number) | item,
            f"attribute_not_exists({stored.name(keys.PK)}) OR "
            f"attribute_exists({stored.name('deleted_at')})",
            stored,
        )
        if replaces is not None and pool_name is not None:
            pool = Expression()
            name = pool.name("name")
            wanted = pool.value(pool_name)
            transaction.update(
                "pool",
                keys.pool(account_id, replaces),
                f"SET {name} = {wanted}, {pool.name('replaces')} = {pool.value(replaces)}",
                pool,
                f"attribute_not_exists({name}) OR {name} = {wanted}",
                return_old=True,
            )
            slot = Expression()
            created = slot.name("created_at")
            transaction.update(
                "slot",
                keys.pool_number(account_id, replaces, number),
                f"SET {slot.name('number')} = {slot.value(number)}, {created} = "
                f"if_not_exists({created}, {slot.value(item['created_at'])}) "
                f"REMOVE {slot.name('retired')}",
                slot,
            )
        try:
            self._table.commit(transaction)
        except TransactionCancelled as cancelled:
            reasons = cancelled.reasons
            if reasons["owner"].failed_condition:
                raise Conflict(
                    f"{number} is registered by another account",
                    [FieldProblem("number", "is registered by another account")],
                ) from cancelled
            if reasons["number"].failed_condition:
                raise Conflict(
                    f"{number} is already one of this account's numbers; delete it first "
                    "(DELETE /v1/numbers/{number}) to register it again",
                    [FieldProblem("number", "is already registered in this account")],
                ) from cancelled
            if "pool" in reasons and reasons["pool"].failed_condition:
                held = reasons["pool"].item.get("name")
                raise Conflict(
                    f"the pool standing in for {replaces} is named {held!r}",
                    [FieldProblem("pool", f"must be {held!r}, the name of that pool")],
                ) from cancelled
            raise

    def all(self, account_id: str) -> list[dict[str, Any]]:
        """Every number item of the account, deleted ones included (one Query)."""
        expression = Expression()
        condition = f"{expression.name(keys.PK)} = {expression.value(keys.numbers_pk(account_id))}"
        return list(
            self._table.query(
                KeyConditionExpression=condition, ConsistentRead=True, **expression.request()
            )
        )

    def get(self, account_id: str, number: str) -> dict[str, Any] | None:
        return self._table.get(keys.number(account_id, number), consistent=True)

    def delete(self, account_id: str, item: dict[str, Any], now: datetime) -> None:
        """Mark the number deleted, release it to other accounts and, for a pool number,
        take it out of its pool (a live hold runs out; its history stays)."""
        number, replaces = item["number"], item.get("replaces")
        transaction = self._table.transaction()
        marked = Expression()
        deleted = marked.name("deleted_at")
        transaction.update(
            "number",
            keys.number(account_id, number),
            f"SET {deleted} = {marked.value(iso(now))}",
            marked,
            f"attribute_exists({marked.name(keys.PK)}) AND attribute_not_exists({deleted})",
        )
        owner = Expression()
        account = owner.name("account_id")
        transaction.update(
            "owner",
            keys.number_owner(number),
            f"REMOVE {account}",
            owner,
            f"{account} = {owner.value(account_id)}",
        )
        if replaces is not None:
            slot = Expression()
            transaction.update(
                "slot",
                keys.pool_number(account_id, replaces, number),
                f"SET {slot.name('retired')} = {slot.value(True)}",
                slot,
            )
        try:
            self._table.commit(transaction)
        except TransactionCancelled as cancelled:
            if cancelled.codes() <= {"ConditionalCheckFailed"}:
                raise NotFound("no such number") from cancelled
            raise

    # --- holds --------------------------------------------------------------------------

    def pool_view(self, account_id: str, replaces: str, day: str) -> PoolView | None:
        """The pool standing in for `replaces` (None: there is none), from today's day
        item on: the day item, every number's current hold, the pool item."""
        expression = Expression()
        pk, sk = expression.name(keys.PK), expression.name(keys.SK)
        first = keys.pool_day(account_id, replaces, day)[keys.SK]
        condition = (
            f"{pk} = {expression.value(keys.pool_pk(account_id, replaces))} AND "
            f"{sk} >= {expression.value(first)}"
        )
        items = list(
            self._table.query(
                KeyConditionExpression=condition, ConsistentRead=True, **expression.request()
            )
        )
        pool = next((item for item in items if item[keys.SK] == "POOL"), None)
        if pool is None:
            return None
        today = next((item for item in items if item[keys.SK] == first), {})
        return PoolView(
            name=pool["name"],
            peak_today=int(today.get(PEAK, 0)),
            numbers=[_state(item) for item in items if item[keys.SK].startswith("N#")],
        )

    def take(
        self,
        account_id: str,
        replaces: str,
        number: str,
        hold: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Give the number to the visit of `hold` (visitor_id, visit_id, attribution,
        started_at, until, expires_at), if it is free, expired or that visit's: the current hold,
        its history item and the day's assignment count, in one transaction. False:
        another visit holds it now."""
        transaction = self._table.transaction()
        current = Expression()
        held_until = current.name("held_until")
        visit = current.name("visit_id")
        transaction.update(
            "slot",
            keys.pool_number(account_id, replaces, number),
            "SET "
            + _sets(
                current,
                {
                    "visit_id": hold["visit_id"],
                    "visitor_id": hold["visitor_id"],
                    "hold_started": hold["started_at"],
                    "held_until": hold["until"],
                },
            ),
            current,
            f"attribute_exists({current.name(keys.PK)}) "
            f"AND attribute_not_exists({current.name('retired')}) "
            f"AND (attribute_not_exists({held_until}) OR {held_until} <= {current.value(iso(now))}"
            f" OR {visit} = {current.value(hold['visit_id'])})",
        )
        transaction.create(
            "hold",
            keys.hold(account_id, number, hold["started_at"])
            | {"kind": "hold", "number": number, "replaces": replaces}
            | {name: value for name, value in hold.items() if value is not None},
        )
        counted = Expression()
        transaction.update(
            "day",
            keys.pool_day(account_id, replaces, hold["started_at"][:10]),
            f"ADD {counted.name(ASSIGNMENTS)} {counted.value(1)}",
            counted,
        )
        return self._commit_unless_taken(transaction)

    def renew(
        self, account_id: str, replaces: str, state: NumberState, until: str, now: datetime
    ) -> bool:
        """Extend the visit's live hold of the number, and its history item, to `until`.
        False: the hold ran out, moved on or its number was deleted meanwhile."""
        assert state.hold_started is not None and state.visit_id is not None
        started = iso(state.hold_started)
        transaction = self._table.transaction()
        current = Expression()
        held_until = current.name("held_until")
        transaction.update(
            "slot",
            keys.pool_number(account_id, replaces, state.number),
            f"SET {held_until} = {current.value(until)}",
            current,
            f"{current.name('visit_id')} = {current.value(state.visit_id)} AND "
            f"{current.name('hold_started')} = {current.value(started)} AND "
            f"{held_until} > {current.value(iso(now))} AND "
            f"attribute_not_exists({current.name('retired')})",
        )
        history = Expression()
        transaction.update(
            "hold",
            keys.hold(account_id, state.number, started),
            f"SET {history.name('until')} = {history.value(until)}",
            history,
            f"attribute_exists({history.name(keys.PK)})",
        )
        return self._commit_unless_taken(transaction)

    def _commit_unless_taken(self, transaction: Any) -> bool:
        exhausted = "the pool kept conflicting with concurrent assignments"
        taken = False
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, exhausted):
            try:
                self._table.commit(transaction)
                break
            except TransactionCancelled as cancelled:
                if cancelled.reasons["slot"].failed_condition:
                    taken = True
                    break
                back_off(cancelled, attempt)
        return not taken

    def count_exhausted(self, account_id: str, replaces: str, day: str) -> None:
        self._add(keys.pool_day(account_id, replaces, day), EXHAUSTED)

    def raise_peak(self, account_id: str, replaces: str, day: str, holds: int) -> None:
        """Record `holds` as the day's peak unless a higher one is recorded already."""
        expression = Expression()
        peak = expression.name(PEAK)
        held = expression.value(holds)
        with contextlib.suppress(ConditionFailed):  # a higher peak is recorded
            self._table.update(
                keys.pool_day(account_id, replaces, day),
                f"SET {peak} = {held}",
                condition=f"attribute_not_exists({peak}) OR {peak} < {held}",
                **expression.request(),
            )

    def hold_at(self, account_id: str, number: str, at: datetime) -> Hold | None:
        """The newest hold of the number that started at or before `at` (it covers `at`
        if `at` is within it): one consistent Query, Limit 1, newest first."""
        expression = Expression()
        pk, sk = expression.name(keys.PK), expression.name(keys.SK)
        latest = keys.hold_at_or_before(iso(at))
        condition = (
            f"{pk} = {expression.value(keys.holds_pk(account_id, number))} AND "
            f"{sk} BETWEEN {expression.value('H#')} AND {expression.value(latest)}"
        )
        page = self._table.page(
            1,
            None,
            KeyConditionExpression=condition,
            ScanIndexForward=False,
            ConsistentRead=True,
            **expression.request(),
        )
        return _hold(page.items[0]) if page.items else None

    # --- calls and the report -----------------------------------------------------------

    def count_call(
        self,
        account_id: str,
        replaces: str,
        day: str,
        event_id: str,
        matched: bool,
        expires_at: int,
    ) -> None:
        """Count a call to a pool number in its pool's day, once per event (a marker
        item created in the same transaction: a repeat changes nothing). The marker
        expires with its event."""
        transaction = self._table.transaction()
        marker = {"kind": "pool_call", "pool": replaces, "expires_at": expires_at}
        transaction.create("marker", keys.call_counted(account_id, event_id) | marker)
        counted = Expression()
        counter = CALLS_MATCHED if matched else CALLS_UNMATCHED
        transaction.update(
            "day",
            keys.pool_day(account_id, replaces, day),
            f"ADD {counted.name(counter)} {counted.value(1)}",
            counted,
        )
        exhausted = "counting the call kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, exhausted):
            try:
                self._table.commit(transaction)
                return
            except TransactionCancelled as cancelled:
                if cancelled.reasons["marker"].failed_condition:
                    return  # counted already
                back_off(cancelled, attempt)

    def pool_period(
        self, account_id: str, replaces: str, first_day: str, last_day: str
    ) -> PoolPeriod:
        """The pool's name and its counters from `first_day` to `last_day`: one Query
        from the first day's item to the pool item (the numbers' items between)."""
        expression = Expression()
        pk, sk = expression.name(keys.PK), expression.name(keys.SK)
        low, high = keys.pool_days_range(first_day, last_day)
        condition = (
            f"{pk} = {expression.value(keys.pool_pk(account_id, replaces))} AND "
            f"{sk} >= {expression.value(low)}"
        )
        name = None
        days: list[dict[str, Any]] = []
        for item in self._table.query(
            KeyConditionExpression=condition, ConsistentRead=True, **expression.request()
        ):
            if item[keys.SK] == "POOL":
                name = item["name"]
            elif item[keys.SK].startswith("D#") and item[keys.SK] <= high:
                days.append(item)

        def total(counter: str) -> int:
            return sum(int(day.get(counter, 0)) for day in days)

        return PoolPeriod(
            name=name,
            assignments=total(ASSIGNMENTS),
            exhausted=total(EXHAUSTED),
            calls_matched=total(CALLS_MATCHED),
            calls_unmatched=total(CALLS_UNMATCHED),
            peak_holds=max((int(day.get(PEAK, 0)) for day in days), default=0),
        )

    def _add(self, key: dict[str, str], counter: str) -> None:
        expression = Expression()
        self._table.update(
            key,
            f"ADD {expression.name(counter)} {expression.value(1)}",
            **expression.request(),
        )
