"""Segment's HTTP Tracking API read as our events (POST /segment/v1/batch|track|page|identify),
so `segment-analytics-python`, RudderStack's SDKs and anything else speaking Segment's
protocol send to Goalkeeper unchanged. Pure: plain dicts in, validated EventBatches out.

Segment messages are open-ended (context.ip, userAgent, traits, integrations...):
what Goalkeeper has no field for is ignored, never refused, as a Segment destination
does. What it maps is held to our models, and a problem is named by the Segment field
the client wrote (batch[2].properties.revenue), so nothing of a bad request is stored.

- `messageId` is the event id when it is a valid id; otherwise the id is a digest of
  it ("sm-" + 40 hex), so the same message always gets the same id (retries stay
  duplicates). Without one, ingestion derives the id from the content.
- `anonymousId` is the visitor, `userId` the contact (a message naming both links
  them, as any event does); ids Goalkeeper cannot hold are refused.
- `context.campaign` is the attribution: name -> campaign, source, medium,
  term -> keyword (content has no field); a click id in the page's URL is kept too.
- page -> page_view (url, title, referrer from properties, else context.page).
- track "Order Completed" with an amount (properties revenue, else total, else value)
  -> transaction {value, currency (Segment assumes USD), reference: order_id}; any
  other track -> custom_trigger named by `event`, its properties as fields, and
  `revenue` (Segment's reserved money property) as its transaction.
- identify -> custom_trigger "identify" without fields: it keeps the visitor-contact
  link that lets a contact's conversions find the visitor's touches; traits are
  personal data and are not stored.
- screen, group and alias say nothing a goal can use: accepted and not stored.
- time: `timestamp` as sent; else `originalTimestamp` moved by the client's clock
  skew (received - (sentAt - originalTimestamp)), as Segment does; else the time received.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from goalkeeper.errors import FieldProblem, InvalidInput
from goalkeeper.http import field_path, problems_from_validation
from goalkeeper.models.events import EventBatch
from goalkeeper.traffic_sources import page_view_source

MAX_MESSAGE_BYTES = 32 * 1024  # Segment's limit per message; per batch see goalkeeper.http
MAX_EVENTS_PER_BATCH = 100  # what one EventBatch (one ingest call) holds
STORED_TYPES = ("track", "page", "identify")
SKIPPED_TYPES = ("screen", "group", "alias")
ORDER_COMPLETED = "Order Completed"
AMOUNT_PROPERTIES = ("revenue", "total", "value")
DEFAULT_CURRENCY = "USD"  # Segment's spec: "If this is not set, we assume ... US dollars"
CAMPAIGN_FIELDS = {"name": "campaign", "source": "source", "medium": "medium", "term": "keyword"}
MAX_FIELDS = 100
MAX_FIELD_NAME = 128
MAX_FIELD_TEXT = 1024
_EVENT_ID = re.compile(r"[A-Za-z0-9._:@|/+=~-]{1,128}")


@dataclass
class _Mapped:
    """One message as our event, and where each of our fields came from in it."""

    event: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)

    def put(self, ours: tuple[str, ...], value: Any, theirs: tuple[str, ...]) -> None:
        target = self.event
        for part in ours[:-1]:
            target = target.setdefault(part, {})
        target[ours[-1]] = value
        self.origins[ours] = theirs

    def origin(self, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        """A pydantic location in our event as the Segment field it came from."""
        for length in range(len(loc), 0, -1):
            theirs = self.origins.get(tuple(str(part) for part in loc[:length]))
            if theirs is not None:
                return (*theirs, *loc[length:])
        return loc


def events_from(
    body: dict[str, Any], route_type: str | None, received_at: datetime
) -> list[EventBatch]:
    """The events of a Segment request, in batches of at most 100; [] when it holds
    only messages that are not stored. `route_type` is the single-message route's
    type (track, page, identify), None for /batch. Raises InvalidInput naming every
    problem; then nothing may be stored."""
    # The route says a single message's type, whatever its body says (as Segment's does).
    messages = _batch_messages(body) if route_type is None else [{**body, "type": route_type}]
    sent_at = body.get("sentAt")
    events: list[Any] = []
    problems: list[FieldProblem] = []
    for index, message in enumerate(messages):
        # A single message's fields are named as they are (properties.url); a batch's
        # with their place in it (batch[2].properties.url).
        where: tuple[str | int, ...] = ("batch", index) if route_type is None else ()
        if not isinstance(message, dict):
            problems.append(_problem(where, "must be a JSON object"))
            continue
        try:
            mapped = _map_message(message, sent_at, received_at)
        except _Refused as refused:
            problems.append(_problem((*where, *refused.loc), refused.reason))
            continue
        if mapped is None:
            continue
        try:
            # Validated as POST /v1/events validates (one schema, built once).
            events.extend(EventBatch.model_validate({"events": [mapped.event]}).events)
        except ValidationError as error:
            # Pydantic says ("events", 0, "page_view", "url"): the field is the rest.
            details = [
                {**detail, "loc": (*where, *mapped.origin(tuple(detail["loc"])[3:]))}
                for detail in error.errors()
            ]
            problems.extend(problems_from_validation(details))
    if problems:
        raise InvalidInput("the request is invalid", problems)
    return [
        EventBatch(events=events[start : start + MAX_EVENTS_PER_BATCH])
        for start in range(0, len(events), MAX_EVENTS_PER_BATCH)
    ]


class _Refused(Exception):
    def __init__(self, loc: tuple[str | int, ...], reason: str) -> None:
        super().__init__(reason)
        self.loc = loc
        self.reason = reason


def _problem(loc: tuple[str | int, ...], reason: str) -> FieldProblem:
    return FieldProblem(field_path(loc or ("body",)), reason)


def _batch_messages(body: dict[str, Any]) -> list[Any]:
    messages = body.get("batch")
    if not isinstance(messages, list):
        reason = "is required" if messages is None else "must be a list of messages"
        raise InvalidInput("the request is invalid", [FieldProblem("batch", reason)])
    # A batch's own context applies to each message, whose own keys win (Segment's rule).
    shared = body.get("context")
    if isinstance(shared, dict):
        messages = [
            {**m, "context": shared | m.get("context", {})}
            if isinstance(m, dict) and isinstance(m.get("context", {}), dict)
            else m
            for m in messages
        ]
    return messages


def _map_message(
    message: dict[str, Any], batch_sent_at: Any, received_at: datetime
) -> _Mapped | None:
    size = len(json.dumps(message, default=str).encode())
    if size > MAX_MESSAGE_BYTES:
        raise _Refused((), f"is {size} bytes; a message may hold at most 32 KB")
    kind = message.get("type")
    if kind in SKIPPED_TYPES:
        return None
    if kind not in STORED_TYPES:
        expected = ", ".join(STORED_TYPES + SKIPPED_TYPES)
        raise _Refused(("type",), f"{kind!r} is not one of: {expected}")
    if message.get("userId") in (None, "") and message.get("anonymousId") in (None, ""):
        raise _Refused(("userId",), "userId or anonymousId is required")
    mapped = _Mapped()
    _common(mapped, message, batch_sent_at, received_at)
    context = _object(message, "context")
    properties = _object(message, "properties")
    amount = _amount(properties) if message.get("event") == ORDER_COMPLETED else None
    if kind == "page":
        _page(mapped, properties, _object(context, "page"))
    elif kind == "identify":
        mapped.put(("type",), "custom_trigger", ("type",))
        mapped.put(("name",), "identify", ("type",))
    elif amount is not None:
        mapped.put(("type",), "transaction", ("event",))
        _money(mapped, properties, amount)
    else:
        if message.get("event") in (None, ""):
            raise _Refused(("event",), "is required")
        mapped.put(("type",), "custom_trigger", ("type",))
        mapped.put(("name",), message["event"], ("event",))
        mapped.put(("fields",), _fields(properties), ("properties",))
        if properties.get("revenue") is not None:
            _money(mapped, properties, "revenue")
    return mapped


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of the message; anything else there is nothing we read."""
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def _common(
    mapped: _Mapped, message: dict[str, Any], batch_sent_at: Any, received_at: datetime
) -> None:
    message_id = message.get("messageId")
    if message_id is not None:
        mapped.put(("event_id",), _event_id(str(message_id)), ("messageId",))
    for ours, theirs in (("visitor_id", "anonymousId"), ("contact_id", "userId")):
        value = message.get(theirs)
        if value not in (None, ""):
            mapped.put((ours,), _text(value), (theirs,))
    occurred = _occurred_at(message, batch_sent_at, received_at)
    if occurred is not None:
        mapped.put(("occurred_at",), *occurred)
    context = _object(message, "context")
    campaign = _object(context, "campaign")
    for theirs, ours in CAMPAIGN_FIELDS.items():
        value = campaign.get(theirs)
        if value not in (None, ""):
            mapped.put(("attribution", ours), value, ("context", "campaign", theirs))
    if "attribution" not in mapped.event:
        return  # a page view's own URL and referrer say it; other events are credited
    # Segment's campaign has no click id: the page's URL may (gclid...).
    url = _object(message, "properties").get("url") or _object(context, "page").get("url")
    source = page_view_source(url, None) if isinstance(url, str) else None
    if source is not None and source.click_id:
        mapped.put(("attribution", "click_id"), source.click_id, ("context", "page", "url"))


