"""The README walk-through over HTTP against `goalkeeper serve`, as a user runs it."""

import threading
import time
from collections.abc import Iterator

import pytest

from support.served import ServedStack

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


@pytest.mark.server
def test_ctrl_c_stops_the_stack_cleanly(served: ServedStack) -> None:
    code, output = served.stop()
    assert code == 0
    assert "stopped" in output
    assert "Traceback" not in output
