"""Twilio as it calls Goalkeeper: voice status callbacks with the parameters Twilio
posts, signed by the `twilio` package's own RequestValidator (a signer nobody here
wrote). For any tier: `signed_callback` gives the body and headers to post to a
webhook URL; `post_callback` posts them over HTTP (a served stack), and the
in-process stack's ApiClient posts them with `ApiClient.response`.

    connect_twilio(api_request, write_key) -> webhook_url
    params = status_callback(call_sid(1), "completed", duration=75, at=started + 60 s)
    post_callback(webhook_url, params)  # or stack.api.response(..., raw=body, headers=...)
"""

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32
CALLER = "+442071234567"
TRACKING_NUMBER = "+442079460000"
FORM = "application/x-www-form-urlencoded"


def call_sid(seed: object) -> str:
    """A Twilio call SID (CA + 32 hex), the same for the same seed."""
    return "CA" + hashlib.sha256(str(seed).encode()).hexdigest()[:32]


def status_callback(
    sid: str,
    status: str,
    *,
    caller: str = CALLER,
    to: str = TRACKING_NUMBER,
    duration: int | None = None,
    dial_duration: int | None = None,
    at: datetime | None = None,
    direction: str = "inbound",
    sequence: int = 0,
) -> dict[str, str]:
    """The parameters Twilio posts for a call reaching `status` at `at` (now by
    default); `duration` (CallDuration) is sent with the final status."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": status,
        "Called": to,
        "Caller": caller,
        "Direction": direction,
        "From": caller,
        "To": to,
        "CallbackSource": "call-progress-events",
        "SequenceNumber": str(sequence),
        "Timestamp": format_datetime(at or datetime.now(UTC)),
    }
    if duration is not None:
        params["CallDuration"] = str(duration)
    if dial_duration is not None:
        params["DialCallDuration"] = str(dial_duration)
    return params


def signed_callback(
    webhook_url: str, params: dict[str, str], auth_token: str = AUTH_TOKEN
) -> tuple[str, dict[str, str]]:
    """(the form body, the headers) of Twilio's POST of `params` to `webhook_url`."""
    signature = RequestValidator(auth_token).compute_signature(webhook_url, params)
    return urlencode(params), {"Content-Type": FORM, "X-Twilio-Signature": signature}


def post_callback(
    webhook_url: str, params: dict[str, str], auth_token: str = AUTH_TOKEN
) -> tuple[int, str]:
    """POST a signed callback over HTTP, as Twilio does: (status, body)."""
    body, headers = signed_callback(webhook_url, params, auth_token)
    request = urllib.request.Request(webhook_url, body.encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def connect_twilio(
    request: Callable[..., tuple[int, Any]], write_key: str, auth_token: str = AUTH_TOKEN
) -> str:
    """PUT /v1/integrations/twilio with `request` (an ApiClient's or a ServedStack's);
    the webhook URL it answers."""
    status, body = request("PUT", "/v1/integrations/twilio", write_key, {"auth_token": auth_token})
    assert status == 200, body
    return str(body["webhook_url"])


def path_of(webhook_url: str) -> str:
    return urlsplit(webhook_url).path


def completed_call(
    sid: str, bridged_seconds: int, answered_at: datetime, **more: Any
) -> dict[str, str]:
    """The final callback of a call answered at `answered_at` and bridged that long."""
    ended = answered_at + timedelta(seconds=bridged_seconds)
    return status_callback(sid, "completed", duration=bridged_seconds, at=ended, **more)


def dial_action(sid: str, dial_status: str, dial_duration: int, **more: Any) -> dict[str, str]:
    """What Twilio posts to a <Dial>'s action URL when the forward to the business ends
    (the call itself still in progress): no Timestamp, no callback sequence."""
    params = status_callback(sid, "in-progress", **more)
    for name in ("Timestamp", "CallbackSource", "SequenceNumber"):
        del params[name]
    return params | {
        "DialCallSid": call_sid(f"{sid}-leg"),
        "DialCallStatus": dial_status,
        "DialCallDuration": str(dial_duration),
    }
