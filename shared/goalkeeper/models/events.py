"""Events as sites and phone systems send them (POST /v1/events)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from goalkeeper.models.common import (
    AcceptedPhoneNumber,
    Amount,
    CallerNumber,
    Currency,
    Identifier,
    LongText,
    PhoneNumber,
    ShortText,
    StrictModel,
    VisitorId,
)

EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)

DYNAMODB_MAX_DIGITS = 38
DYNAMODB_SMALLEST = Decimal("1E-130")
DYNAMODB_TOO_LARGE = Decimal("1E126")


def _storable_number(value: object) -> object:
    """DynamoDB keeps numbers of up to 38 digits, magnitudes 1E-130 to below 1E126."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return value
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number and not (DYNAMODB_SMALLEST <= abs(number) < DYNAMODB_TOO_LARGE):
        raise ValueError("must be between 1E-130 and 1E126 in size, or 0")
    if len(number.as_tuple().digits) > DYNAMODB_MAX_DIGITS:  # as written: boto3 won't round
        raise ValueError(f"must have at most {DYNAMODB_MAX_DIGITS} significant digits")
    return value


FieldValue = Annotated[
    bool | int | Decimal | Annotated[str, StringConstraints(max_length=1024)] | None,
    AfterValidator(_storable_number),
]
TagName = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def plausible_time(at: datetime) -> datetime:
    """An event's time in UTC, refused when it cannot be one (a clock or unit mistake)."""
    if at < EARLIEST_EVENT:
        raise ValueError("must not be before 2000-01-01")
    if at > datetime.now(UTC) + MAX_CLOCK_SKEW:
        raise ValueError("must not be more than one day in the future")
    return at.astimezone(UTC)


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
        return None if at is None else plausible_time(at)

    def transaction_facts(self) -> Transaction | None:
        """The money this event carries, if any (feeds transaction rules and values)."""
        return None


def _empty_as_absent(value: object) -> object:
    return None if value == "" else value


# Browsers give "" for what a page does not know (document.referrer of a direct entry,
# document.title of a page without <title>): a tracker sends it as is, and it means absent.
EmptyAsAbsent = BeforeValidator(_empty_as_absent)


class PageView(EventBase):
    type: Literal["page_view"]
    url: LongText
    title: Annotated[ShortText | None, EmptyAsAbsent] = None
    referrer: Annotated[LongText | None, EmptyAsAbsent] = None


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


CallerHash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# How a call ended, as phone systems report it: only an answered call was connected.
CallOutcome = Literal["answered", "busy", "no-answer", "failed", "canceled"]


class Call(EventBase):
    """A call as stored and evaluated. `caller_number` is personal data: ingestion
    replaces it with `caller_hash` (HMAC-SHA256 under the account's secret, what
    de-duplication compares) and `caller_masked` (what people see); see goalkeeper.pii.
    """

    type: Literal["call"]
    call_id: Identifier
    caller_number: AcceptedPhoneNumber | None = None
    tracking_number: AcceptedPhoneNumber | None = None  # the business's own number: in clear
    connected: bool
    bridged_seconds: int = Field(default=0, ge=0, le=7 * 24 * 3600)
    outcome: CallOutcome | None = Field(
        default=None,
        description="How the call ended; without it, a connected call counts as answered.",
    )
    caller_hash: CallerHash | None = None
    caller_masked: Annotated[str, StringConstraints(max_length=16)] | None = None
    # How the tracking number resolved the call (goalkeeper.services.numbers.resolve_call):
    # set at ingestion, with the visitor, visit and attribution it filled in.
    matched_by: Literal["static", "pool", "none"] | None = None

    @field_validator("bridged_seconds")
    @classmethod
    def _bridged_only_when_connected(cls, seconds: int, info: ValidationInfo) -> int:
        if seconds and info.data.get("connected") is False:
            raise ValueError("must be 0 when connected is false")
        return seconds

    @field_validator("outcome")
    @classmethod
    def _answered_when_connected(
        cls, outcome: CallOutcome | None, info: ValidationInfo
    ) -> CallOutcome | None:
        connected = info.data.get("connected")
        if outcome is not None and connected is not None and (outcome == "answered") != connected:
            required = "answered" if connected else "busy, no-answer, failed or canceled"
            raise ValueError(f"must be {required} when connected is {str(connected).lower()}")
        return outcome

    def known_outcome(self) -> CallOutcome | None:
        """The outcome sent, or what `connected` tells of it: answered, or not known
        (a call that was not connected may have been busy, unanswered, ...)."""
        return self.outcome or ("answered" if self.connected else None)


class AsSent(StrictModel):
    """Checks of what clients send that stored events are not held to again: an event
    is read back as it was accepted, so a check added later never strands an event
    accepted before it (evaluation would refuse it and dead-letter its conversions)."""

    visitor_id: VisitorId | None = None


class IncomingPageView(AsSent, PageView):
    pass


class IncomingCustomTrigger(AsSent, CustomTrigger):
    pass


class IncomingTransactionEvent(AsSent, TransactionEvent):
    pass


class IncomingLead(AsSent, Lead):
    pass


class IncomingServiceStatus(AsSent, ServiceStatus):
    pass


class IncomingCall(AsSent, Call):
    """A call as a client sends it: numbers normalised to E.164, a withheld caller
    ("anonymous", Twilio's placeholders...) taken as none; the caller's hash and mask,
    and how its tracking number resolved it, are Goalkeeper's to set."""

    caller_number: CallerNumber = None
    tracking_number: PhoneNumber | None = None
    caller_hash: SkipJsonSchema[str | None] = None
    caller_masked: SkipJsonSchema[str | None] = None
    matched_by: SkipJsonSchema[Literal["static", "pool", "none"] | None] = None

    @field_validator("caller_hash", "caller_masked", "matched_by", mode="before")
    @classmethod
    def _set_by_goalkeeper(cls, value: object) -> object:
        raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted")


class CallRating(EventBase):
    type: Literal["call_rating"]
    call_id: Identifier
    rating: ShortText
    value: Amount | None = None
    currency: Currency | None = Field(default=None, validate_default=True)

    @field_validator("currency")
    @classmethod
    def _with_value(cls, currency: str | None, info: ValidationInfo) -> str | None:
        if "value" not in info.data:
            return currency  # the value itself was invalid and is reported
        if currency is None and info.data["value"] is not None:
            raise ValueError("is required when value is given")
        if currency is not None and info.data["value"] is None:
            raise ValueError("only goes with a value")
        return currency

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


class IncomingCallRating(AsSent, CallRating):
    pass


class IncomingTagChange(AsSent, TagChange):
    pass


# An event as stored and evaluated.
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
# An event as clients send it (POST /v1/events).
IncomingEvent = Annotated[
    IncomingPageView
    | IncomingCustomTrigger
    | IncomingTransactionEvent
    | IncomingLead
    | IncomingServiceStatus
    | IncomingCall
    | IncomingCallRating
    | IncomingTagChange,
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
    events: list[IncomingEvent] = Field(min_length=1, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _single_event_is_a_batch_of_one(cls, body: object) -> object:
        if isinstance(body, dict) and "events" not in body:
            return {"events": [body]}
        return body


class IngestResult(StrictModel):
    accepted: list[str]
    duplicates: list[str]
