"""The goal library: each goal's current version, its history of versions, and what
the account item keeps of the library (how many goals, and a version every change
moves on). Duplicate goals and lost updates are refused by conditions inside one
TransactWriteItems, never by read-then-write.
"""

from dataclasses import dataclass
from itertools import islice
from typing import Any

from goalkeeper import keys
from goalkeeper.attributes import to_attributes
from goalkeeper.dal.client import TRANSACTION_CONFLICT_ATTEMPTS, Table, attempts, back_off
from goalkeeper.dal.transactions import Expression, Transaction, TransactionCancelled
from goalkeeper.errors import Conflict, GoalLimitReached, NotFound
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.models.common import to_item
from goalkeeper.models.goals import Goal

# The account item's count of the goals in its library (absent on accounts created
# before goals were counted).
GOAL_COUNT = "goal_count"
# Moved on by every goal change, in the change's own write: evaluation reloads an
# account's cached goal library when it sees a new version.
LIBRARY_VERSION = "library_version"
# The account's attribution settings, a map {"model", "lookback_days"} (absent:
# defaults). Kept here beside the library's own attributes because evaluation reads
# them with the library version, in one GetItem per batch; changed by dal.accounts.
ATTRIBUTION = "attribution"


def attribution_settings(item: dict[str, Any]) -> AttributionSettings:
    """An account item's attribution settings (or a projection holding ATTRIBUTION):
    the defaults where none were set."""
    return AttributionSettings.model_validate(item.get(ATTRIBUTION) or {})


@dataclass(frozen=True)
class LibraryVersion:
    """The account's goal library version, the time zone its days are counted in, and
    its attribution settings (read with them, once per stream batch)."""

    version: int
    timezone: str
    attribution: AttributionSettings


def goal_items(account_id: str, goal: Goal) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the goal's current item, its item in the history of versions)."""
    body = to_item(goal)
    current = keys.goal(account_id, goal.goal_id) | {
        "kind": "goal",
        "account_id": account_id,
        "goal_id": goal.goal_id,
        "version": goal.version,
        "goal": body,
    }
    history = keys.goal_version(account_id, goal.goal_id, goal.version) | {
        "kind": "goal_version",
        "account_id": account_id,
        "goal": body,
    }
    return current, history


def goal_from_item(item: dict[str, Any]) -> Goal:
    return Goal.model_validate(item["goal"])