def _text(value: Any) -> Any:
    """Segment's libraries send numeric ids as text: a number is the same id."""
    return str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else value


def _event_id(message_id: str) -> str:
    if _EVENT_ID.fullmatch(message_id):
        return message_id
    return "sm-" + hashlib.sha256(message_id.encode()).hexdigest()[:40]


def _occurred_at(
    message: dict[str, Any], batch_sent_at: Any, received_at: datetime
) -> tuple[Any, tuple[str, ...]] | None:
    if message.get("timestamp") is not None:
        return message["timestamp"], ("timestamp",)
    original = message.get("originalTimestamp")
    if original is None:
        return None
    at = _parse_time(original, ("originalTimestamp",))
    sent_at = message.get("sentAt", batch_sent_at)
    if sent_at is None:
        return at, ("originalTimestamp",)
    sent = _parse_time(sent_at, ("sentAt",))
    try:
        return received_at - (sent - at), ("originalTimestamp",)
    except OverflowError as error:  # a skew of millennia: no time at all
        raise _Refused(("originalTimestamp",), "is too far from sentAt") from error


def _parse_time(value: Any, loc: tuple[str, ...]) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise _Refused(loc, "must be an ISO 8601 time") from error
    if at.tzinfo is None:
        raise _Refused(loc, "must have a time zone")
    return at


