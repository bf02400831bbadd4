"""Shortcuts that keep moto's answers and make the local stack fast enough to use.

1. Responses. moto 5.2 renders every response by walking botocore's output
   shapes, which costs ~16 ms for a response carrying items (a stream batch of
   100 records took ~0.9 s). Those results are already plain JSON-ready dicts
   (moto converts attribute values before rendering), so for DynamoDB and
   DynamoDB Streams they are written as JSON directly: None members dropped and
   datetimes as epoch seconds, as the shape walk does.
2. Queries. moto answers a Query on the table by comparing the partition key of
   every item in the table, so reading one account's goal library got slower with
   every stored event; a Query on an index also sorts the whole table first (~1 s
   per query at 20k items). DynamoDB reads one partition; so does this. A table
   Query reads the table's partition. For an index Query, each table keeps its
   items by the values of the attributes an index Query names (IndexPartitions,
   made at the first such Query, then kept by every write: moto's Table.put_item
   and Table.delete_item, which PutItem, BatchWriteItem, transactions, PartiQL,
   the simple updates of 3. and their undoing all go through, and moto's
   UpdateItem, which changes the stored item in place; after each, the item under
   that key is placed again, where it now belongs or nowhere). The Query reads the
   items of its value only: before, it visited every stored item to find them
   (~2.5 ms per 1,000 stored, ~190 ms at 100k, which drove the endpoint into 503s
   under the bench's index workload); now ~5 ms at 1k and at 100k, as a table
   Query. Values are what moto compares, so moto's answer is unchanged: it still
   checks every key condition and orders the items by the index keys itself.
   moto 5.2.5 does not expire items by TTL; a deleted or restored table is a new
   Table, with no partitions until asked.
3. Simple updates. moto validates an UpdateExpression by walking its syntax tree
   with a dozen processors, twice for a new item (~35 ms per update). Updates
   made only of `SET name = :value` and numeric `ADD name :number` clauses, with
   an optional condition, are applied directly here; anything else goes to moto.
   (They also emit one stream record per update, as DynamoDB does, where moto
   emits two INSERTs for an update that creates an item.)
4. Expression parsing in requests. Before a transaction (or an UpdateItem)
   reaches the backend, moto's request layer parses every UpdateExpression only
   to list the attribute names it uses: a third of a transaction's time. That
   parse is read-only and depends on the text alone, and our expressions come
   from a few templates: each text is parsed once.
5. Condition parsing. A ConditionExpression is parsed twice per write (once to
   validate the request, once to evaluate it), and our conditions repeat: the
   parse of each (expression, names, values) is kept. The parsed condition is a
   tree of operators evaluated against an item, holding no state of its own.
6. Item size. moto checks the 400 KB item limit on every attribute it sets, by
   summing the sizes of all attributes set so far: building an item is quadratic
   in its attributes (a daily-totals item with 40 goal counters took ~800 size
   computations). The same limit is checked here once per item, on the total.
7. Stream records. moto builds every stream record with both images, wanted or
   not, then serialises it to JSON only to measure it (SizeBytes). Here only the
   images the stream's view type asks for are built, and SizeBytes is what
   DynamoDB counts as their item size.
8. Routing. moto's server finds the service of every request by listing its own
   package directory and stat-ing each of ~170 entries (a tenth of the endpoint's
   time under load). The list cannot change while the process runs: it is read once.

Written for moto 5.2.5 only (see moto_version): another version is refused before
its internals are imported.
"""

# moto's version is checked before its internals are imported, hence code among imports.
# ruff: noqa: E402

import base64
import copy
import functools
import json
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from goalkeeper_cli.local_stack import moto_version

moto_version.check()

from moto import backends
from moto.core.responses import ActionContext, ActionResult
from moto.core.utils import utcnow
from moto.dynamodb import comparisons, responses
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    ResourceNotFoundException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import StreamRecord, Table
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.moto_api._internal import mock_random

_FAST_SERVICES = {"dynamodb", "dynamodbstreams"}
_shape_walk = ActionResult.execute_result


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple | set):
        return [_json_ready(item) for item in value]
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _execute_result(self: ActionResult, context: ActionContext) -> Any:
    service = context.service_model.service_name
    if service not in _FAST_SERVICES or not isinstance(self.result, dict):
        return _shape_walk(self, context)
    body = json.dumps(_json_ready(self.result), separators=(",", ":"))
    status = context.operation_model.http.get("responseCode", 200)
    return status, {"Content-Type": "application/x-amz-json-1.0"}, body


