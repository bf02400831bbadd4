"""Connecting Twilio to an account, and the calls its signed callbacks report.

Twilio posts no API key: the webhook URL names the account, and the signature made
with the account's Auth Token is what proves the callback came from its Twilio
account. A callback that does not verify (no signature, a wrong one, an account with
no Twilio connection or none at all) gets one and the same 403 and stores nothing.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qs

from pydantic import ValidationError

from goalkeeper import twilio
from goalkeeper.dal.integrations import TwilioRecord
from goalkeeper.errors import Forbidden, InvalidInput
from goalkeeper.http import problems_from_validation
from goalkeeper.models.common import iso
from goalkeeper.models.events import IncomingCall
from goalkeeper.models.integrations import (
    TwilioConnection,
    TwilioConnectRequest,
    TwilioStatusCallback,
)


class TwilioConnections(Protocol):
    """Where an account's Twilio connection is kept (goalkeeper.dal.integrations)."""

    def put_twilio(self, record: TwilioRecord) -> None: ...

    def twilio(self, account_id: str) -> TwilioRecord | None: ...


def twilio_webhook_path(account_id: str) -> str:
    return f"/v1/integrations/twilio/{account_id}/calls"


def connect_twilio(
    connections: TwilioConnections,
    account_id: str,
    request: TwilioConnectRequest,
    public_base_url: str,
    now: datetime,
) -> TwilioConnection:
    """Keep the token, and the webhook URL under `public_base_url` that callbacks must be
    signed for. Connecting again replaces both (a rotated token, a new domain)."""
    webhook_url = public_base_url.rstrip("/") + twilio_webhook_path(account_id)
    connections.put_twilio(TwilioRecord(account_id, request.auth_token, webhook_url, iso(now)))
    return TwilioConnection(webhook_url=webhook_url)


def _unverified() -> Forbidden:
    return Forbidden(
        "this callback is not signed with the Twilio Auth Token connected to this URL's "
        "account (X-Twilio-Signature); connect Twilio with PUT /v1/integrations/twilio and "
        "paste the webhook_url it answers into Twilio as it is"
    )


@dataclass(frozen=True)
class TwilioReport:
    """What a signed request from Twilio reports: the call (None: a status before the
    call ended, or a call not tracked), and whether it came from a <Dial>'s action,
    which Twilio runs the answer of as TwiML (status callbacks take any answer)."""

    call: IncomingCall | None
    dial_action: bool


def twilio_report(
    connections: TwilioConnections, account_id: str, form: str, signature: str | None
) -> TwilioReport:
    """What a signed status callback (or <Dial> action) reports. The signature is
    checked before anything else is read."""
    parameters = parse_qs(form, keep_blank_values=True)
    connection = connections.twilio(account_id)
    if connection is None or not twilio.signed_by_twilio(
        connection.auth_token, connection.webhook_url, parameters, signature
    ):
        raise _unverified()
    try:
        # Twilio sends each parameter once (the signature covers every value sent).
        callback = TwilioStatusCallback.model_validate(
            {name: values[0] for name, values in parameters.items()}
        )
    except ValidationError as error:
        raise InvalidInput(
            "the status callback is invalid",
            problems_from_validation([dict(detail) for detail in error.errors()]),
        ) from error
    return TwilioReport(twilio.call_event(callback), callback.dial_call_status is not None)
