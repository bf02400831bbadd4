"""Accepting events: give each an id, store it once, say which were new.

Caller numbers are personal data and never stored in clear: a call keeps a
keyed hash of its caller (what de-duplication compares) and a masked form (what
people see); see goalkeeper.pii.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from goalkeeper import keys
from goalkeeper.errors import Forbidden
from goalkeeper.models.common import iso, to_item
from goalkeeper.models.events import (
    Call,
    EventBase,
    EventBatch,
    IngestResult,
    PageView,
    TagChange,
)
from goalkeeper.pii import caller_hash, mask_number, new_account_secret
from goalkeeper.storage import Store

# account id -> the account's secret for keyed hashes (goalkeeper.pii.AccountSecrets.get)
SecretLookup = Callable[[str], str]


def load_account_secret(store: Store, account_id: str) -> str:
    secret = store.account_pii_key(account_id, new_account_secret())
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
) -> dict[str, Any]:
    event_id = event.event_id or derived_event_id(event, pii_secret)
    occurred_at = event.occurred_at or received_at
    complete = event.model_copy(
        update={"event_id": event_id, "occurred_at": occurred_at}
        | _without_clear_caller(event, pii_secret)
    )
    at = iso(occurred_at)
    item: dict[str, Any] = keys.event(account_id, event_id) | {
        "kind": "event",
        "account_id": account_id,
        "event_id": event_id,
        "type": complete.type,  # type: ignore[attr-defined]
        "occurred_at": at,
        "received_at": iso(received_at),
        "request_id": request_id,
        "expires_at": int((received_at + timedelta(days=retention_days)).timestamp()),
        "body": to_item(complete),
    }
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
    return item


def ingest_events(
    store: Store,
    account_id: str,
    batch: EventBatch,
    received_at: datetime,
    request_id: str,
    retention_days: int,
    account_secret: SecretLookup,
    write_concurrency: int = 1,
) -> IngestResult:
    """Store each event with a conditional put on its id; a repeated id stores nothing.
    Puts run `write_concurrency` at a time; the result keeps the batch's order.

    The whole batch was validated before this is called, so a bad event has
    already rejected the batch and nothing was written. The account's secret is
    looked up once per request, and only when a call carries a caller number.
    """
    pii_secret = account_secret(account_id) if any(map(_carries_caller, batch.events)) else None
    items = [
        event_item(account_id, event, received_at, request_id, retention_days, pii_secret)
        for event in batch.events
    ]
    # An id repeated within the request is written once, at its first place.
    first: dict[str, dict[str, Any]] = {}
    for item in items:
        first.setdefault(item["event_id"], item)
    new = dict(zip(first, store.put_events(list(first.values()), write_concurrency), strict=True))
    accepted: list[str] = []
    duplicates: list[str] = []
    for item in items:
        event_id = item["event_id"]
        (accepted if first[event_id] is item and new[event_id] else duplicates).append(event_id)
    return IngestResult(accepted=accepted, duplicates=duplicates)