_query_every_item = Table.query
_moto_put_item = Table.put_item
_moto_delete_item = Table.delete_item
_moto_update_item = DynamoDBBackend.update_item


_INDEX_NAME_POSITION = 6  # Table.query(hash_key, range_comparison, ..., index_name, ...)
_PARTITIONS = "_goalkeeper_index_partitions"  # in the table's __dict__: deep copies take it along
# The partition of items whose key value cannot be hashed (a map, a list): a str, never
# equal to a value (a tuple), and the same object in a deep copy of the table.
_STRAY = "unhashable"

PrimaryKey = tuple[DynamoType, DynamoType | None]


class IndexPartitions:
    """The items of a table by the values of some attributes (an index's partition key):
    value -> the primary keys of the items carrying it. A value is what moto compares,
    (type, cast value) for each attribute, so N 1 and N 1.0 are one partition, as in moto."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.members: dict[Any, dict[PrimaryKey, None]] = {}
        self.placed: dict[PrimaryKey, Any] = {}  # primary key -> the value it is a member of

    def value(self, attrs: dict[str, DynamoType]) -> Any:
        """The partition of an item's attributes (or of a query's), None if one is missing."""
        found = []
        for name in self.names:
            value = attrs.get(name)
            if value is None:
                return None
            found.append((value.type, value.cast_value))
        value = tuple(found)
        try:
            hash(value)
        except TypeError:
            return _STRAY
        return value

    def place(self, key: PrimaryKey, item: Item | None) -> None:
        """Where the item stored under key is now (None: no item there any more)."""
        old = self.placed.pop(key, None)
        if old is not None:
            members = self.members[old]
            del members[key]
            if not members:
                del self.members[old]
        value = None if item is None else self.value(item.attrs)
        if value is not None:
            self.placed[key] = value
            self.members.setdefault(value, {})[key] = None

    def keys(self, value: Any) -> list[PrimaryKey]:
        """The items that may carry value: its members and the strays."""
        return [*self.members.get(value, ()), *self.members.get(_STRAY, ())]


def index_partitions(table: Table, names: tuple[str, ...]) -> IndexPartitions:
    """The table's partitions by these attributes, made at the first query that asks for
    them, then kept by every write (_replaced)."""
    made: dict[tuple[str, ...], IndexPartitions] = table.__dict__.setdefault(_PARTITIONS, {})
    partitions = made.get(names)
    if partitions is None:
        partitions = made[names] = IndexPartitions(names)
        for item in _every_item(table):
            partitions.place((item.hash_key, item.range_key), item)
    return partitions


def _stored(table: Table, key: PrimaryKey) -> Item | None:
    partition = table.items.get(key[0])
    if table.range_key_attr is None:
        return partition if isinstance(partition, Item) else None
    return partition.get(key[1]) if isinstance(partition, dict) else None


def _replaced(table: Table, key: PrimaryKey) -> None:
    """The item under key was added, replaced, changed in place or deleted."""
    made = table.__dict__.get(_PARTITIONS)
    if made:
        item = _stored(table, key)
        for partitions in made.values():
            partitions.place(key, item)


def _primary_key(table: Table, attrs: dict[str, Any]) -> PrimaryKey | None:
    """The primary key named in a request's key or item, None if it names none (then
    moto stored nothing under it)."""
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    values = [attrs.get(name) if isinstance(attrs, dict) else None for name in names]
    if not all(isinstance(value, dict) and len(value) == 1 for value in values):
        return None
    hash_value = DynamoType(values[0])  # type: ignore[arg-type]
    return hash_value, DynamoType(values[1]) if len(values) > 1 else None  # type: ignore[arg-type]


# The choke points where moto stores, replaces and removes items (put_item: PutItem,
# BatchWriteItem, transactions, PartiQL, the shortcut of simple updates, moto's update
# of a new item; delete_item likewise) and moto's UpdateItem, which changes the stored
# item in place. Each places the item again afterwards, failed or not: it looks at what
# is stored now. Tables made whole (restored, re-created) start without partitions.
def _put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    try:
        return _moto_put_item(self, item_attrs, *args, **kwargs)
    finally:
        if (key := _primary_key(self, item_attrs)) is not None:
            _replaced(self, key)


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    try:
        return _moto_delete_item(self, hash_key, range_key)
    finally:
        if self.range_key_attr and range_key is None:  # moto drops the whole partition
            self.__dict__.pop(_PARTITIONS, None)  # made again at the next index query
        else:
            _replaced(self, (hash_key, range_key if self.range_key_attr else None))


def _update_in_place(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Any:
    try:
        return _moto_update_item(self, table_name, key, *args, **kwargs)
    finally:
        try:
            table = self.get_table(table_name)  # by name or by ARN
        except ResourceNotFoundException:
            pass
        else:
            if (stored_key := _primary_key(table, key)) is not None:
                _replaced(table, stored_key)


def _query_one_partition(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = args[_INDEX_NAME_POSITION] if len(args) > _INDEX_NAME_POSITION else None
    index_keys = kwargs.get("hash_key_conditions")
    if "all_items" in vars(self):
        return _query_every_item(self, hash_key, *args, **kwargs)
    if index_name or kwargs.get("index_name"):
        if not index_keys:
            return _query_every_item(self, hash_key, *args, **kwargs)
        wanted = dict(index_keys)  # as moto reads them: the last of a name counts
        partitions = index_partitions(self, tuple(sorted(wanted)))
        value = partitions.value(wanted)
        if value == _STRAY:  # a map or a list for a key: moto compares it with every item
            items = list(_every_item(self))
        else:
            stored = (_stored(self, key) for key in partitions.keys(value))
            items = [item for item in stored if item is not None]
    elif hash_key is None:
        return _query_every_item(self, hash_key, *args, **kwargs)
    else:
        partition = self.items.get(hash_key)
        items = list(partition.values()) if isinstance(partition, dict) else []
    # Requests reach moto one at a time (EmbeddedDynamoDB), so this swap is not shared.
    self.all_items = lambda: items  # type: ignore[method-assign]
    try:
        return _query_every_item(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


def _every_item(table: Table) -> Iterator[Item]:
    """The table's items in no particular order (moto's all_items sorts them all)."""
    for partition in table.items.values():
        yield from partition.values() if isinstance(partition, dict) else (partition,)


_SECTION = re.compile(r"\s*\b(SET|ADD)\b\s+", re.IGNORECASE)
_NAME = r"(#?[A-Za-z_][A-Za-z0-9_]*)"
_SET_CLAUSE = re.compile(rf"^{_NAME}\s*=\s*(:[A-Za-z0-9_]+)$")
_ADD_CLAUSE = re.compile(rf"^{_NAME}\s+(:[A-Za-z0-9_]+)$")


def simple_clauses(expression: str) -> list[tuple[str, str, str]] | None:
    """[(action, name, value placeholder)] for SET/ADD-only expressions, else None."""
    parts = _SECTION.split(expression)
    if parts[0].strip() or len(parts) < 3:
        return None
    clauses = []
    for action, body in zip(parts[1::2], parts[2::2], strict=True):
        grammar = _SET_CLAUSE if action.upper() == "SET" else _ADD_CLAUSE
        for clause in body.split(","):
            found = grammar.match(clause.strip())
            if found is None:
                return None
            clauses.append((action.upper(), found.group(1), found.group(2)))
    return clauses


def _number_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value != value.to_integral_value() else str(int(value))


def _update_item(
    self: DynamoDBBackend,
    table_name: str,
    key: dict[str, Any],
    update_expression: str,
    expression_attribute_names: dict[str, Any] | None,
    expression_attribute_values: dict[str, Any] | None,
    attribute_updates: dict[str, Any] | None = None,
    expected: dict[str, Any] | None = None,
    condition_expression: str | None = None,
    return_values_on_condition_check_failure: str | None = None,
) -> Any:
    clauses = simple_clauses(update_expression or "")
    names = expression_attribute_names or {}
    values = expression_attribute_values or {}
    table = self.get_table(table_name)
    resolved = [
        (action, names.get(name, name), values.get(value)) for action, name, value in clauses or []
    ]
    if (
        clauses is None
        or attribute_updates
        or expected
        or not table.range_key_attr
        or any(value is None for _, _, value in resolved)
        or any(action == "ADD" and "N" not in value for action, _, value in resolved)
        or any(name in (table.hash_key_attr, table.range_key_attr) for _, name, _ in resolved)
    ):
        return _update_in_place(
            self,
            table_name,
            key,
            update_expression,
            expression_attribute_names,
            expression_attribute_values,
            attribute_updates,
            expected,
            condition_expression,
            return_values_on_condition_check_failure,
        )
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr])
    current = table.get_item(hash_value, range_value)
    if condition_expression is not None:
        condition = get_filter_expression(condition_expression, names, values)
        if not condition.expr(current):
            old = None
            if return_values_on_condition_check_failure == "ALL_OLD" and current is not None:
                old = current.to_json()["Attributes"]
            raise ConditionalCheckFailed(item=old)
    attributes = copy.deepcopy(current.to_json()["Attributes"]) if current else dict(key)
    for action, name, value in resolved:
        if action == "SET":
            attributes[name] = value
        else:
            total = Decimal(attributes.get(name, {}).get("N", "0")) + Decimal(value["N"])
            attributes[name] = {"N": _number_text(total)}
    table.put_item(attributes)
    return table.get_item(hash_value, range_value)


_list_moto_modules = backends.list_of_moto_modules


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    return tuple(_list_moto_modules())


ITEM_SIZE_LIMIT = 405_000  # moto's: DynamoDB's 400 KB plus what moto measured AWS allow


def _item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict) -> None:
    self.hash_key = hash_key
    self.range_key = range_key
    values = {name: DynamoType(value) for name, value in attrs.items()}
    if sum(bytesize(name) + value.size() for name, value in values.items()) > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(self.attrs, values)  # later single-attribute sets still check the limit


_IMAGES = {"NEW_IMAGE": ("NewImage",), "OLD_IMAGE": ("OldImage",)}
_IMAGES["NEW_AND_OLD_IMAGES"] = ("NewImage", "OldImage")


def _stream_record_init(
    self: StreamRecord,
    table: Table,
    stream_type: str,
    event_name: str,
    old: Item | None,
    new: Item | None,
    seq: int,
) -> None:
    item = old if old is not None else new
    assert item is not None
    keys = {table.hash_key_attr: item.hash_key.to_json()}
    if table.range_key_attr is not None:
        keys[table.range_key_attr] = item.range_key.to_json()  # type: ignore[union-attr]
    dynamodb: dict[str, Any] = {
        "StreamViewType": stream_type,
        "ApproximateCreationDateTime": utcnow(),
        "SequenceNumber": str(seq),
        "SizeBytes": 0,
        "Keys": keys,
    }
    for image, source in (("NewImage", new), ("OldImage", old)):
        if source is not None and image in _IMAGES.get(stream_type, ()):
            dynamodb[image] = source.to_json()["Attributes"]
            dynamodb["SizeBytes"] += source.size()
    self.record = {
        "eventID": mock_random.uuid4().hex,
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.0",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
    }


class _ParsedCondition:
    """What moto reads of a ConditionExpressionParser, parsed once."""

    def __init__(self, parser: comparisons.ConditionExpressionParser) -> None:
        self._parsed = parser.parse()
        self._names = tuple(parser.expr_attr_names_found)
        self._values = tuple(parser.expr_attr_values_found)

    def parse(self) -> Any:
        return self._parsed

    # Fresh lists: moto extends them in place.
    @property
    def expr_attr_names_found(self) -> list[str]:
        return list(self._names)

    @property
    def expr_attr_values_found(self) -> list[str]:
        return list(self._values)


@functools.lru_cache(maxsize=2048)
def _parsed_condition(expression: str | None, names: str, values: str) -> _ParsedCondition:
    return _ParsedCondition(
        comparisons.ConditionExpressionParser(expression, json.loads(names), json.loads(values))
    )


def _condition_parser(
    expression: str | None, names: dict[str, str] | None, values: dict[str, Any] | None
) -> _ParsedCondition:
    return _parsed_condition(
        expression, json.dumps(names, sort_keys=True), json.dumps(values, sort_keys=True)
    )


class _ParsedOnce:
    """Stands in for UpdateExpressionParser in moto's request layer only: the backend,
    which mutates the tree it gets, still parses for itself."""

    make = staticmethod(functools.lru_cache(maxsize=512)(UpdateExpressionParser.make))


def install() -> None:
    moto_version.check()
    StreamRecord.__init__ = _stream_record_init  # type: ignore[method-assign]
    comparisons.create_condition_expression_parser = _condition_parser  # type: ignore[assignment]
    responses.create_condition_expression_parser = _condition_parser  # type: ignore[assignment]
    responses.UpdateExpressionParser = _ParsedOnce  # type: ignore[assignment,misc]
    Item.__init__ = _item_init  # type: ignore[method-assign]
    backends.list_of_moto_modules = _moto_modules  # type: ignore[assignment]
    ActionResult.execute_result = _execute_result  # type: ignore[method-assign]
    Table.query = _query_one_partition  # type: ignore[method-assign]
    Table.put_item = _put_item  # type: ignore[method-assign]
    Table.delete_item = _delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _update_item  # type: ignore[method-assign]
