"""Stored events, and the index entries each carries: the account's events of a UTC
day (dry-runs, backfills), a visit's page views and a contact's tag changes (history
rules), and the visitor trace (events and conversions of one visitor, in time order).

Events are handed back as stored items (`EventItem`), the shape the table's stream
delivers them in too: evaluation reads both alike (goalkeeper.history.stored_event).
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from goalkeeper import keys
from goalkeeper.attributes import from_attributes, to_attributes
from goalkeeper.crediting import touch_of
from goalkeeper.dal.client import ConditionFailed, Page, Table, is_key_value
from goalkeeper.dal.transactions import Expression
from goalkeeper.errors import StoreUnavailable
from goalkeeper.models.common import iso, to_item
from goalkeeper.models.events import EventBase, PageView, TagChange

EventItem = dict[str, Any]
# The attribution of a touch, the one attribute the touch index projects beside keys.
TOUCH_ATTRIBUTION = "touch"
# A position in the visitor trace index (a Query's LastEvaluatedKey) holds exactly these.
TRACE_POSITION_KEYS = frozenset({keys.PK, keys.SK, "gsi1pk", "gsi1sk"})


def event_item(
    account_id: str,
    event: EventBase,
    received_at: datetime,
    request_id: str,
    expires_at: int,
    content_digest: str,
) -> EventItem:
    """The item of an event whose id and time are set (what ingest stores)."""
    event_id = event.event_id
    assert event_id is not None and event.occurred_at is not None
    at = iso(event.occurred_at)
    item: EventItem = (
        keys.event(account_id, event_id)
        | {
            "kind": "event",
            "account_id": account_id,
            "event_id": event_id,
            "type": event.type,  # type: ignore[attr-defined]
            "occurred_at": at,
            "received_at": iso(received_at),
            "request_id": request_id,
            "expires_at": expires_at,
            "body": to_item(event),
            "content_digest": content_digest,
            "gsi3pk": keys.events_day_pk(account_id, at[:10]),
            "gsi3sk": keys.trace_sk(at, "E", event_id),
        }
    )
    if event.visitor_id:
        item["gsi1pk"] = keys.visitor_trace_pk(account_id, event.visitor_id)
        item["gsi1sk"] = keys.trace_sk(at, "E", event_id)
    # Rules that need history (tags held, pages seen in a visit) read it through
    # this sparse index instead of keeping counters that a redelivery could double.
    if isinstance(event, TagChange):
        item["gsi2pk"] = keys.contact_scope_pk(account_id, event.contact_id)
        item["gsi2sk"] = keys.trace_sk(at, "E", event_id)
    elif isinstance(event, PageView) and event.visit_id:
        item["gsi2pk"] = keys.visit_scope_pk(account_id, event.visit_id)
        item["gsi2sk"] = keys.trace_sk(at, "E", event_id)
    return item | touch_entry(account_id, event, at)


def touch_entry(account_id: str, event: EventBase, at: str) -> dict[str, Any]:
    """The touch index entry of an event that records a touch for its visitor (else for
    its contact): written with the event, so a touch is stored exactly when its event
    is, whatever order events arrive in, with no write of its own."""
    touch = touch_of(event)
    scope = ("V", event.visitor_id) if event.visitor_id else ("C", event.contact_id)
    if touch is None or scope[1] is None:
        return {}
    entry: dict[str, Any] = {
        "gsi4pk": keys.touches_pk(account_id, scope[0], scope[1]),
        "gsi4sk": keys.touch_sk(touch.direct, at, touch.event_id),
    }
    if touch.attribution is not None:
        entry[TOUCH_ATTRIBUTION] = touch.attribution.model_dump(exclude_none=True)
    return entry


def is_trace_position(position: dict[str, Any], account_id: str, visitor_id: str) -> bool:
    """Whether `position` can start a page of this visitor's trace (Events.trace_page):
    a client-held position that DynamoDB would refuse must never reach it."""
    return (
        set(position) == TRACE_POSITION_KEYS
        and all(is_key_value(value) for value in position.values())
        and position["gsi1pk"] == keys.visitor_trace_pk(account_id, visitor_id)
    )


def _key_range(index_pk: str, pk: str, condition: str = "", **bounds: str) -> dict[str, Any]:
    """A Query's key condition on an index: its partition key equal to `pk`, and
    `condition` on its sort key, where `{sk}` and `{name}` of each bound stand for
    their placeholders."""
    expression = Expression()
    key = f"{expression.name(index_pk)} = {expression.value(pk)}"
    if condition:
        sk = expression.name(index_pk.removesuffix("pk") + "sk")
        values = {name: expression.value(bound) for name, bound in bounds.items()}
        key += " AND " + condition.format(sk=sk, **values)
    return {"KeyConditionExpression": key, **expression.request()}


class Events:
    def __init__(self, table: Table) -> None:
        self._table = table

    def stored(self, account_id: str, event_ids: list[str]) -> dict[str, EventItem]:
        """The events already stored under these ids, by id (consistent BatchGetItem)."""
        found = self._table.get_many(
            [keys.event(account_id, e) for e in event_ids], consistent=True
        )
        return {item["event_id"]: item for item in found}

    def put(self, item: EventItem) -> EventItem | None:
        """Store a new event: None when this put stored it, else the item already
        stored under its id (by an earlier request, or one racing this one).

        Each call marks its item with a fresh `write_id`, so a botocore retry of
        this very put (a timeout after the write landed) recognises its own write
        and still counts as stored by this put. When every attempt failed, one of
        them may still have written before its answer was lost: a consistent read
        decides, so StoreUnavailable (503) means the event is not stored, or the
        table could not even be read (a retry with the same id is safe).
        """
        item = item | {"write_id": uuid.uuid4().hex}
        expression = Expression()
        try:
            self._table.call(
                "put_item",
                TableName=self._table.name,
                Item=to_attributes(item),
                ConditionExpression=f"attribute_not_exists({expression.name(keys.PK)})",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **expression.request(),
            )
        except ConditionFailed as failed:
            return None if failed.item.get("write_id") == item["write_id"] else failed.item
        except StoreUnavailable:
            key = {keys.PK: item[keys.PK], keys.SK: item[keys.SK]}
            stored = self._table.get(key, consistent=True)
            if stored is None:
                raise
            return None if stored.get("write_id") == item["write_id"] else stored
        return None

    def put_many(self, items: list[EventItem], concurrency: int) -> list[EventItem | None]:
        """`put` for each item, `concurrency` at a time; results in the items' order.

        A batch then waits for len/concurrency round trips instead of len. When a put
        fails, the puts already under way finish before the first failure is raised.
        """
        if len(items) <= 1 or concurrency <= 1:
            return [self.put(item) for item in items]
        self._table.client  # noqa: B018 -- created before the threads: boto3 creates clients unsafely
        with ThreadPoolExecutor(min(concurrency, len(items))) as pool:
            return list(pool.map(self.put, items))

    # -- a visit's page views, a contact's tag changes (history rules) -------------

    def visit_page_views_before(self, account_id: str, visit_id: str, before_sk: str) -> int:
        pk = keys.visit_scope_pk(account_id, visit_id)
        query = _key_range("gsi2pk", pk, "{sk} < {before}", before=before_sk)
        return self._table.count(IndexName=keys.SCOPE_INDEX, **query)

    def visit_page_views_from(
        self, account_id: str, visit_id: str, from_sk: str
    ) -> list[EventItem]:
        """A visit's page views from one on, in time order."""
        pk = keys.visit_scope_pk(account_id, visit_id)
        query = _key_range("gsi2pk", pk, "{sk} >= {start}", start=from_sk)
        return list(self._table.query(IndexName=keys.SCOPE_INDEX, **query))

    def contact_tag_events(self, account_id: str, contact_id: str) -> list[EventItem]:
        """Every tag event of a contact, in time order."""
        query = _key_range("gsi2pk", keys.contact_scope_pk(account_id, contact_id))
        return list(self._table.query(IndexName=keys.SCOPE_INDEX, **query))

    # -- an account's events of one UTC day (dry-runs, backfills) -----------------

    def day_events(
        self,
        account_id: str,
        utc_day: str,
        after_sk: str | None,
        limit: int,
        before_sk: str | None = None,
    ) -> Page:
        """At most `limit` of an account's events of one UTC day in time order, after a
        position (an event's `gsi3sk`) and, given `before_sk`, before that one; the
        cursor is the position to read on from, or None at the end."""
        pk = keys.events_day_pk(account_id, utc_day)
        between = after_sk is not None and before_sk is not None
        if after_sk is not None and before_sk is not None:
            # A key takes one condition, and BETWEEN includes both ends: the event at
            # `after_sk` (a cursor) is read again, so one more is asked for; ends are dropped.
            condition = "{sk} BETWEEN {after} AND {before}"
            query = _key_range("gsi3pk", pk, condition, after=after_sk, before=before_sk)
        elif after_sk is not None:
            query = _key_range("gsi3pk", pk, "{sk} > {after}", after=after_sk)
        elif before_sk is not None:
            query = _key_range("gsi3pk", pk, "{sk} < {before}", before=before_sk)
        else:
            query = _key_range("gsi3pk", pk)
        response = self._table.call(
            "query",
            TableName=self._table.name,
            IndexName=keys.DAY_INDEX,
            Limit=limit + 1 if between else limit,
            **query,
        )
        read = [from_attributes(item) for item in response.get("Items", [])]
        kept = [item for item in read if item["gsi3sk"] not in (after_sk, before_sk)]
        items = kept[:limit]
        if len(kept) > limit:
            cursor = items[-1]["gsi3sk"]
        elif "LastEvaluatedKey" in response and read:
            cursor = read[-1]["gsi3sk"]  # past every event read, kept or dropped
        else:
            return Page(items, None)
        return Page(items, {"gsi3sk": cursor})

    def count_day_events(self, account_id: str, utc_day: str, low_sk: str, high_sk: str) -> int:
        """How many of an account's events of one UTC day have positions (`gsi3sk`) in
        [low_sk, high_sk]. A count reads the items as a Query would (same read units)."""
        pk = keys.events_day_pk(account_id, utc_day)
        query = _key_range("gsi3pk", pk, "{sk} BETWEEN {low} AND {high}", low=low_sk, high=high_sk)
        return self._table.count(IndexName=keys.DAY_INDEX, **query)

    # -- the visitor trace -------------------------------------------------------

    def trace_page(
        self, account_id: str, visitor_id: str, limit: int, start: dict[str, Any] | None
    ) -> Page:
        """One page of a visitor's events and conversions in time order, from just after
        `start` (a page's cursor, checked with is_trace_position)."""
        query = _key_range("gsi1pk", keys.visitor_trace_pk(account_id, visitor_id))
        return self._table.page(limit, start, IndexName=keys.TRACE_INDEX, **query)
