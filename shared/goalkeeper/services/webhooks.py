"""Webhook subscriptions and their delivery log, as the API serves them."""

import secrets
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from goalkeeper.dal.client import is_key_value
from goalkeeper.dal.webhooks import Webhooks, delivery_from_item, webhook_from_item
from goalkeeper.errors import Conflict, FieldProblem, InvalidInput, NotFound
from goalkeeper.models.webhooks import CreatedWebhook, Delivery, Webhook, WebhookRequest
from goalkeeper.webhooks import Resolver, UrlRefused, check_url, new_secret, system_resolver

if TYPE_CHECKING:
    from goalkeeper.messaging import Outbox


def new_webhook_id(now: datetime) -> str:
    return f"wh_{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(6)}"


def create_webhook(
    webhooks: Webhooks,
    account_id: str,
    request: WebhookRequest,
    now: datetime,
    *,
    limit: int,
    allow_local_http: bool,
    resolve: Resolver = system_resolver,
) -> CreatedWebhook:
    """A new webhook, with its secret (the only time it is shown). The URL must pass the
    SSRF rule (goalkeeper.webhooks.check_url): 400 naming `url` and why, nothing stored."""
    try:
        url = check_url(request.url, allow_local_http, resolve)
    except UrlRefused as refused:
        raise InvalidInput(
            "the webhook URL is refused", [FieldProblem("url", str(refused))]
        ) from refused
    webhook_id = new_webhook_id(now)
    secret = new_secret()
    goal_ids = sorted(set(request.goal_ids)) if request.goal_ids else None
    created_at = now.isoformat(timespec="milliseconds")
    item = {
        "kind": "webhook",
        "account_id": account_id,
        "webhook_id": webhook_id,
        "url": url,
        "goal_ids": goal_ids,
        "description": request.description,
        # Kept to sign deliveries (HMAC needs the key itself): encrypted at rest with the
        # table, readable by the functions granted the table, never answered again.
        "secret": secret,
        "status": "active",
        "created_at": created_at,
    }
    webhooks.create(item, limit)
    return CreatedWebhook(**webhook_from_item(item).model_dump(), secret=secret)


def list_webhooks(webhooks: Webhooks, account_id: str) -> list[Webhook]:
    items = [item for item in webhooks.items(account_id) if item["status"] != "deleted"]
    return sorted((webhook_from_item(item) for item in items), key=lambda w: w.created_at)


def _webhook(webhooks: Webhooks, account_id: str, webhook_id: str) -> dict[str, Any]:
    item = webhooks.get_item(account_id, webhook_id) if is_key_value(webhook_id) else None
    if item is None or item["status"] == "deleted":
        raise NotFound("no such webhook")
    return item


def delete_webhook(webhooks: Webhooks, account_id: str, webhook_id: str) -> None:
    if not is_key_value(webhook_id):
        raise NotFound("no such webhook")
    webhooks.delete(account_id, webhook_id)


def deliveries_page(
    webhooks: Webhooks, account_id: str, webhook_id: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    _webhook(webhooks, account_id, webhook_id)
    start = None
    if cursor:
        from goalkeeper import keys

        if not is_key_value(cursor) or len(cursor) > 64:
            raise InvalidInput("bad cursor", [FieldProblem("cursor", "is not a cursor we gave")])
        start = keys.delivery(account_id, webhook_id, cursor)
    page = webhooks.deliveries(account_id, webhook_id, limit, start)
    items = [delivery_from_item(item).model_dump() for item in page.items]
    next_cursor = page.cursor["sk"].removeprefix("D#") if page.cursor else None
    return {"deliveries": items, "next_cursor": next_cursor}


def retry_delivery(
    webhooks: Webhooks, outbox: "Outbox", account_id: str, webhook_id: str, delivery_id: str
) -> Delivery:
    """Send a finished delivery again now (same `webhook-id`), retried as a new one would
    be; 409 while it is still being tried, or when the webhook is not active."""
    webhook = _webhook(webhooks, account_id, webhook_id)
    if webhook["status"] != "active":
        raise Conflict(f"the webhook is {webhook['status']}: create a new one to resume")
    if not is_key_value(delivery_id) or len(delivery_id) > 64:
        raise NotFound("no such delivery")
    item = webhooks.restart(account_id, webhook_id, delivery_id, time.time())
    outbox.send(message(item), 0)
    return delivery_from_item(item)


def message(item: dict[str, Any]) -> dict[str, Any]:
    """The queue message of a delivery's next attempt."""
    return {
        "account_id": item["account_id"],
        "webhook_id": item["webhook_id"],
        "delivery_id": item["delivery_id"],
        "attempt": int(item.get("attempts", 0)),
        "due": float(item.get("next_attempt_at") or 0),
    }
