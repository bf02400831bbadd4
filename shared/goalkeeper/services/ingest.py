"""Accepting events: give each an id, store it once, say which were new.

An id names one event: a repeat with the same content is a duplicate, one with
other content is refused (EventIdConflict), checked before anything is written.
"The same content" is the event as the client sent it, after validation: key
order, number formatting, time zone offsets, phone formatting, explicit nulls or
explicit defaults make no difference; what the server fills in (the time received,
a derived id) is not part of it.

Caller numbers are personal data and never stored in clear: a call keeps a
keyed hash of its caller (what de-duplication compares) and a masked form (what
people see); see goalkeeper.pii.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal
from typing import Any, Protocol

from goalkeeper.dal.events import EventItem
from goalkeeper.dal.events import event_item as stored_event_item
from goalkeeper.errors import EventIdConflict, FieldProblem, Forbidden
from goalkeeper.models.common import to_item
from goalkeeper.models.events import Call, EventBase, EventBatch, IngestResult
from goalkeeper.pii import caller_hash, mask_number, new_account_secret


class EventStore(Protocol):
    """What ingestion needs of the events' data access (goalkeeper.dal.events)."""

    def stored(self, account_id: str, event_ids: list[str]) -> dict[str, EventItem]: ...

    def put_many(self, items: list[EventItem], concurrency: int) -> Sequence[EventItem | None]: ...


class ContactLinks(Protocol):
    """Where the visitors each contact was identified as are kept (goalkeeper.dal.touches)."""

    def link_visitors(self, account_id: str, pairs: set[tuple[str, str]]) -> None: ...


class CallTracking(Protocol):
    """What ingestion needs of call tracking (goalkeeper.services.numbers.CallTracking)."""

    def resolve(self, call: Call) -> tuple[Call, str | None]: ...

    def count(self, item: EventItem) -> None: ...


class AccountSecrets(Protocol):
    """Where an account's secret for keyed hashes is kept (goalkeeper.dal.accounts)."""

    def pii_key(self, account_id: str, candidate: str) -> str | None: ...


# account id -> the account's secret for keyed hashes (goalkeeper.pii.AccountSecrets.get)
SecretLookup = Callable[[str], str]


@dataclass(frozen=True)
class Sent:
    """One event of a request: its place in the batch, as validated, and its item."""

    index: int
    event: EventBase
    item: dict[str, Any]


# An event id, and a place in the batch that uses it for other content.
IdConflict = tuple[str, FieldProblem]

# Wide enough for any number DynamoDB stores (38 digits): normalising never rounds.
_EXACT = Context(prec=100)


def load_account_secret(accounts: AccountSecrets, account_id: str) -> str:
    secret = accounts.pii_key(account_id, new_account_secret())
    if secret is None:
        raise Forbidden("the account of this key no longer exists")
    return secret


def _carries_caller(event: EventBase) -> bool:
    return isinstance(event, Call) and event.caller_number is not None


