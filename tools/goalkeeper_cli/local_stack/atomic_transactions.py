"""TransactWriteItems for the embedded endpoint: all conditions first, then the writes.

moto applies a transaction write by write and, on a failed condition, restores
a deep copy of every table it touched. That copy makes each transaction cost
time proportional to the table (measured on moto 5.2.5's server, Nov 2026: 58
transactions/s on an empty table, 23 at 1,000 items, 7 at 4,000) and, without a
lock, lets two transactions both win (see goalkeeper_cli.local_stack.dynamodb).
The embedded endpoint already serves one request at a time; with that, checking
every condition before writing anything is all-or-nothing without any copy.
Should a write still fail half way (an invalid update expression), the items
it touched are put back from their own before-images, and the stream records
it emitted are withdrawn, so the table is exactly as before.

Written for moto 5.2.5 only (see moto_version): another version is refused before
its internals are imported.
"""

# moto's version is checked before its internals are imported, hence code among imports.
# ruff: noqa: E402

import copy
from typing import Any

from goalkeeper_cli.local_stack import moto_version

moto_version.check()

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

_OPERATIONS = ("ConditionCheck", "Put", "Delete", "Update")


def _key(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {name: op["Item"][name] for name in names}


def _failed_condition(backend: DynamoDBBackend, op: dict[str, Any], key: dict[str, Any]) -> Any:
    """None when the condition holds, else the cancellation reason for this item."""
    current = backend.get_item(op["TableName"], key)
    expression = op.get("ConditionExpression")
    if expression is None:
        return None
    condition = get_filter_expression(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return None
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", ConditionalCheckFailed().message, old)


def _apply(backend: DynamoDBBackend, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    table_name = op["TableName"]
    if op_type == "Put":
        backend.put_item(table_name, op["Item"])
    elif op_type == "Update":
        backend.update_item(
            table_name,
            key,
            update_expression=op["UpdateExpression"],
            expression_attribute_names=op.get("ExpressionAttributeNames"),
            expression_attribute_values=op.get("ExpressionAttributeValues"),
        )
    elif op_type == "Delete":
        backend.delete_item(table_name, key)


def _restore(backend: DynamoDBBackend, before: list[tuple[str, dict[str, Any], Any]]) -> None:
    for table_name, key, item in reversed(before):
        table = backend.get_table(table_name)
        hash_value, range_value = backend.get_keys_value(table, key)
        if item is None:
            if table.get_item(hash_value, range_value) is not None:
                table.delete_item(hash_value, range_value)
        else:
            table.put_item(item.to_json()["Attributes"])


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    reasons: list[Any] = []
    targets: set[tuple[str, str]] = set()
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in _OPERATIONS:
            raise ValueError("Unsupported transaction operation")
        key = _key(self, op_type, op)
        target = (op["TableName"], str(dict(sorted(key.items()))))
        if target in targets:
            raise MultipleTransactionsException()
        targets.add(target)
        reasons.append(_failed_condition(self, op, key) or (None, None, None))
        planned.append((op_type, op, key))
    if any(code is not None for code, _, _ in reasons):
        raise TransactionCanceledException(reasons)

    tables = {op["TableName"] for _, op, _ in planned}
    stream_lengths = {
        name: len(shard.items)
        for name in tables
        if (shard := self.get_table(name).stream_shard) is not None
    }
    before: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, key in planned:
            before.append(
                (op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key)))
            )
            _apply(self, op_type, op, key)
    except Exception:
        _restore(self, before)
        for name, length in stream_lengths.items():
            del self.get_table(name).stream_shard.items[length:]
        raise


def install() -> None:
    """Make every moto DynamoDB backend in this process use the all-or-nothing version."""
    moto_version.check()
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
