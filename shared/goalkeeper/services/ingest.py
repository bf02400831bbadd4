"""Accepting events: give each an id, store it once, say which were new."""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from goalkeeper import keys
from goalkeeper.models.common import iso, to_item
from goalkeeper.models.events import EventBase, EventBatch, IngestResult, PageView, TagChange
from goalkeeper.storage import Store


def derived_event_id(event: EventBase) -> str:
    """Without a client id, the id is a digest of the event exactly as sent (before
    defaults), so an identical retry is recognised as the same event."""
    sent = event.model_dump(mode="json", exclude_unset=True)
    canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"))
    return "d-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def event_item(
    account_id: str,
    event: EventBase,
    received_at: datetime,
    request_id: str,
    retention_days: int,
) -> dict[str, Any]:
    event_id = event.event_id or derived_event_id(event)
    occurred_at = event.occurred_at or received_at
    complete = event.model_copy(update={"event_id": event_id, "occurred_at": occurred_at})
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
) -> IngestResult:
    """Store each event with a conditional put on its id; a repeated id stores nothing.

    The whole batch was validated before this is called, so a bad event has
    already rejected the batch and nothing was written.
    """
    accepted: list[str] = []
    duplicates: list[str] = []
    for event in batch.events:
        item = event_item(account_id, event, received_at, request_id, retention_days)
        (accepted if store.put_event(item) else duplicates).append(item["event_id"])
    return IngestResult(accepted=accepted, duplicates=duplicates)
