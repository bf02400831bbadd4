"""Goal-reached notifications: webhook subscriptions (POST/GET/DELETE /v1/webhooks) and
their delivery log (GET /v1/webhooks/{webhook_id}/deliveries)."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from goalkeeper.models.common import Identifier, StrictModel

MAX_GOAL_FILTER = 100


class WebhookRequest(StrictModel):
    """`url` is checked further by the service (the SSRF rule, goalkeeper.webhooks);
    `goal_ids` absent or empty: every goal."""

    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    goal_ids: Annotated[list[Identifier], Field(max_length=MAX_GOAL_FILTER)] | None = None
    description: Annotated[str, StringConstraints(max_length=256)] | None = None


WebhookStatus = Literal["active", "disabled", "deleted"]
DeliveryStatus = Literal["pending", "sending", "delivered", "dead", "cancelled"]


class Webhook(StrictModel):
    """A webhook as listed: never its secret (shown once, when it is created)."""

    webhook_id: str
    url: str
    goal_ids: list[str] | None = None
    description: str | None = None
    status: WebhookStatus
    created_at: str
    disabled_reason: str | None = None


class CreatedWebhook(Webhook):
    secret: str


class Delivery(StrictModel):
    delivery_id: str
    webhook_id: str
    # The `webhook-id` header receivers de-duplicate on: the same on every attempt.
    message_id: str
    conversion_id: str
    goal_id: str
    status: DeliveryStatus
    attempts: int
    last_response_code: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    created_at: str
    delivered_at: str | None = None
