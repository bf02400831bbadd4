"""Twilio posts its voice status callbacks to the webhook URL Goalkeeper answers: signed
ones become call events, once per call; anything unsigned stores nothing. Every
callback here is signed by the `twilio` package's RequestValidator."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.stack import InProcessStack
from support.twilio_calls import (
    AUTH_TOKEN,
    call_sid,
    completed_call,
    connect_twilio,
    dial_action,
    path_of,
    signed_callback,
    status_callback,
)

OTHER_TOKEN = "fedcba9876543210fedcba9876543210"
WITHHELD = ("+266696687", "anonymous", "+7378742833", "Restricted", "+86282452253", "")


class Account:
    def __init__(self, stack: InProcessStack, token: str = AUTH_TOKEN) -> None:
        created = stack.new_account()
        self.stack = stack
        self.account_id: str = created["account_id"]
        self.write: str = created["keys"]["write"]
        self.read: str = created["keys"]["read"]
        self.webhook_url = connect_twilio(stack.api.request, self.write, token)

    def post(
        self, params: dict[str, str], token: str = AUTH_TOKEN, url: str | None = None
    ) -> tuple[int, Any]:
        """Twilio's POST of `params`, signed with `token` for `url` (the webhook URL)."""
        body, headers = signed_callback(url or self.webhook_url, params, token)
        return self._send(body, headers)

    def _send(self, body: str, headers: dict[str, str]) -> tuple[int, Any]:
        response = self.stack.api.response(
            "POST", path_of(self.webhook_url), raw=body, headers=headers
        )
        return response.status_code, response.get_json()

    def calls(self) -> list[dict[str, Any]]:
        return [
            item["body"]
            for item in self.stack.items()
            if item.get("kind") == "event" and item["account_id"] == self.account_id
        ]

    def counted(self) -> dict[str, int]:
        self.stack.evaluate_pending()
        status, report = self.stack.api.request("GET", "/v1/reports/goals", self.read)
        assert status == 200, report
        return {goal["name"]: goal["counted"] for goal in report["goals"]}


@pytest.fixture
def account(stack: InProcessStack) -> Account:
    return Account(stack)


def test_connecting_answers_the_url_to_paste_and_never_the_token(
    stack: InProcessStack, account: Account
) -> None:
    assert account.webhook_url == (
        f"http://localhost/v1/integrations/twilio/{account.account_id}/calls"
    )
    status, again = stack.api.request(
        "PUT", "/v1/integrations/twilio", account.write, {"auth_token": OTHER_TOKEN}
    )
    assert (status, again) == (200, {"webhook_url": account.webhook_url})
    answers = [again, stack.api.request("GET", "/v1/account", account.write)[1]]
    assert AUTH_TOKEN not in str(answers) and OTHER_TOKEN not in str(answers)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"auth_token": "AC" + "0" * 32}, "String should match pattern"),
        ({}, "is required"),
        ({"auth_token": AUTH_TOKEN, "url": "x"}, "unknown field"),
    ],
)
def test_a_token_that_is_not_a_twilio_auth_token_is_refused(
    stack: InProcessStack, account: Account, body: dict[str, str], reason: str
) -> None:
    status, answer = stack.api.request("PUT", "/v1/integrations/twilio", account.write, body)
    assert status == 400, answer
    assert reason in answer["error"]["fields"][0]["reason"]


def test_a_call_is_stored_once_from_its_final_callback(account: Account) -> None:
    sid, answered = call_sid("once"), datetime.now(UTC) - timedelta(minutes=5)
    for sequence, status in enumerate(("initiated", "ringing", "in-progress")):
        posted = account.post(status_callback(sid, status, sequence=sequence))
        assert posted == (200, {"accepted": [], "duplicates": []})
    assert account.calls() == []
    final = completed_call(sid, 95, answered, sequence=3)
    assert account.post(final) == (200, {"accepted": [f"twilio-{sid}"], "duplicates": []})
    # Twilio retries a callback it got no quick answer to: the same call, a duplicate.
    assert account.post(final) == (200, {"accepted": [], "duplicates": [f"twilio-{sid}"]})
    (call,) = account.calls()
    assert call["call_id"] == sid
    assert call["tracking_number"] == "+442079460000"
    assert call["caller_masked"] == "+44*******567" and "caller_number" not in call
    assert (call["connected"], call["bridged_seconds"], call["outcome"]) == (True, 95, "answered")
    assert call["occurred_at"] == answered.replace(microsecond=0).strftime(
        "%Y-%m-%dT%H:%M:%S.000000Z"
    )
    assert account.counted()["Call Qualified"] == 1


