"""Events as sites and phone systems send them (POST /v1/events)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from goalkeeper.models.common import (
    Amount,
    Currency,
    Identifier,
    LongText,
    PhoneNumber,
    ShortText,
    StrictModel,
)

EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)

FieldValue = bool | int | Decimal | Annotated[str, StringConstraints(max_length=1024)] | None
TagName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Attribution(StrictModel):
    source: ShortText | None = None
    medium: ShortText | None = None
    campaign: ShortText | None = None
    keyword: ShortText | None = None
    click_id: ShortText | None = None


class Transaction(StrictModel):
    value: Amount
    currency: Currency
    reference: ShortText | None = None


class EventBase(StrictModel):
    event_id: Identifier | None = Field(
        default=None,
        description="Idempotency key. Without it the id is derived from the body as sent, "
        "so an identical retry is recognised.",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a time zone; defaults to the time received."
    )
    visitor_id: Identifier | None = None
    visit_id: Identifier | None = None
    contact_id: Identifier | None = None
    attribution: Attribution | None = None

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, at: datetime | None) -> datetime | None:
        if at is None:
            return None
        if at < EARLIEST_EVENT:
            raise ValueError("must not be before 2000-01-01")
        if at > datetime.now(UTC) + MAX_CLOCK_SKEW:
            raise ValueError("must not be more than one day in the future")
        return at.astimezone(UTC)

    def transaction_facts(self) -> Transaction | None:
        """The money this event carries, if any (feeds transaction rules and values)."""
        return None


class PageView(EventBase):
    type: Literal["page_view"]
    url: LongText
    title: ShortText | None = None
    referrer: LongText | None = None


class CustomTrigger(EventBase):
    type: Literal["custom_trigger"]
    name: ShortText
    fields: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], FieldValue] = (
        Field(default_factory=dict, max_length=100)
    )
    transaction: Transaction | None = None

    def transaction_facts(self) -> Transaction | None:
        return self.transaction


class TransactionEvent(EventBase):
    type: Literal["transaction"]
    transaction: Transaction

    def transaction_facts(self) -> Transaction | None:
        return self.transaction


class Lead(EventBase):
    type: Literal["lead"]
    lead_id: Identifier


class ServiceStatus(EventBase):
    type: Literal["service_status"]
    service_id: Identifier
    topic: ShortText
    status: ShortText


class Call(EventBase):
    type: Literal["call"]
    call_id: Identifier
    caller_number: PhoneNumber | None = None
    tracking_number: PhoneNumber | None = None
    connected: bool
    bridged_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _bridged_only_when_connected(self) -> "Call":
        if not self.connected and self.bridged_seconds:
            raise ValueError("bridged_seconds must be 0 when connected is false")
        return self


class CallRating(EventBase):
    type: Literal["call_rating"]
    call_id: Identifier
    rating: ShortText
    value: Amount | None = None
    currency: Currency | None = None

    @model_validator(mode="after")
    def _value_needs_currency(self) -> "CallRating":
        if (self.value is None) != (self.currency is None):
            raise ValueError("value and currency must be given together")
        return self

    def transaction_facts(self) -> Transaction | None:
        if self.value is None or self.currency is None:
            return None
        return Transaction(value=self.value, currency=self.currency, reference=self.call_id)


class TagChange(EventBase):
    type: Literal["tag"]
    contact_id: Identifier
    added: list[TagName] = Field(default_factory=list, max_length=100)
    removed: list[TagName] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _changes_something(self) -> "TagChange":
        if not self.added and not self.removed:
            raise ValueError("a tag event must add or remove at least one tag")
        return self


Event = Annotated[
    PageView
    | CustomTrigger
    | TransactionEvent
    | Lead
    | ServiceStatus
    | Call
    | CallRating
    | TagChange,
    Field(discriminator="type"),
]
EVENT_TYPES = (
    "page_view",
    "custom_trigger",
    "transaction",
    "lead",
    "service_status",
    "call",
    "call_rating",
    "tag",
)


class EventBatch(StrictModel):
    events: list[Event] = Field(min_length=1, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _single_event_is_a_batch_of_one(cls, body: object) -> object:
        if isinstance(body, dict) and "events" not in body:
            return {"events": [body]}
        return body


class IngestResult(StrictModel):
    accepted: list[str]
    duplicates: list[str]