def derived_event_id(event: EventBase, pii_secret: str | None = None) -> str:
    """Without a client id, the id is a digest of the event exactly as sent (before
    defaults), so an identical retry is recognised as the same event. A caller number
    enters the digest only as its keyed hash, so the id reveals nothing about it."""
    sent = event.model_dump(mode="json", exclude_unset=True)
    if _carries_caller(event):
        if pii_secret is None:
            raise ValueError("a caller number needs the account's secret")
        sent["caller_number"] = caller_hash(pii_secret, event.caller_number)  # type: ignore[attr-defined]
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"))
    return "d-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _canonical(value: Any) -> Any:
    """JSON-ready data in which a number is its value (1, 1.0 and "1.00" as an amount
    are one number) and never equals a text or a flag, as rules never take one for the
    other. A number becomes {"number": text}: no field that can hold a number can also
    hold an object, so this cannot be mistaken for one sent."""
    if isinstance(value, dict):
        return {name: _canonical(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        number = Decimal(value)
        return {"number": f"{number.normalize(_EXACT):f}" if number else "0"}
    return value


def content_digest(body: dict[str, Any], occurred_at_sent: bool) -> str:
    """A digest of an event's stored body as the client sent it: without its id, and
    without its time unless the client named one (the server fills both in)."""
    sent = {
        name: value
        for name, value in body.items()
        if name != "event_id" and (name != "occurred_at" or occurred_at_sent)
    }
    canonical = json.dumps(_canonical(sent), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _same_content(stored: dict[str, Any], item: dict[str, Any], occurred_at_sent: bool) -> bool:
    """Events stored before digests were kept have none; their body, with its time
    only when this repeat names one, is what can be compared."""
    digest = stored.get("content_digest") or content_digest(stored["body"], occurred_at_sent)
    return digest == item["content_digest"]


def _conflicts(sent: list[Sent], stored: dict[str, dict[str, Any]]) -> list[IdConflict]:
    """The places that use an id for other content than the event stored under it,
    or, when none is stored, than the id's first place in the batch."""
    conflicts: list[IdConflict] = []
    first: dict[str, Sent] = {}
    for place in sent:
        event_id = place.item["event_id"]
        if event_id in stored:
            if _same_content(stored[event_id], place.item, place.event.occurred_at is not None):
                continue
            reason = "already used by a stored event with other content"
        else:
            earlier = first.setdefault(event_id, place)
            if earlier.item["content_digest"] == place.item["content_digest"]:
                continue
            reason = f"already used by events[{earlier.index}] with other content"
        conflicts.append((event_id, FieldProblem(f"events[{place.index}].event_id", reason)))
    return conflicts


def _refuse(conflicts: list[IdConflict], outcome: str) -> None:
    if conflicts:
        ids = ", ".join(dict.fromkeys(event_id for event_id, _ in conflicts))
        raise EventIdConflict(
            f"event ids already used by events with other content: {ids}; give each event "
            f"its own id ({outcome})",
            [problem for _, problem in conflicts],
        )


def _without_clear_caller(event: EventBase, pii_secret: str | None) -> dict[str, Any]:
    if not _carries_caller(event):
        return {}
    if pii_secret is None:
        raise ValueError("a caller number needs the account's secret")
    number: str = event.caller_number  # type: ignore[attr-defined]
    return {
        "caller_number": None,
        "caller_hash": caller_hash(pii_secret, number),
        "caller_masked": mask_number(number),
    }


def event_item(
    account_id: str,
    event: EventBase,
    received_at: datetime,
    request_id: str,
    retention_days: int,
    pii_secret: str | None = None,
    calls: CallTracking | None = None,
) -> EventItem:
    """The item an event is stored as: with its id (the client's, or derived) and its
    time (the time received when the client named none), the caller number hashed and
    masked, and the digest of its content as sent. A call to a tracking number is
    stored resolved (visitor, visit, attribution filled in where it had none, and
    `matched_by`), so evaluation and the trace see it so; its digest stays that of the
    call as sent, and its resolution reads history only: a repeat is still a repeat."""
    event_id = event.event_id or derived_event_id(event, pii_secret)
    complete = event.model_copy(
        update={"event_id": event_id, "occurred_at": event.occurred_at or received_at}
        | _without_clear_caller(event, pii_secret)
    )
    stored, pool = complete, None
    if calls is not None and isinstance(complete, Call) and complete.tracking_number:
        stored, pool = calls.resolve(complete)
    item = stored_event_item(
        account_id,
        stored,
        received_at,
        request_id,
        expires_at=int((received_at + timedelta(days=retention_days)).timestamp()),
        content_digest=content_digest(to_item(complete), event.occurred_at is not None),
    )
    if pool is not None:
        item["tracking_pool"] = pool
    return item


def ingest_events(
    events: EventStore,
    links: ContactLinks,
    account_id: str,
    batch: EventBatch,
    received_at: datetime,
    request_id: str,
    retention_days: int,
    account_secret: SecretLookup,
    write_concurrency: int = 1,
    calls: CallTracking | None = None,
) -> IngestResult:
    """Store each event with a conditional put on its id; a repeated id stores nothing.
    Puts run `write_concurrency` at a time; the result keeps the batch's order.

    The whole batch was validated before this is called, so a bad event has
    already rejected the batch and nothing was written. Then a consistent read of
    the batch's ids finds the ones used for other content (stored, or earlier in
    the batch): they reject the batch before anything is written. One stored by
    another request between that read and the puts is found by its put: the
    answer is still a conflict, and the batch's other events stay stored. The
    account's secret is looked up once per request, and only when a call carries
    a caller number. Events naming both a contact and a visitor link the two (one
    batch write per request), so the contact's conversions find the visitor's touches.
    Calls to pool numbers are counted in their pool's day once stored (a repeat
    counts one that a failure left uncounted, and never one twice).
    """
    pii_secret = account_secret(account_id) if any(map(_carries_caller, batch.events)) else None
    sent = [
        Sent(
            index,
            event,
            event_item(
                account_id, event, received_at, request_id, retention_days, pii_secret, calls
            ),
        )
        for index, event in enumerate(batch.events)
    ]
    # An id repeated within the request is written once, at its first place.
    first: dict[str, dict[str, Any]] = {}
    for place in sent:
        first.setdefault(place.item["event_id"], place.item)
    stored = events.stored(account_id, list(first))
    _refuse(_conflicts(sent, stored), "nothing was stored")
    # Before the events: an accepted event's link is never missing (a repeat writes it again).
    identified = {
        (contact_id, visitor_id)
        for contact_id, visitor_id in ((p.event.contact_id, p.event.visitor_id) for p in sent)
        if contact_id and visitor_id
    }
    if identified:
        links.link_visitors(account_id, identified)
    new = [item for event_id, item in first.items() if event_id not in stored]
    found = zip(new, events.put_many(new, write_concurrency), strict=True)
    raced = {item["event_id"]: other for item, other in found if other is not None}
    if calls is not None:  # before a refusal below: what this request stored is counted
        for event_id, item in first.items():
            if event_id not in raced:  # the request that stored it counts it
                calls.count(stored.get(event_id, item))
    _refuse(
        _conflicts([place for place in sent if place.item["event_id"] in raced], raced),
        "another request stored them meanwhile; the other events of this request are stored",
    )
    taken = stored.keys() | raced.keys()
    accepted: list[str] = []
    duplicates: list[str] = []
    for place in sent:
        event_id = place.item["event_id"]
        stored_now = first[event_id] is place.item and event_id not in taken
        (accepted if stored_now else duplicates).append(event_id)
    return IngestResult(accepted=accepted, duplicates=duplicates)