def test_a_forwarded_call_counts_the_time_bridged_to_the_business(account: Account) -> None:
    # <Dial>: the caller heard a greeting first; DialCallDuration is the time connected.
    params = completed_call(call_sid("dialled"), 70, datetime.now(UTC), dial_duration=45)
    assert account.post(params)[0] == 200
    (call,) = account.calls()
    assert call["bridged_seconds"] == 45
    counted = account.counted()
    assert (counted["Call Qualified"], counted["Call Connected"]) == (0, 1)


@pytest.mark.parametrize("status", ["busy", "no-answer", "failed", "canceled"])
def test_a_call_that_was_not_answered_keeps_how_it_ended(account: Account, status: str) -> None:
    assert account.post(status_callback(call_sid(status), status, duration=0))[0] == 200
    (call,) = account.calls()
    assert (call["connected"], call["bridged_seconds"], call["outcome"]) == (False, 0, status)
    assert account.counted()["Call Not Connected"] == 1


def test_calls_twilio_placed_are_not_tracked(account: Account) -> None:
    for direction in ("outbound-api", "outbound-dial"):
        params = completed_call(call_sid(direction), 80, datetime.now(UTC), direction=direction)
        assert account.post(params) == (200, {"accepted": [], "duplicates": []})
    assert account.calls() == []


def _unsigned_attempts(account: Account, other: Account) -> list[tuple[str, tuple[int, Any]]]:
    params = completed_call(call_sid("forged"), 90, datetime.now(UTC))
    body, headers = signed_callback(account.webhook_url, params)
    tampered = body.replace("CallDuration=90", "CallDuration=900")
    replayed = signed_callback(other.webhook_url, params, OTHER_TOKEN)
    return [
        ("no signature", account._send(body, {"Content-Type": headers["Content-Type"]})),
        ("another token", account.post(params, token=OTHER_TOKEN)),
        ("a changed parameter", account._send(tampered, headers)),
        ("another URL", account.post(params, url=account.webhook_url + "/x")),
        # Another account's valid callback, replayed to this account's URL.
        ("another account's callback", account._send(*replayed)),
    ]


def test_a_callback_that_does_not_verify_is_403_and_stores_nothing(
    stack: InProcessStack, account: Account
) -> None:
    other = Account(stack, OTHER_TOKEN)
    # The other account's own callbacks verify at its own URL.
    assert (
        other.post(completed_call(call_sid("other"), 9, datetime.now(UTC)), OTHER_TOKEN)[0] == 200
    )
    before = stack.items()
    for what, (status, answer) in _unsigned_attempts(account, other):
        assert status == 403, (what, answer)
        assert answer["error"]["code"] == "forbidden", what
    assert stack.items() == before


def test_an_unknown_account_or_one_without_twilio_gets_the_same_403(
    stack: InProcessStack, account: Account
) -> None:
    unconnected = stack.new_account()["account_id"]
    params = completed_call(call_sid("nowhere"), 90, datetime.now(UTC))
    answers = []
    for account_id in (unconnected, "acc_does_not_exist"):
        url = account.webhook_url.replace(account.account_id, account_id)
        body, headers = signed_callback(url, params)
        response = stack.api.response("POST", path_of(url), raw=body, headers=headers)
        answers.append((response.status_code, response.get_json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403


def test_a_rotated_token_is_the_only_one_accepted(stack: InProcessStack, account: Account) -> None:
    connect_twilio(stack.api.request, account.write, OTHER_TOKEN)
    params = completed_call(call_sid("rotated"), 90, datetime.now(UTC))
    assert account.post(params)[0] == 403
    assert account.post(params, token=OTHER_TOKEN)[0] == 200


def test_a_signature_made_with_the_default_port_verifies(account: Account) -> None:
    # Twilio's own validator accepts either form: how Twilio writes the URL has varied.
    with_port = account.webhook_url.replace("http://localhost/", "http://localhost:80/")
    params = completed_call(call_sid("port"), 90, datetime.now(UTC))
    assert account.post(params, url=with_port)[0] == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"CallStatus": "ringing-ish"}, "CallStatus"),
        ({"To": "sip:front-desk@example.com"}, "To"),
        ({"CallDuration": "-5"}, "CallDuration"),
        ({"Timestamp": "yesterday"}, "Timestamp"),
        ({"CallSid": "not-a-call"}, "CallSid"),
    ],
)
def test_a_signed_callback_with_an_invalid_field_is_400_naming_it(
    account: Account, change: dict[str, str], field: str
) -> None:
    params = completed_call(call_sid("invalid"), 90, datetime.now(UTC)) | change
    status, answer = account.post(params)
    assert status == 400, answer
    assert [problem["field"] for problem in answer["error"]["fields"]] == [field]
    assert account.calls() == []


