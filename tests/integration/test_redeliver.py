"""Redelivery changes nothing (issue 7): Lambda delivers stream records at least once.

The same randomized workload as the fault-injection test goes to two accounts:
one evaluated normally, one whose every stream batch is delivered three times.
Their conversions and counters must be identical. Then the whole stream is
delivered again from its first record, and no decision, claim, counter or
marker of either account may change.
"""

from typing import Any

import pytest

from support.faults import REPORT_DAYS, Run, evaluation_poller, outcome, workload
from support.funnel_recount import assert_funnels_equal_a_recount
from support.stack import InProcessStack

pytestmark = pytest.mark.long

EVENTS = 80
SEED = 11
DECISION_KINDS = {"conversion", "claim", "aggregate", "attribution", "visitor_marker", "progress"}


class Repeating:
    """Delivers every batch `times` times to the function, answering with the last result."""

    def __init__(self, function: Any, times: int) -> None:
        self.function = function
        self.times = times
        self.batches = 0

    def invoke(self, event: dict[str, Any]) -> Any:
        self.batches += 1
        result = None
        for _ in range(self.times):
            result = self.function.invoke(event)
        return result


def _add_steps(run: Run) -> str:
    """A sale that counts only within 30 days after the thank-you page, and the funnel
    thank-you page -> big sale -> that sale (30 days). Returns the funnel's id."""
    stack = run.stack
    _, library = stack.api.request("GET", "/v1/goals", run.write)
    ids = {goal["name"]: goal["goal_id"] for goal in library["goals"]}
    spec = {
        "name": "Sale after thanks",
        "rule": {"kind": "transaction"},
        "dedup": {"keys": []},
        "requires": {"goal_id": ids["Thank-you page"], "within_days": 30},
    }
    (after,) = stack.add_goals(run.write, [spec])
    steps = [ids["Thank-you page"], ids["Big sale"], after]
    body = {"name": "Checkout", "steps": steps, "window_days": 30}
    status, funnel = stack.api.request("POST", "/v1/funnels", run.write, body)
    assert status == 201, funnel
    return str(funnel["funnel_id"])


def _funnel_report(run: Run, funnel_id: str) -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    span = {"from": str(today - timedelta(days=REPORT_DAYS)), "to": str(today)}
    status, report = run.stack.api.request(
        "GET", f"/v1/reports/funnels/{funnel_id}", run.read, query=span
    )
    assert status == 200, report
    return [{k: v for k, v in step.items() if k != "goal_id"} for step in report["steps"]]


def _decision_items(stack: InProcessStack) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (item["pk"], item["sk"]): item
        for item in stack.items()
        if item.get("kind") in DECISION_KINDS or "#AGG#" in item["pk"]
    }


@pytest.mark.usefixtures("ingest_in_order")
def test_redelivering_every_batch_three_times_changes_nothing(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = workload(SEED, EVENTS)
    poller = evaluation_poller(stack)
    once = Run(stack)
    once_funnel = _add_steps(once)
    for number, batch in enumerate(requests):
        once.send(number, batch)
    once.evaluate(poller)

    repeating = Repeating(poller.function, 3)
    poller.function = repeating
    thrice = Run(stack)
    thrice_funnel = _add_steps(thrice)
    for number, batch in enumerate(requests):
        thrice.send(number, batch)
    thrice.evaluate(poller)

    assert repeating.batches > 0
    expected, actual = outcome(stack, once), outcome(stack, thrice)
    assert len(expected["conversions"]) > EVENTS // 2
    assert actual["conversions"] == expected["conversions"]
    assert actual["counters"] == expected["counters"]
    assert actual["events"] == expected["events"]
    once_report = _funnel_report(once, once_funnel)
    assert _funnel_report(thrice, thrice_funnel) == once_report
    assert once_report[1]["converted"] > 0
    assert_funnels_equal_a_recount(stack.items())

    # The whole stream once more, from its first record: nothing of either account moves.
    before = _decision_items(stack)
    replay = evaluation_poller(stack, function=poller.function.function)
    Run.evaluate(once, replay)
    assert _decision_items(stack) == before
    assert replay.dead_letters.read() == []


def test_redelivered_event_id_within_one_batch_is_accepted_once_then_a_duplicate(
    stack: InProcessStack,
) -> None:
    """Found by the fuzz tests: the second copy used to be reported accepted too,
    because it met an item written by its own request."""
    write = stack.new_account()["keys"]["write"]
    event = {"event_id": "e-1", "type": "lead", "lead_id": "l-1", "visitor_id": "v-1"}
    status, body = stack.api.request("POST", "/v1/events", write, {"events": [event, event]})
    assert (status, body) == (202, {"accepted": ["e-1"], "duplicates": ["e-1"]})