def _page(mapped: _Mapped, properties: dict[str, Any], page: dict[str, Any]) -> None:
    mapped.put(("type",), "page_view", ("type",))
    for name in ("url", "title", "referrer"):
        # Browsers leave the title or referrer empty: an empty optional text is absent.
        for source, path in ((properties, ("properties", name)), (page, ("context", "page", name))):
            if source.get(name) not in (None, ""):
                mapped.put((name,), source[name], path)
                break
    if "url" not in mapped.event:
        raise _Refused(("properties", "url"), "is required (or context.page.url)")


def _amount(properties: dict[str, Any]) -> str | None:
    return next((name for name in AMOUNT_PROPERTIES if properties.get(name) is not None), None)


def _money(mapped: _Mapped, properties: dict[str, Any], amount: str) -> None:
    mapped.put(("transaction", "value"), properties[amount], ("properties", amount))
    currency = properties.get("currency") or DEFAULT_CURRENCY
    mapped.put(("transaction", "currency"), currency, ("properties", "currency"))
    if properties.get("order_id") not in (None, ""):
        mapped.put(
            ("transaction", "reference"), _text(properties["order_id"]), ("properties", "order_id")
        )


def _fields(properties: dict[str, Any]) -> dict[str, Any]:
    """Properties as custom-trigger fields: nested objects flattened to dotted names
    (address.city); what a field cannot hold (lists, texts over 1024 characters, names
    over 128) and anything past the 100th is left out rather than refused: a Segment
    source sends one event to every destination, and refusing it here for a property
    no goal of ours could test would lose the whole batch."""
    flat: dict[str, Any] = {}
    for name, value in _flatten(properties, ""):
        if len(flat) == MAX_FIELDS:
            break
        if isinstance(value, list) or not 0 < len(name) <= MAX_FIELD_NAME:
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD_TEXT:
            continue
        flat[name] = value
    return flat


def _flatten(properties: dict[str, Any], prefix: str) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for name, value in properties.items():
        if isinstance(value, dict):
            pairs.extend(_flatten(value, f"{prefix}{name}."))
        else:
            pairs.append((f"{prefix}{name}", value))
    return pairs
