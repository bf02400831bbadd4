"""The README walk-through over HTTP against `goalkeeper serve`, as a user runs it
(funnels, and the value ledger with its Google Ads files, too)."""

import csv
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from goalkeeper.ads_export import ADJUSTMENT_HEADERS, CONVERSION_HEADERS
from goalkeeper.steps import bucket_value, seconds_bucket
from goalkeeper_cli import commands
from support.served import ServedStack
from support.twilio_calls import (
    call_sid,
    completed_call,
    connect_twilio,
    post_callback,
    status_callback,
)

pytestmark = pytest.mark.long

ADMIN = "e2e-admin-key"
CALL = {
    "event_id": "call-0001",
    "type": "call",
    "occurred_at": "2026-11-20T10:15:00Z",
    "visitor_id": "v-1001",
    "call_id": "CA-0001",
    "caller_number": "+442071234567",
    "tracking_number": "+442079460000",
    "connected": True,
    "bridged_seconds": 75,
}
REPORT = "/v1/reports/goals?from=2026-11-01&to=2026-11-30"
# How long a backfill of a few events may take on a loaded 2-core machine.
JOB_SECONDS = 60


@pytest.fixture(scope="module")
def served(serve_engine: str) -> Iterator[ServedStack]:
    stack = ServedStack(ADMIN, ["--engine", serve_engine])
    yield stack
    if stack.process.poll() is None:
        stack.stop()


def qualified_calls(served: ServedStack, read_key: str) -> int:
    status, report = served.request("GET", REPORT, read_key)
    assert status == 200, report
    return next(row["counted"] for row in report["goals"] if row["name"] == "Call Qualified")


