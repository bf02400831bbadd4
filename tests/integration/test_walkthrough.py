"""The README walk-through, in process: account, a qualified call, the goals report."""

from support.stack import InProcessStack

CALL = {
    "event_id": "call-0001",
    "type": "call",
    "occurred_at": "2026-11-20T10:15:00Z",
    "visitor_id": "v-1001",
    "call_id": "CA-0001",
    "caller_number": "+44 20 7123 4567",
    "connected": True,
    "bridged_seconds": 75,
    "attribution": {"source": "google", "medium": "cpc", "campaign": "winter-sale"},
}
DEFAULT_GOAL_NAMES = ("Call Qualified", "Call Connected", "Call Not Connected")
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def _row(report: dict, name: str) -> dict:
    return next(row for row in report["goals"] if row["name"] == name)


def test_new_account_starts_with_the_three_default_call_goals(stack: InProcessStack) -> None:
    account = stack.new_account()
    status, body = stack.api.request("GET", "/v1/goals", account["keys"]["read"])
    assert status == 200
    names = [goal["name"] for goal in body["goals"]]
    assert tuple(names) == DEFAULT_GOAL_NAMES


def test_a_75_second_call_counts_once_as_call_qualified_even_when_resent(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]

    status, body = stack.api.request("POST", "/v1/events", write, CALL)
    assert (status, body) == (202, {"accepted": ["call-0001"], "duplicates": []})
    stack.evaluate_pending()
    status, report = stack.api.request("GET", "/v1/reports/goals", read, query=NOVEMBER)
    assert status == 200
    assert _row(report, "Call Qualified")["counted"] == 1
    assert _row(report, "Call Connected")["counted"] == 0
    assert _row(report, "Call Not Connected")["counted"] == 0

    status, body = stack.api.request("POST", "/v1/events", write, CALL)
    assert (status, body) == (202, {"accepted": [], "duplicates": ["call-0001"]})
    stack.evaluate_pending()
    _, report = stack.api.request("GET", "/v1/reports/goals", read, query=NOVEMBER)
    assert _row(report, "Call Qualified")["counted"] == 1
    assert _row(report, "Call Qualified")["void"] == 0


def test_short_and_unanswered_calls_reach_their_goals(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    short = CALL | {"event_id": "call-2", "call_id": "CA-2", "bridged_seconds": 59}
    missed = CALL | {"event_id": "call-3", "call_id": "CA-3", "connected": False}
    missed["bridged_seconds"] = 0
    status, _ = stack.api.request("POST", "/v1/events", write, {"events": [short, missed]})
    assert status == 202
    stack.evaluate_pending()
    _, report = stack.api.request("GET", "/v1/reports/goals", read, query=NOVEMBER)
    counts = [_row(report, name)["counted"] for name in DEFAULT_GOAL_NAMES]
    assert counts == [0, 1, 1]
    assert _row(report, "Call Not Connected")["converting"] is False
