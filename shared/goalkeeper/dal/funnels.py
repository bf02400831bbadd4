"""Funnels: their definitions, kept beside the goal library. A funnel change moves the
account's library version on in its own write (evaluation reloads both then), on
condition that the version is still the one the change was checked against, so the
checks of a funnel (its goals exist, its limits) cannot race another library change.
"""

from typing import Any

from goalkeeper import keys
from goalkeeper.dal.client import Table
from goalkeeper.dal.goals import LIBRARY_VERSION
from goalkeeper.dal.transactions import Expression, Transaction, TransactionCancelled
from goalkeeper.errors import Conflict
from goalkeeper.models.common import to_item
from goalkeeper.models.funnels import Funnel


def funnel_from_item(item: dict[str, Any]) -> Funnel:
    return Funnel.model_validate(item["funnel"])


class Funnels:
    def __init__(self, table: Table) -> None:
        self._table = table

    def all(self, account_id: str) -> list[Funnel]:
        """Every funnel of the account, deleted ones included (one consistent Query)."""
        expression = Expression()
        pk = expression.value(keys.funnels_pk(account_id))
        items = self._table.query(
            KeyConditionExpression=f"{expression.name(keys.PK)} = {pk}",
            ConsistentRead=True,
            **expression.request(),
        )
        return [funnel_from_item(item) for item in items]

    def get(self, account_id: str, funnel_id: str) -> Funnel | None:
        item = self._table.get(keys.funnel(account_id, funnel_id), consistent=True)
        return funnel_from_item(item) if item else None

    def save(self, account_id: str, funnel: Funnel, library_version: int) -> None:
        """Store the funnel (new, or deleted) and move the library version on, if it is
        still `library_version`; Conflict otherwise (a concurrent library change)."""
        transaction = Transaction(self._table.name)
        item = keys.funnel(account_id, funnel.funnel_id) | {
            "kind": "funnel",
            "account_id": account_id,
            "funnel_id": funnel.funnel_id,
            "funnel": to_item(funnel),
        }
        transaction.put("funnel", item)
        expression = Expression()
        version = expression.name(LIBRARY_VERSION)
        update = f"SET {version} = {expression.value(library_version + 1)}"
        condition = f"attribute_exists({expression.name(keys.PK)}) AND " + (
            f"{version} = {expression.value(library_version)}"
            if library_version
            else f"(attribute_not_exists({version}) OR {version} = {expression.value(0)})"
        )
        transaction.update("account", keys.account(account_id), update, expression, condition)
        try:
            self._table.commit(transaction)
        except TransactionCancelled as cancelled:
            raise Conflict(
                "the goal library changed while the funnel was being saved; try again"
            ) from cancelled
