"""TransactWriteItems built by tag: every item carries a tag saying what it *is*, and a
cancellation is read back by tag, never by position (after PynamoDB's
`transactions.py`). Expression placeholders are assigned for you."""

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from goalkeeper.attributes import from_attributes, to_attributes

# DynamoDB's limit on the items of one TransactWriteItems.
MAX_ITEMS = 100


@dataclass
class Expression:
    """Names and values of one item's expressions, each given a placeholder once."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {}
        if self.names:
            request["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            request["ExpressionAttributeValues"] = to_attributes(self.values)
        return request


@dataclass(frozen=True)
class Reason:
    """Why one item of a cancelled transaction failed ("None": it did not), with the item
    as it was when the item asked for it."""

    code: str
    item: dict[str, Any]

    @property
    def failed_condition(self) -> bool:
        return self.code == "ConditionalCheckFailed"


class TransactionCancelled(Exception):
    def __init__(self, reasons: dict[Hashable, Reason]) -> None:
        super().__init__(sorted({reason.code for reason in reasons.values()} - {"None"}))
        self.reasons = reasons

    def codes(self) -> set[str]:
        return {reason.code for reason in self.reasons.values()} - {"None"}


@dataclass
class Transaction:
    table: str
    _items: list[tuple[Hashable, dict[str, Any]]] = field(default_factory=list)
    _tags: set[Hashable] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self._items)

    def put(
        self,
        tag: Hashable,
        item: Mapping[str, Any],
        condition: str | None = None,
        expression: Expression | None = None,
        return_old: bool = False,
    ) -> None:
        request = {"TableName": self.table, "Item": to_attributes(item)}
        self._add(tag, "Put", request, condition, expression, return_old)

    def create(self, tag: Hashable, item: Mapping[str, Any], return_old: bool = False) -> None:
        """A put that only creates: it fails if the item exists."""
        self.put(tag, item, "attribute_not_exists(pk)", return_old=return_old)

    def update(
        self,
        tag: Hashable,
        key: Mapping[str, str],
        update: str,
        expression: Expression,
        condition: str | None = None,
        return_old: bool = False,
    ) -> None:
        request = {"TableName": self.table, "Key": to_attributes(key), "UpdateExpression": update}
        self._add(tag, "Update", request, condition, expression, return_old)

    def check(
        self, tag: Hashable, key: Mapping[str, str], condition: str, expression: Expression
    ) -> None:
        request = {"TableName": self.table, "Key": to_attributes(key)}
        self._add(tag, "ConditionCheck", request, condition, expression, return_old=True)

    def _add(
        self,
        tag: Hashable,
        operation: str,
        request: dict[str, Any],
        condition: str | None,
        expression: Expression | None,
        return_old: bool,
    ) -> None:
        if tag in self._tags:
            raise ValueError(f"two items tagged {tag!r} in one transaction")
        self._tags.add(tag)
        if condition is not None:
            request["ConditionExpression"] = condition
        if return_old:
            request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if expression is not None:
            request |= expression.request()
        self._items.append((tag, {operation: request}))

    def tagged(self) -> dict[Hashable, dict[str, Any]]:
        """The items by tag, as they will be sent."""
        return dict(self._items)

    def request(self) -> list[dict[str, Any]]:
        if len(self._items) > MAX_ITEMS:
            raise ValueError(f"{len(self._items)} items in one transaction (at most {MAX_ITEMS})")
        return [item for _, item in self._items]

    def reasons(self, cancellation: list[dict[str, Any]]) -> dict[Hashable, Reason]:
        """A TransactionCanceledException's CancellationReasons, by the tag of each item."""
        return {
            tag: Reason(reason.get("Code", "None"), from_attributes(reason.get("Item", {})))
            for (tag, _), reason in zip(self._items, cancellation, strict=False)
        }