def wait_for_qualified(served: ServedStack, read_key: str, expected: int) -> int:
    deadline = time.monotonic() + 10
    while (count := qualified_calls(served, read_key)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


@pytest.mark.server
def test_readme_walkthrough_counts_a_qualified_call_once(served: ServedStack) -> None:
    assert any(ADMIN in line for line in served.banner)
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write, read = account["keys"]["write"], account["keys"]["read"]

    status, body = served.request("POST", "/v1/events", write, CALL)
    assert (status, body) == (202, {"accepted": ["call-0001"], "duplicates": []})
    assert wait_for_qualified(served, read, 1) == 1

    status, body = served.request("POST", "/v1/events", write, CALL)
    assert (status, body) == (202, {"accepted": [], "duplicates": ["call-0001"]})
    time.sleep(1.0)  # give a wrongly re-evaluated duplicate time to show up
    assert qualified_calls(served, read) == 1


@pytest.mark.server
def test_concurrent_requests_each_get_their_own_answer_and_every_event_is_stored(
    served: ServedStack,
) -> None:
    """Requests at once must not see each other's bodies (Powertools keeps the current
    request in a class attribute; the local API runs one handler at a time)."""
    write = served.request("POST", "/v1/accounts", ADMIN, {})[1]["keys"]["write"]
    answers: dict[str, tuple[int, dict]] = {}
    barrier = threading.Barrier(24)

    def send(number: int) -> None:
        event = CALL | {"event_id": f"at-once-{number}", "call_id": f"at-once-{number}"}
        barrier.wait()
        answers[event["event_id"]] = served.request("POST", "/v1/events", write, event)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == {
        event_id: (202, {"accepted": [event_id], "duplicates": []}) for event_id in answers
    }
    assert len(answers) == 24
    resent = [CALL | {"event_id": event_id, "call_id": event_id} for event_id in answers]
    status, body = served.request("POST", "/v1/events", write, {"events": resent})
    assert (status, sorted(body["duplicates"])) == (202, sorted(answers))


# --- a three-step funnel over HTTP (issue 19) -------------------------------------------
def _at(seconds: float) -> str:
    return (datetime(2026, 11, 10, 10, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def _page(visitor: str, path: str, seconds: float, n: int = 0) -> dict:
    url = f"https://shop.example/{path}"
    event_id = f"{visitor}-{path}-{n}"
    return {"event_id": event_id, "type": "page_view", "visitor_id": visitor, "url": url} | {
        "occurred_at": _at(seconds)
    }


def _form(visitor: str, seconds: float, name: str = "form", n: int = 0) -> dict:
    return {
        "event_id": f"{visitor}-{name}-{n}",
        "type": "custom_trigger",
        "name": name,
        "visitor_id": visitor,
        "occurred_at": _at(seconds),
    }


def _decided(served: ServedStack, read: str, expected: dict[str, int]) -> dict[str, int]:
    """Wait until each named goal has decided this many conversions (counted + void)."""
    deadline = time.monotonic() + 15
    while True:
        status, report = served.request("GET", REPORT, read)
        assert status == 200, report
        found = {row["name"]: row["counted"] + row["void"] for row in report["goals"]}
        seen = {name: found.get(name, 0) for name in expected}
        if seen == expected or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


@pytest.mark.server
def test_a_three_step_funnel_and_a_prerequisite_report_hand_counted_numbers(
    served: ServedStack,
) -> None:
    """Landing page -> form -> thank-you page, 7 days. Sent step by step (each wave
    decided before the next is sent), as visitors do them: v1 and v6 do all three, v2
    skips the form, v3 fills it 8 days later (outside the window), v4 repeats steps,
    v5 fills the form without landing. A purchase requires the form within 2 days."""
    account = served.request("POST", "/v1/accounts", ADMIN, {})[1]
    write, read = account["keys"]["write"], account["keys"]["read"]
    ids = []
    for spec in (
        {
            "name": "Landing",
            "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/landing"},
        },
        {"name": "Form", "rule": {"kind": "custom_trigger", "name": "form"}},
        {
            "name": "Thanks",
            "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/thanks"},
        },
    ):
        status, goal = served.request("POST", "/v1/goals", write, spec)
        assert status == 201, goal
        ids.append(goal["goal_id"])
    purchase = {
        "name": "Purchase",
        "rule": {"kind": "custom_trigger", "name": "buy"},
        "requires": {"goal_id": ids[1], "within_days": 2},
    }
    assert served.request("POST", "/v1/goals", write, purchase)[0] == 201
    body = {"name": "Checkout", "steps": ids, "window_days": 7}
    status, funnel = served.request("POST", "/v1/funnels", write, body)
    assert status == 201, funnel
    day = 86400
    waves = [
        (
            {"Landing": 6},
            [_page(v, "landing", 0) for v in ("v1", "v2", "v3", "v4", "v6")]
            + [_page("v4", "landing", 60, 1)],
        ),
        (
            {"Form": 6},
            [
                _form("v1", 300),
                _form("v3", 8 * day),
                _form("v4", 7200),
                _form("v4", 7300, n=1),
                _form("v5", 0),
                _form("v6", 1200),
            ],
        ),
        (
            {"Thanks": 4, "Purchase": 2},
            [
                _page("v1", "thanks", 360),
                _page("v2", "thanks", 3600),
                _page("v3", "thanks", 8 * day + 60),
                _page("v6", "thanks", 3000),
                _form("v1", day, "buy"),
                _form("v2", 0, "buy"),
            ],
        ),
    ]
    for expected, events in waves:
        status, answer = served.request("POST", "/v1/events", write, {"events": events})
        assert status == 202, answer
        assert _decided(served, read, expected) == expected
    path = f"/v1/reports/funnels/{funnel['funnel_id']}?from=2026-11-01&to=2026-11-30"
    status, report = served.request("GET", path, read)
    assert status == 200, report
    assert [(s["entered"], s["converted"], s["drop_off"]) for s in report["steps"]] == [
        (5, 5, 0),  # v1 v2 v3 v4 v6 landed (v4's second landing is void)
        (5, 3, 2),  # v1 v4 v6 filled the form within 7 days of landing; v2 and v3 did not
        (3, 2, 1),  # v1 v6 reached the thank-you page after the form; v4 did not
    ]
    # Medians: of 300, 1200, ~7200 s -> 1200; of 60, 1800 s -> 60 (the lower one), each
    # as its histogram bucket gives it (within 9%).
    medians = [s["median_seconds_to_convert"] for s in report["steps"]]
    assert medians == [None, bucket_value(seconds_bucket(1200)), bucket_value(seconds_bucket(60))]
    assert abs(medians[1] - 1200) <= 110 and abs(medians[2] - 60) <= 6
    status, trace = served.request("GET", "/v1/visitors/v2/trace", read)
    (void,) = [i for i in trace["items"] if i.get("goal_name") == "Purchase"]
    assert (void["status"], void["reason"].split(":")[0]) == ("void", "prerequisite not met")
    status, trace = served.request("GET", "/v1/visitors/v1/trace", read)
    (counted,) = [i for i in trace["items"] if i.get("goal_name") == "Purchase"]
    assert counted["status"] == "counted"

    # The same funnel created now, after those conversions, and backfilled: the same
    # steps and medians (README, "Funnels created later").
    status, later = served.request("POST", "/v1/funnels", write, body | {"name": "Later"})
    assert status == 201, later
    fill = f"/v1/funnels/{later['funnel_id']}/backfill"
    status, job = served.request("POST", fill, write, {"from": "2026-11-01"})
    assert status == 202, job
    deadline = time.monotonic() + JOB_SECONDS
    while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = served.request("GET", f"/v1/jobs/{job['job_id']}", read)[1]
    assert (job["status"], job["counted"]) == ("done", 10), job
    status, filled = served.request(
        "GET", path.replace(funnel["funnel_id"], later["funnel_id"]), read
    )
    assert filled["steps"] == report["steps"], filled


@pytest.mark.server
def test_a_call_twilio_reports_in_signed_callbacks_is_counted_once(served: ServedStack) -> None:
    """Twilio's side over HTTP: the webhook URL answered is the served stack's own, and
    callbacks signed for it by Twilio's RequestValidator count the call once."""
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write, read = account["keys"]["write"], account["keys"]["read"]
    webhook_url = connect_twilio(served.request, write)
    assert webhook_url == f"{served.base_url}/v1/integrations/twilio/{account['account_id']}/calls"
    sid = call_sid("e2e")
    answered = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    ringing = status_callback(sid, "ringing", at=answered - timedelta(seconds=8))
    assert post_callback(webhook_url, ringing)[0] == 200
    final = completed_call(sid, 95, answered)
    assert post_callback(webhook_url, final, auth_token="f" * 32)[0] == 403
    for _ in range(2):  # a retry is the same call
        assert post_callback(webhook_url, final)[0] == 200
    assert wait_for_qualified(served, read, 1) == 1
    time.sleep(1.0)  # give a wrongly stored second call time to be counted
    assert qualified_calls(served, read) == 1


# --- the value ledger (issue 20): a refund and a later value, and the Google Ads files ---

SALE = {
    "name": "Online sale",
    "rule": {"kind": "transaction"},
    "value": {"type": "percent_of_transaction", "percent": "100"},
}
LEDGER_RANGE = {"from": "2026-11-01", "to": "2026-11-30"}


def _sale(number: int, value: str) -> dict[str, Any]:
    return {
        "event_id": f"sale-{number}",
        "type": "transaction",
        "visitor_id": "ann",
        "occurred_at": f"2026-11-1{number}T09:30:00Z",
        "attribution": {"source": "google", "medium": "cpc", "click_id": f"gclid-{number}"},
        "transaction": {"value": value, "currency": "USD", "reference": f"order-{number}"},
    }


def _counted(served: ServedStack, read: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while True:
        status, trace = served.request("GET", "/v1/visitors/ann/trace", read)
        found = (
            [i for i in trace.get("items", []) if i["kind"] == "conversion"]
            if status == 200
            else []
        )
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, trace
            return found
        time.sleep(0.2)


@pytest.mark.server
def test_a_refund_and_a_later_value_reach_the_reports_and_the_google_ads_files(
    served: ServedStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account = served.request("POST", "/v1/accounts", ADMIN, {})[1]
    write, read = account["keys"]["write"], account["keys"]["read"]
    assert served.request("POST", "/v1/goals", write, SALE)[0] == 201
    events = {"events": [_sale(1, "120.00"), _sale(2, "80.00")]}
    assert served.request("POST", "/v1/events", write, events)[0] == 202
    first, second = sorted(_counted(served, read, 2), key=lambda c: c["event_id"])

    refund = {"adjustment_id": "refund-1", "type": "retract", "reason": "returned"}
    path = f"/v1/conversions/{first['conversion_id']}/adjustments"
    assert served.request("POST", path, write, refund)[0] == 201
    assert served.request("POST", path, write, refund)[0] == 200  # redelivered: the same
    later = {"adjustment_id": "won-2", "type": "restate", "value": "4000", "reason": "upsold"}
    path = f"/v1/conversions/{second['conversion_id']}/adjustments"
    assert served.request("POST", path, write, later)[0] == 201

    query = "&".join(f"{name}={value}" for name, value in LEDGER_RANGE.items())
    status, report = served.request("GET", f"/v1/reports/goals?{query}", read)
    assert status == 200, report
    row = next(r for r in report["goals"] if r["name"] == "Online sale")
    assert (row["counted"], row["retracted"]) == (2, 1)
    assert (row["value"], row["gross_value"]) == ({"USD": "4000.00"}, {"USD": "200.00"})

    api = ["--api", f"{served.base_url}/v1", "--key", read, "--out-dir", str(tmp_path)]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    dates = ["--from", LEDGER_RANGE["from"], "--to", LEDGER_RANGE["to"]]
    assert commands.main(["export", "google-ads", "--kind", "conversions", *dates, *api]) == 0
    conversions = list(csv.reader((tmp_path / "google-ads-conversions.csv").open()))
    assert conversions[0] == ["Parameters:TimeZone=UTC"]
    assert conversions[1] == list(CONVERSION_HEADERS)
    assert conversions[2:] == [
        ["gclid-1", "Online sale", "2026-11-11 09:30:00+0000", "120.00", "USD"],
        ["gclid-2", "Online sale", "2026-11-12 09:30:00+0000", "80.00", "USD"],
    ]
    # Adjustments are listed by the day they were made: today.
    assert (
        commands.main(["export", "google-ads", "--kind", "adjustments", "--from", today, *api]) == 0
    )
    adjustments = list(csv.reader((tmp_path / "google-ads-adjustments.csv").open()))
    assert adjustments[1] == list(ADJUSTMENT_HEADERS)
    assert sorted((r[0], r[4], r[5], r[6]) for r in adjustments[2:]) == [
        ("gclid-1", "RETRACT", "", ""),
        ("gclid-2", "RESTATE", "4000.00", "USD"),
    ]
    assert "2 conversions" in capsys.readouterr().out


@pytest.mark.server
def test_racing_adjustments_of_one_conversion_each_apply_once(served: ServedStack) -> None:
    account = served.request("POST", "/v1/accounts", ADMIN, {})[1]
    write, read = account["keys"]["write"], account["keys"]["read"]
    assert served.request("POST", "/v1/goals", write, SALE)[0] == 201
    assert served.request("POST", "/v1/events", write, _sale(3, "100.00"))[0] == 202
    (conversion,) = _counted(served, read, 1)
    path = f"/v1/conversions/{conversion['conversion_id']}/adjustments"
    same = {"adjustment_id": "same", "type": "restate", "value": "90", "reason": "discount"}
    bodies = [same] * 4 + [
        {"adjustment_id": f"r{n}", "type": "restate", "value": str(10 * n), "reason": "race"}
        for n in range(1, 5)
    ]
    start = threading.Barrier(len(bodies))

    def send(body: dict[str, Any]) -> int:
        start.wait()
        status, answer = served.request("POST", path, write, body)
        assert status in (200, 201), answer
        return status

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        statuses = list(pool.map(send, bodies))
    assert statuses.count(201) == 5  # one per distinct id; the resent ones answered 200
    trace = served.request("GET", "/v1/visitors/ann/trace", read)[1]
    entry = next(i for i in trace["items"] if i.get("conversion_id") == conversion["conversion_id"])
    adjustments = [
        i
        for i in trace["items"]
        if i["kind"] == "adjustment" and i["conversion_id"] == conversion["conversion_id"]
    ]
    # Applied one after the other: each on the previous one's value, the last one holds.
    assert [a["sequence"] for a in adjustments] == [1, 2, 3, 4, 5]
    assert entry["adjustments"] == 5
    assert [a["previous_value"] for a in adjustments[1:]] == [a["value"] for a in adjustments[:-1]]
    assert entry["net_value"] == adjustments[-1]["value"]
    query = "&".join(f"{name}={value}" for name, value in LEDGER_RANGE.items())
    report = served.request("GET", f"/v1/reports/goals?{query}", read)[1]
    row = next(r for r in report["goals"] if r["name"] == "Online sale")
    assert row["value"] == {"USD": adjustments[-1]["value"]["amount"]}


@pytest.mark.server
def test_ctrl_c_stops_the_stack_cleanly(served: ServedStack) -> None:
    code, output = served.stop()
    assert code == 0
    assert "stopped" in output
    assert "Traceback" not in output
