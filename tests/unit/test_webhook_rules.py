"""The pure part of goal-reached notifications (goalkeeper.webhooks): signatures checked
by the `standardwebhooks` package, the event body, the retry schedule, the SSRF rule."""

import base64
import json
from decimal import Decimal

import pytest
from standardwebhooks import Webhook

from goalkeeper import keys
from goalkeeper.webhooks import (
    Answer,
    RetryPolicy,
    UrlRefused,
    check_url,
    conversion_data,
    event_body,
    matches,
    new_secret,
    signed_headers,
    webhook_message_id,
)

CONVERSION = {
    "kind": "conversion",
    "status": "counted",
    "account_id": "acc",
    "conversion_id": "c1",
    "goal_id": "g1",
    "goal_name": "Sale",
    "event_id": "e1",
    "visitor_id": "v1",
    "visit_id": "s1",
    "contact_id": "ct1",
    "occurred_at": "2026-11-30T10:00:00.000+00:00",
    "value_amount": Decimal("12.50"),
    "value_currency": "EUR",
    "attribution": {"source": "google", "medium": "cpc"},
    "attribution_source": "event",
}


def test_secrets_are_whsec_and_24_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert secret != new_secret()


def test_a_signed_request_verifies_with_the_standard_webhooks_package() -> None:
    import time

    secret = new_secret()
    body = event_body(conversion_data(CONVERSION))
    headers = signed_headers(secret, "msg_abc", int(time.time()), body)
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "conversion.counted"
    assert event["data"]["value"] == "12.50" and event["data"]["currency"] == "EUR"
    with pytest.raises(Exception, match="signature"):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(body.replace("12.50", "99.00"), headers)


def test_the_body_is_the_same_bytes_every_time() -> None:
    data = conversion_data(CONVERSION)
    assert event_body(data) == event_body(json.loads(json.dumps(data)))
    assert json.loads(event_body(data))["data"]["attribution"] == {
        "source": "google",
        "medium": "cpc",
    }


def test_the_webhook_id_is_stable_per_conversion_and_webhook() -> None:
    one = webhook_message_id(keys.delivery_id("c1", "wh_1"))
    assert one == webhook_message_id(keys.delivery_id("c1", "wh_1"))
    assert one != webhook_message_id(keys.delivery_id("c1", "wh_2"))
    assert one != webhook_message_id(keys.delivery_id("c2", "wh_1"))


def test_goal_filter() -> None:
    assert matches(None, "g1") and matches([], "g1") and matches(["g1", "g2"], "g1")
    assert not matches(["g2"], "g1")


def test_answers() -> None:
    assert Answer(204).delivered and not Answer(301).delivered and not Answer(None).delivered
    assert Answer(410).gone and not Answer(404).gone


def test_retry_delays_grow_are_jittered_and_stop_after_the_window() -> None:
    policy = RetryPolicy(base=30, max_delay=4 * 3600, window=24 * 3600)
    longest = [policy.delay(n, 0.0) for n in range(1, 12)]
    assert longest[:4] == [30, 60, 120, 240]
    assert longest == sorted(longest) and max(longest) == 4 * 3600
    assert policy.delay(3, 0.999) < policy.delay(3, 0.0)  # jitter takes up to half off
    assert policy.delay(3, 0.999) >= policy.delay(3, 0.0) / 2
    start, now, failures = 0.0, 0.0, 0
    while True:
        failures += 1
        due = policy.next_attempt(failures, start, now, 0.5)
        if due is None:
            break
        now = due
    assert 24 * 3600 - 4 * 3600 <= now <= 24 * 3600
    assert 10 <= failures <= 20  # about 15 attempts in a day
    assert RetryPolicy(base=0.1, max_delay=0.1).delay(1, 0.0) == 1  # whole seconds (SQS)


def _resolver(answers: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: answers[host]


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/h",
        "https://172.16.5.4/h",
        "https://192.168.1.1/h",
        "https://127.0.0.1/h",
        "https://169.254.169.254/latest/meta-data/",
        "https://0.0.0.0/h",
        "https://[::1]/h",
        "https://[fe80::1]/h",
        "https://[fc00::1]/h",
        "https://[::ffff:10.0.0.1]/h",
        "https://224.0.0.1/h",
        "https://100.64.1.1/h",
        "https://inward.example/h",
        "https://partly.example/h",
        "http://hooks.example/h",
        "https://u:p@hooks.example/h",
        "file:///etc/passwd",
        "https://hooks.example:99999/h",
    ],
)
def test_the_ssrf_rule_refuses(url: str) -> None:
    resolve = _resolver(
        {
            "inward.example": ["10.9.8.7"],
            "partly.example": ["93.184.215.14", "fd12::1"],
            "hooks.example": ["93.184.215.14"],
        }
    )
    with pytest.raises(UrlRefused):
        check_url(url, allow_local_http=False, resolve=resolve)


def test_public_https_is_accepted_and_localhost_only_in_the_local_stack() -> None:
    resolve = _resolver({"hooks.example": ["93.184.215.14", "2606:2800:21f::1"]})
    assert check_url("https://hooks.example/h?x=1", False, resolve)
    local = _resolver({"localhost": ["127.0.0.1", "::1"], "inward.example": ["10.0.0.1"]})
    assert check_url("http://localhost:8080/h", True, local)
    assert check_url("http://127.0.0.1:8080/h", True, local)
    for refused in ("http://localhost:8080/h", "https://localhost/h"):
        with pytest.raises(UrlRefused):
            check_url(refused, False, local)
    with pytest.raises(UrlRefused, match="localhost only"):
        check_url("http://inward.example/h", True, local)
    with pytest.raises(UrlRefused, match=r"10\.0\.0\.1"):
        check_url("https://inward.example/h", True, local)  # private stays refused locally