def test_withheld_callers_are_calls_without_a_caller_never_one_shared_caller(
    stack: InProcessStack, account: Account
) -> None:
    stack.add_goals(
        account.write,
        [
            {
                "name": "One call per caller",
                "rule": {"kind": "call", "connected": True},
                "dedup": {"keys": ["caller"], "window_days": None},
            }
        ],
    )
    now = datetime.now(UTC)
    for n, caller in enumerate(WITHHELD):
        params = completed_call(call_sid(f"withheld-{n}"), 30, now, caller=caller)
        assert account.post(params)[0] == 200, caller
    # A phone system posting JSON says so its own way; Goalkeeper understands the same.
    status, answer = stack.api.request(
        "POST",
        "/v1/events",
        account.write,
        {"type": "call", "call_id": "json-1", "caller_number": "private", "connected": True},
    )
    assert status == 202, answer
    calls = account.calls()
    assert len(calls) == len(WITHHELD) + 1
    assert not [call for call in calls if "caller_hash" in call or "caller_masked" in call]
    assert account.counted()["One call per caller"] == len(WITHHELD) + 1
    # A caller who shows their number twice is still one caller.
    for n in (1, 2):
        assert account.post(completed_call(call_sid(f"shown-{n}"), 30, now))[0] == 200
    assert account.counted()["One call per caller"] == len(WITHHELD) + 2


MISSED = {"name": "Missed call", "converting": False}
MISSED_RULE = {"kind": "call", "outcomes": ["busy", "no-answer", "canceled"]}


def test_call_goals_match_on_how_the_call_ended(stack: InProcessStack, account: Account) -> None:
    stack.add_goals(account.write, [MISSED | {"rule": MISSED_RULE}])
    now = datetime.now(UTC)
    for status in ("busy", "no-answer", "failed"):
        assert account.post(status_callback(call_sid(status), status, duration=0))[0] == 200
    assert account.post(completed_call(call_sid("answered"), 90, now))[0] == 200
    json_calls = [
        {"type": "call", "call_id": "j-1", "connected": False, "outcome": "canceled"},
        # No outcome sent: not connected says nothing of how it ended.
        {"type": "call", "call_id": "j-2", "connected": False},
    ]
    stack.send(account.write, json_calls)
    counted = account.counted()
    assert counted["Missed call"] == 3  # busy, no-answer, canceled
    assert counted["Call Not Connected"] == 5


def test_a_dry_run_of_an_outcome_goal_finds_the_calls_it_matches(
    stack: InProcessStack, account: Account
) -> None:
    for status in ("busy", "completed"):
        assert account.post(status_callback(call_sid(status), status, duration=20))[0] == 200
    status, answer = stack.api.request(
        "POST", "/v1/goals/dry-run", account.write, {"goal": MISSED | {"rule": MISSED_RULE}}
    )
    assert status == 200, answer
    assert (answer["examined"], answer["matched"]) == (2, 1)


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ({"connected": True, "outcomes": ["busy"]}, "must include answered"),
        ({"connected": False, "outcomes": ["answered"]}, "cannot be only answered"),
        ({"min_bridged_seconds": 30, "outcomes": ["no-answer"]}, "must include answered"),
        ({"outcomes": ["busy", "busy"]}, "lists an outcome twice"),
        ({"outcomes": []}, "at least 1 item"),
        ({"outcomes": ["voicemail"]}, "'answered'"),
    ],
)
def test_an_outcome_condition_no_call_can_meet_is_refused(
    stack: InProcessStack, account: Account, rule: dict[str, Any], reason: str
) -> None:
    spec = {"name": "x", "rule": {"kind": "call"} | rule}
    status, answer = stack.api.request("POST", "/v1/goals", account.write, spec)
    assert status == 400, answer
    (problem,) = answer["error"]["fields"]
    assert problem["field"].startswith("rule.outcomes"), problem
    assert reason in problem["reason"], problem


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"connected": True, "outcome": "busy"}, "events[0].outcome"),
        ({"connected": False, "outcome": "answered"}, "events[0].outcome"),
        ({"connected": False, "outcome": "hung-up"}, "events[0].outcome"),
    ],
)
def test_a_json_call_whose_outcome_contradicts_it_is_refused(
    stack: InProcessStack, account: Account, call: dict[str, Any], field: str
) -> None:
    body = {"type": "call", "call_id": "c-1"} | call
    status, answer = stack.api.request("POST", "/v1/events", account.write, body)
    assert status == 400, answer
    assert [problem["field"] for problem in answer["error"]["fields"]] == [field]
    assert account.calls() == []


