"""Counts what a botocore client asks of DynamoDB: requests per operation, items
read and written, and the read and write units DynamoDB would charge for them
(on-demand rules: reads 0.5 unit per 4 KB eventually consistent, a missing key
still costs 0.5; writes 1 unit per 1 KB, doubled inside transactions)."""

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


@dataclass
class Meter:
    requests: Counter = field(default_factory=Counter)
    items_read: int = 0
    keys_read: int = 0
    read_units: float = 0.0
    write_units: float = 0.0

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

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def _on_request(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests[model.name] += 1
        if model.name == "PutItem":
            self.write_units += math.ceil(item_size(params["Item"]) / WRITE_BLOCK)
        elif model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                operation = next(iter(entry.values()))
                size = item_size(operation.get("Item") or operation.get("Key") or {})
                self.write_units += 2 * math.ceil(max(size, 1) / WRITE_BLOCK)
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
