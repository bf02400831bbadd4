"""Counts what a botocore client asks of DynamoDB: requests per operation, items
read and written, and the read and write units DynamoDB would charge for them
(on-demand rules: reads 0.5 unit per 4 KB eventually consistent, a missing key
still costs 0.5; writes 1 unit per 1 KB, doubled inside transactions; a put also
writes each secondary index whose keys the item has, 1 unit per 1 KB of what the
index projects). Index writes are counted for puts (PutItem, BatchWriteItem, a
transaction's Put) when the meter is given the table's indexes."""

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

READ_BLOCK = 4096
WRITE_BLOCK = 1024


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values, in bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    kind, data = next(iter(value.items()))
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return (len(data.strip("-").replace(".", "")) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in data)
    if kind == "SS":
        return sum(len(v.encode()) for v in data)
    if kind == "NS":
        return sum((len(v) + 1) // 2 + 1 for v in data)
    return len(str(data))


@dataclass(frozen=True)
class IndexShape:
    """What a secondary index holds of an item: all of it, or its keys and some names."""

    name: str
    key_names: frozenset[str]
    projected: frozenset[str] | None  # None: every attribute

    @classmethod
    def from_create_kwargs(cls, kwargs: dict[str, Any]) -> tuple["IndexShape", ...]:
        """The table's global secondary indexes, from create_table's arguments."""
        table_keys = {key["AttributeName"] for key in kwargs["KeySchema"]}
        shapes = []
        for index in kwargs.get("GlobalSecondaryIndexes", []):
            names = frozenset(key["AttributeName"] for key in index["KeySchema"])
            projection = index["Projection"]
            projected = None
            if projection["ProjectionType"] != "ALL":
                extra = projection.get("NonKeyAttributes", [])
                projected = frozenset(table_keys | names | set(extra))
            shapes.append(cls(index["IndexName"], names, projected))
        return tuple(shapes)

    def write_units(self, item: dict[str, Any]) -> int:
        if not self.key_names <= item.keys():
            return 0
        held = (
            item
            if self.projected is None
            else {name: value for name, value in item.items() if name in self.projected}
        )
        return math.ceil(item_size(held) / WRITE_BLOCK)


@dataclass
class Meter:
    indexes: tuple[IndexShape, ...] = ()
    requests: Counter = field(default_factory=Counter)
    items_read: int = 0
    keys_read: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    index_write_units: Counter = field(default_factory=Counter)  # by index name

    def attach(self, client: Any) -> "Meter":
        client.meta.events.register("provide-client-params.dynamodb.*", self._on_request)
        client.meta.events.register("after-call.dynamodb.*", self._on_response)
        return self

    def detach(self, client: Any) -> None:
        client.meta.events.unregister("provide-client-params.dynamodb.*", self._on_request)
        client.meta.events.unregister("after-call.dynamodb.*", self._on_response)

    def reset(self) -> None:
        self.requests.clear()
        self.items_read, self.keys_read = 0, 0
        self.read_units, self.write_units = 0.0, 0.0
        self.index_write_units.clear()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def _put(self, item: dict[str, Any]) -> None:
        self.write_units += math.ceil(item_size(item) / WRITE_BLOCK)
        self._index_writes(item)

    def _index_writes(self, item: dict[str, Any]) -> None:
        for index in self.indexes:
            units = index.write_units(item)
            self.write_units += units
            self.index_write_units[index.name] += units

    def _on_request(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests[model.name] += 1
        if model.name == "PutItem":
            self._put(params["Item"])
        elif model.name == "BatchWriteItem":
            for writes in params["RequestItems"].values():
                for write in writes:
                    self._put(write["PutRequest"]["Item"])
        elif model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                operation = next(iter(entry.values()))
                size = item_size(operation.get("Item") or operation.get("Key") or {})
                self.write_units += 2 * math.ceil(max(size, 1) / WRITE_BLOCK)
                if "Put" in entry:
                    self._index_writes(entry["Put"]["Item"])
        elif model.name == "UpdateItem":
            self.write_units += 1
        elif model.name == "BatchGetItem":
            # Every key is charged, found or not: 0.5 unit per 4 KB (topped up on response).
            keys = sum(len(request["Keys"]) for request in params["RequestItems"].values())
            self.keys_read += keys
            self.read_units += 0.5 * keys

    def _on_response(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            items = parsed.get("Items", [])
            self.items_read += parsed.get("Count", len(items))
            self.keys_read += parsed.get("Count", len(items))
            size = sum(item_size(item) for item in items)
            self.read_units += 0.5 * max(1, math.ceil(size / READ_BLOCK))
        elif model.name == "GetItem":
            item = parsed.get("Item") or {}
            self.keys_read += 1
            self.items_read += 1 if item else 0
            self.read_units += 0.5 * max(1, math.ceil(item_size(item) / READ_BLOCK))
        elif model.name == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.items_read += len(items)
                self.read_units += sum(
                    0.5 * (math.ceil(item_size(item) / READ_BLOCK) - 1) for item in items
                )
