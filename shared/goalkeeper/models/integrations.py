"""Phone systems connected to an account: Twilio (PUT /v1/integrations/twilio) and the
voice status callbacks it posts (POST /v1/integrations/twilio/{account_id}/calls)."""

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from goalkeeper.models.common import CallerNumber, PhoneNumber, StrictModel
from goalkeeper.models.events import plausible_time


class TwilioConnectRequest(StrictModel):
    auth_token: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{32}$")] = Field(
        description="The Twilio account's Auth Token (Twilio Console, Account Info): "
        "32 hexadecimal characters. Stored to check callbacks' signatures; never returned."
    )


class TwilioConnection(StrictModel):
    webhook_url: str = Field(
        description="Paste it as the status callback URL (HTTP POST) of each tracked number."
    )


TwilioCallStatus = Literal[
    "queued",
    "initiated",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "canceled",
]


# How a <Dial> (the forward to the business) ended, in the request to its action URL.
TwilioDialStatus = Literal["completed", "answered", "busy", "no-answer", "failed", "canceled"]


def _empty_as_absent(value: object) -> object:
    return None if value == "" else value


def _rfc2822(value: object) -> object:
    """Twilio's Timestamp: 'Tue, 01 Dec 2026 02:41:20 +0000'."""
    if not isinstance(value, str):
        return value
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError) as error:
        raise ValueError("must be a date as Twilio writes it (RFC 2822)") from error
    if at.tzinfo is None:
        raise ValueError("must name its time zone (+0000)")
    return at


Seconds = Annotated[int | None, BeforeValidator(_empty_as_absent), Field(ge=0, le=7 * 24 * 3600)]


class TwilioStatusCallback(BaseModel):
    """The parameters of a voice status callback that make a call event. Twilio sends
    many more, and adds new ones without notice: those are ignored, not refused (the
    signature covers them all)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, defer_build=True)

    call_sid: Annotated[str, StringConstraints(pattern=r"^CA[0-9a-fA-F]{32}$")] = Field(
        alias="CallSid"
    )
    call_status: TwilioCallStatus = Field(alias="CallStatus")
    caller: CallerNumber = Field(default=None, alias="From")
    to: PhoneNumber = Field(alias="To")
    direction: str | None = Field(default=None, alias="Direction")
    dial_call_status: Annotated[TwilioDialStatus | None, BeforeValidator(_empty_as_absent)] = Field(
        default=None, alias="DialCallStatus"
    )
    call_duration: Seconds = Field(default=None, alias="CallDuration")
    dial_call_duration: Seconds = Field(default=None, alias="DialCallDuration")
    timestamp: Annotated[
        datetime | None, BeforeValidator(_rfc2822), AfterValidator(plausible_time)
    ] = Field(default=None, alias="Timestamp")

    def inbound(self) -> bool:
        """A call to the number (what call tracking counts), not one Twilio placed."""
        return self.direction in (None, "inbound")
