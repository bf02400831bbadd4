"""Twilio's voice status callbacks: the signature that proves Twilio sent one, and the
call it reports.

Twilio signs each callback with the account's Auth Token: HMAC-SHA1 over the URL it
posted to followed by every form parameter, names sorted, each name then its value,
base64 in `X-Twilio-Signature`. Twilio's own validator accepts the URL with and
without its default port (how Twilio writes it has varied); so does this.

A call sends a callback per status it reaches (initiated, ringing, in-progress: as
ticked in Twilio) and always one when it ends (completed, busy, no-answer, failed,
canceled). Only that last one is the call: it alone says how the call ended and for
how long, so the ones before it store nothing.

A number that forwards its calls to the business with <Dial> answers every call
itself: its final status is "completed" whether the business picked up or not. The
<Dial>'s action request says how the forward ended (DialCallStatus) and for how long
(DialCallDuration): posted to the same URL, it is the call, and reaches it first (the
dial ends before the call does); the final status after it is a report of the same call.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from goalkeeper.models.events import CallOutcome, IncomingCall
from goalkeeper.models.integrations import TwilioStatusCallback

SIGNATURE_HEADER = "x-twilio-signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

# Twilio's final statuses, as the call's outcome; the statuses before them have none.
OUTCOME_BY_STATUS: dict[str, CallOutcome] = {
    "completed": "answered",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}
# A <Dial>'s outcome ("answered": the business picked up, then the caller hung up first).
OUTCOME_BY_DIAL_STATUS: dict[str, CallOutcome] = OUTCOME_BY_STATUS | {"answered": "answered"}
_DEFAULT_PORTS = {"https": 443, "http": 80}

# Form parameters: each name with every value it was sent with.
FormParameters = Mapping[str, Sequence[str]]


def signature(auth_token: str, url: str, parameters: FormParameters) -> str:
    """What Twilio sends in X-Twilio-Signature for a POST of `parameters` to `url`."""
    signed = url + "".join(
        name + value for name in sorted(parameters) for value in sorted(set(parameters[name]))
    )
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_forms(url: str) -> tuple[str, str]:
    """The URL without a port, and with its scheme's default port when it names none."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 443)
    return (
        urlunsplit(parts._replace(netloc=host)) if parts.port else url,
        url if parts.port else urlunsplit(parts._replace(netloc=f"{host}:{port}")),
    )


def signed_by_twilio(
    auth_token: str, url: str, parameters: FormParameters, presented: str | None
) -> bool:
    """Whether `presented` is Twilio's signature of this request (compared in constant time)."""
    if not presented:
        return False
    return any(
        hmac.compare_digest(signature(auth_token, form, parameters).encode(), presented.encode())
        for form in _port_forms(url)
    )


def event_id(call_sid: str) -> str:
    """One id per Twilio call: a retried or repeated final callback is a duplicate."""
    return f"twilio-{call_sid}"


def call_event(callback: TwilioStatusCallback) -> IncomingCall | None:
    """The call event a callback reports, or None: a status before the call ended, or a
    call Goalkeeper does not track (an outbound one, or a <Dial> leg of an inbound one,
    whose callback would count the same call twice).

    A <Dial> action's request (DialCallStatus) says how the forward to the business
    ended; otherwise the final CallStatus does. Bridged seconds are DialCallDuration
    when the call was forwarded with <Dial> (the time connected to the business), else
    CallDuration. The call happened when it was answered: the final callback's
    Timestamp less CallDuration.
    """
    if callback.dial_call_status is not None:
        outcome: CallOutcome | None = OUTCOME_BY_DIAL_STATUS[callback.dial_call_status]
    else:
        outcome = OUTCOME_BY_STATUS.get(callback.call_status)
    if outcome is None or not callback.inbound():
        return None
    answered = outcome == "answered"
    duration = callback.call_duration or 0
    bridged = callback.dial_call_duration if callback.dial_call_duration is not None else duration
    started = (
        None if callback.timestamp is None else callback.timestamp - timedelta(seconds=duration)
    )
    return IncomingCall.model_validate(
        {
            "type": "call",
            "event_id": event_id(callback.call_sid),
            "occurred_at": started,
            "call_id": callback.call_sid,
            "caller_number": callback.caller,
            "tracking_number": callback.to,
            "connected": answered,
            "bridged_seconds": bridged if answered else 0,
            "outcome": outcome,
        }
    )