class Goals:
    def __init__(self, table: Table) -> None:
        self._table = table

    def _query(self, account_id: str, *projection: str, **query: Any) -> dict[str, Any]:
        """A Query of the account's goal library (of `projection`'s attributes only)."""
        expression = Expression()
        pk = f"{expression.name(keys.PK)} = {expression.value(keys.goal_library_pk(account_id))}"
        if projection:
            query["ProjectionExpression"] = ", ".join(map(expression.name, projection))
        return {"KeyConditionExpression": pk, **query, **expression.request()}

    def library(self, account_id: str) -> list[Goal]:
        """Every goal of the account, in goal id order. Strongly consistent: evaluation
        reloads the library when its version moved on."""
        items = self._table.query(**self._query(account_id, ConsistentRead=True))
        return [goal_from_item(item) for item in items]

    def after(self, account_id: str, after_goal_id: str | None, count: int) -> list[Goal]:
        """Up to `count` of an account's goals in goal_id order, from after `after_goal_id`."""
        query = self._query(account_id, ConsistentRead=True, Limit=count)
        if after_goal_id is not None:
            query["ExclusiveStartKey"] = to_attributes(keys.goal(account_id, after_goal_id))
        return [goal_from_item(item) for item in islice(self._table.query(**query), count)]

    def count(self, account_id: str) -> int:
        query = self._query(account_id, keys.SK, ConsistentRead=True)
        return sum(1 for _ in self._table.query(**query))

    def get(self, account_id: str, goal_id: str) -> Goal | None:
        item = self._table.get(keys.goal(account_id, goal_id), consistent=True)
        return goal_from_item(item) if item else None

    def create(self, account_id: str, goal: Goal, max_goals: int) -> None:
        """Store a new goal and its first version, count it on the account item and move
        the account's library version on, all at once; GoalLimitReached when the account
        already holds `max_goals` goals, NotFound when there is no such account.

        An account created before goals were counted has no counter: it is set from a
        count of the goals the account holds, on condition that it is still absent, so a
        goal created meanwhile (which sets it first) sends this one back to add to it.
        """
        current, version = goal_items(account_id, goal)
        uncounted: int | None = None  # the goals held by an account without a counter
        # Two more rounds than for conflicts: learning that the counter is absent, then
        # that another request has just set it.
        exhausted = "creating the goal kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS + 2, exhausted):
            transaction = self._table.transaction()
            transaction.create("goal", current)
            transaction.create("version", version)
            _count_goal(transaction, account_id, max_goals, uncounted)
            try:
                self._table.commit(transaction)
                return
            except TransactionCancelled as cancelled:
                if cancelled.reasons["goal"].failed_condition:
                    # A new goal id (its creation time and 48 random bits) exists only if
                    # an earlier attempt of this very write was applied and its answer
                    # lost (a retry that DynamoDB did not recognise by its token).
                    return
                account = cancelled.reasons["account"]
                if not account.failed_condition:
                    back_off(cancelled, attempt)
                    continue
                if not account.item:
                    raise NotFound("no such account") from cancelled
                held = account.item.get(GOAL_COUNT)
                uncounted = None if held is not None else self.count(account_id)
                if (held if held is not None else uncounted) >= max_goals:  # type: ignore[operator]
                    raise GoalLimitReached(max_goals) from cancelled

    def save(self, account_id: str, goal: Goal, previous_version: int) -> None:
        """Write a goal's new current version and its history entry, refusing lost updates
        (Conflict), and move the account's library version on in the same write."""
        current, version = goal_items(account_id, goal)
        transaction = self._table.transaction()
        expression = Expression()
        condition = f"{expression.name('version')} = {expression.value(previous_version)}"
        transaction.put("goal", current, condition, expression)
        transaction.create("version", version)
        expression = Expression()
        update = f"ADD {expression.name(LIBRARY_VERSION)} {expression.value(1)}"
        condition = f"attribute_exists({expression.name(keys.PK)})"
        transaction.update("account", keys.account(account_id), update, expression, condition)
        try:
            self._table.commit(transaction)
        except TransactionCancelled as cancelled:
            raise Conflict("the goal was changed by another request; read it and retry") from (
                cancelled
            )

    def library_version(self, account_id: str) -> LibraryVersion | None:
        """The account's goal library version and time zone, read strongly consistent: a
        goal change answered a moment ago must already show (None: no such account)."""
        expression = Expression()
        projection = ", ".join(map(expression.name, (LIBRARY_VERSION, "timezone", ATTRIBUTION)))
        item = self._table.get(
            keys.account(account_id),
            consistent=True,
            ProjectionExpression=projection,
            **expression.request(),
        )
        if item is None:
            return None
        return LibraryVersion(
            int(item.get(LIBRARY_VERSION, 0)),
            str(item.get("timezone", "UTC")),
            attribution_settings(item),
        )


def _count_goal(
    transaction: Transaction, account_id: str, max_goals: int, uncounted: int | None
) -> None:
    expression = Expression()
    count, one = expression.name(GOAL_COUNT), expression.value(1)
    library = f"{expression.name(LIBRARY_VERSION)} {one}"
    if uncounted is None:
        update = f"ADD {count} {one}, {library}"
        condition = f"{count} < {expression.value(max_goals)}"
    else:
        update = f"SET {count} = {expression.value(uncounted + 1)} ADD {library}"
        condition = (
            f"attribute_exists({expression.name(keys.PK)}) AND attribute_not_exists({count})"
        )
    transaction.update(
        "account", keys.account(account_id), update, expression, condition, return_old=True
    )