def test_a_call_is_its_first_report_a_later_one_is_a_duplicate(account: Account) -> None:
    sid = call_sid("changed its mind")
    assert account.post(completed_call(sid, 90, datetime.now(UTC)))[0] == 200
    later = account.post(status_callback(sid, "busy", duration=0))
    assert later == (200, {"accepted": [], "duplicates": [f"twilio-{sid}"]})
    (call,) = account.calls()
    assert call["outcome"] == "answered"


def _post_raw(account: Account, params: dict[str, str]) -> Any:
    body, headers = signed_callback(account.webhook_url, params)
    return account.stack.api.response(
        "POST", path_of(account.webhook_url), raw=body, headers=headers
    )


@pytest.mark.parametrize(
    ("dial_status", "dialled", "outcome", "goal"),
    [
        ("no-answer", 0, "no-answer", "Call Not Connected"),
        ("busy", 0, "busy", "Call Not Connected"),
        ("completed", 80, "answered", "Call Qualified"),
    ],
)
def test_a_forward_to_the_business_is_judged_by_how_the_dial_ended(
    account: Account, dial_status: str, dialled: int, outcome: str, goal: str
) -> None:
    """Twilio answers a forwarded call itself, so its final status is "completed"
    whether the business picked up or not: the <Dial>'s action says which."""
    sid, answered = call_sid(dial_status), datetime.now(UTC) - timedelta(minutes=2)
    response = _post_raw(account, dial_action(sid, dial_status, dialled))
    # Twilio runs a <Dial> action's answer as TwiML: an empty one ends the call quietly.
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True).endswith("<Response/>")
    final = completed_call(sid, dialled + 20, answered)
    assert account.post(final) == (200, {"accepted": [], "duplicates": [f"twilio-{sid}"]})
    (call,) = account.calls()
    assert (call["outcome"], call["bridged_seconds"]) == (outcome, dialled)
    counted = account.counted()
    assert counted[goal] == 1
    assert sum(counted.values()) == 1


@pytest.mark.parametrize(
    ("domain", "called_path", "base"),
    [
        # API Gateway's own domain: the stage precedes the route.
        ("abc123.execute-api.eu-west-1.amazonaws.com", "/prod", "/prod"),
        # A custom domain, mapped at a base path, and at its root.
        ("calls.example.com", "/tracking", "/tracking"),
        ("calls.example.com", "", ""),
    ],
)
def test_unconfigured_the_webhook_url_is_the_one_api_gateway_was_called_at(
    stack: InProcessStack,
    monkeypatch: pytest.MonkeyPatch,
    domain: str,
    called_path: str,
    base: str,
) -> None:
    from werkzeug.test import EnvironBuilder

    from goalkeeper.settings import get_settings
    from goalkeeper_cli.local_stack.gateway import proxy_event
    from goalkeeper_cli.local_stack.template import api_routes, load_template

    created = stack.new_account()
    monkeypatch.delenv("GOALKEEPER_PUBLIC_API_URL")
    get_settings.cache_clear()
    route = next(r for r in api_routes(load_template()) if r.path == "/v1/integrations/twilio")
    request = EnvironBuilder(
        path=route.path,
        method="PUT",
        headers={"Host": domain, "x-api-key": created["keys"]["write"]},
        json={"auth_token": AUTH_TOKEN},
    ).get_request()
    event = proxy_event(request, route, {})
    event["requestContext"] |= {"domainName": domain, "path": called_path + route.path}
    answer = stack.functions.get(route.function, route.code_uri, route.handler).invoke(event)
    assert answer["statusCode"] == 200, answer
    expected = f"https://{domain}{base}/v1/integrations/twilio/{created['account_id']}/calls"
    assert answer["body"] == f'{{"webhook_url":"{expected}"}}'
