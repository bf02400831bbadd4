"""Twilio's status callbacks, checked against Twilio's own client: the signatures its
RequestValidator makes verify here (and nothing else does), and each callback maps to
the call it reports."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from goalkeeper import twilio
from goalkeeper.models.integrations import TwilioStatusCallback
from support.twilio_calls import (
    AUTH_TOKEN,
    call_sid,
    completed_call,
    dial_action,
    status_callback,
)

URLS = (
    "https://calls.example.com/v1/integrations/twilio/acc_1/calls",
    "https://calls.example.com:443/v1/integrations/twilio/acc_1/calls",
    "https://abc.execute-api.eu-west-1.amazonaws.com/prod/v1/integrations/twilio/acc_1/calls",
    "http://127.0.0.1:3000/v1/integrations/twilio/acc_1/calls",
)
VALIDATOR = RequestValidator(AUTH_TOKEN)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
FORMS = st.dictionaries(st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), TEXT, max_size=8)


def _as_lists(params: dict[str, str]) -> dict[str, list[str]]:
    return {name: [value] for name, value in params.items()}


@pytest.mark.parametrize("url", URLS)
def test_twilios_signature_of_a_callback_is_the_one_computed_here(url: str) -> None:
    params = completed_call(call_sid(1), 75, datetime(2026, 12, 1, tzinfo=UTC))
    expected = VALIDATOR.compute_signature(url, params)
    assert twilio.signature(AUTH_TOKEN, url, _as_lists(params)) == expected
    assert twilio.signed_by_twilio(AUTH_TOKEN, url, _as_lists(params), expected)


@settings(max_examples=60, deadline=None)
@given(params=FORMS, url=st.sampled_from(URLS), signed_for=st.sampled_from(URLS))
def test_a_signature_verifies_exactly_when_twilios_validator_says_so(
    params: dict[str, str], url: str, signed_for: str
) -> None:
    presented = VALIDATOR.compute_signature(signed_for, params)
    assert twilio.signed_by_twilio(
        AUTH_TOKEN, url, _as_lists(params), presented
    ) is VALIDATOR.validate(url, params, presented)


def test_nothing_else_verifies() -> None:
    url, params = URLS[0], status_callback(call_sid(2), "completed", duration=30)
    good = VALIDATOR.compute_signature(url, params)
    forms = _as_lists(params)
    assert not twilio.signed_by_twilio(AUTH_TOKEN, url, forms, None)
    assert not twilio.signed_by_twilio(AUTH_TOKEN, url, forms, "")
    assert not twilio.signed_by_twilio("f" * 32, url, forms, good)
    assert not twilio.signed_by_twilio(AUTH_TOKEN, url + "?x=1", forms, good)
    assert not twilio.signed_by_twilio(AUTH_TOKEN, url, forms | {"To": ["+15550000000"]}, good)


def _call(params: dict[str, str]) -> Any:
    return twilio.call_event(TwilioStatusCallback.model_validate(params))


@pytest.mark.parametrize("status", ["queued", "initiated", "ringing", "in-progress"])
def test_a_status_before_the_call_ended_is_no_call(status: str) -> None:
    assert _call(status_callback(call_sid(3), status)) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("completed", "answered"),
        ("busy", "busy"),
        ("no-answer", "no-answer"),
        ("failed", "failed"),
        ("canceled", "canceled"),
    ],
)
def test_the_final_status_is_the_calls_outcome(status: str, outcome: str) -> None:
    sid = call_sid(status)
    call = _call(status_callback(sid, status, duration=40))
    assert (call.event_id, call.call_id, call.outcome) == (f"twilio-{sid}", sid, outcome)
    assert call.connected is (outcome == "answered")
    assert call.bridged_seconds == (40 if outcome == "answered" else 0)
    assert (call.caller_number, call.tracking_number) == ("+442071234567", "+442079460000")


def test_bridged_seconds_and_time_of_a_forwarded_call() -> None:
    answered = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    call = _call(completed_call(call_sid(4), 100, answered, dial_duration=70))
    assert call.bridged_seconds == 70  # DialCallDuration: the time bridged to the business
    assert call.occurred_at == answered  # the final Timestamp less CallDuration


def test_a_callback_without_timestamp_leaves_the_time_to_ingestion() -> None:
    params = status_callback(call_sid(5), "completed", duration=10)
    del params["Timestamp"]
    assert _call(params).occurred_at is None


@pytest.mark.parametrize(
    "caller", ["+266696687", "+7378742833", "+86282452253", "+2562533", "Anonymous", ""]
)
def test_a_withheld_caller_is_no_caller(caller: str) -> None:
    assert _call(status_callback(call_sid(6), "completed", caller=caller)).caller_number is None


@pytest.mark.parametrize("direction", ["outbound-api", "outbound-dial", "trunking-originating"])
def test_calls_not_made_to_the_number_are_not_tracked(direction: str) -> None:
    params = status_callback(call_sid(7), "completed", duration=9, direction=direction)
    assert _call(params) is None


def test_a_timestamp_in_the_future_is_refused_naming_it() -> None:
    params = status_callback(call_sid(8), "completed", at=datetime.now(UTC) + timedelta(days=3))
    with pytest.raises(ValueError, match="Timestamp"):
        TwilioStatusCallback.model_validate(params)


@pytest.mark.parametrize(
    ("dial_status", "outcome"),
    [("completed", "answered"), ("answered", "answered"), ("no-answer", "no-answer")],
)
def test_a_dial_action_reports_how_the_forward_ended(dial_status: str, outcome: str) -> None:
    call = _call(dial_action(call_sid(9), dial_status, 33 if outcome == "answered" else 0))
    assert call.outcome == outcome
    assert call.bridged_seconds == (33 if outcome == "answered" else 0)
    assert call.occurred_at is None  # a dial action carries no Timestamp: when received
