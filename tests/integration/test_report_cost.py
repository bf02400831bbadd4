"""A report's cost is fixed by its date range and goal library, not by how much data
is stored: a goal's 30-day time series makes the same requests, reads the same keys
and costs the same read units at 1k events and many more; the 30-day goals report
makes the same requests and reads at most one counters item per day, shard and
(goal, or the day itself), however many events are behind them."""

import os

import pytest
from test_recount import load_more

from goalkeeper import runtime
from support.metering import Meter
from support.stack import InProcessStack

pytestmark = pytest.mark.long

SMALL = 1000
LARGE = int(os.environ.get("GOALKEEPER_SCALE_EVENTS", "2000"))  # 50000 for the full claim
RANGE = {"from": "2026-10-22", "to": "2026-11-20"}  # 30 days


def _cost(stack: InProcessStack, read: str, path: str) -> tuple:
    meter = Meter().attach(runtime.dal().client)
    try:
        status, body = stack.api.request("GET", path, read, query=RANGE)
    finally:
        meter.detach(runtime.dal().client)
    assert status == 200, body
    return dict(meter.requests), meter.keys_read, meter.read_units


def test_report_cost_does_not_grow_with_stored_events(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    load_more(stack, write, seed=11, events=SMALL)
    goal_id = stack.api.request("GET", "/v1/goals", read)[1]["goals"][0]["goal_id"]
    paths = ("/v1/reports/goals", f"/v1/reports/goals/{goal_id}/timeseries")
    before = [_cost(stack, read, path) for path in paths]
    counted_before = stack.api.request("GET", paths[0], read, query=RANGE)[1]

    load_more(stack, write, seed=12, events=LARGE - SMALL)
    after = [_cost(stack, read, path) for path in paths]
    counted_after = stack.api.request("GET", paths[0], read, query=RANGE)[1]

    assert sum(g["counted"] for g in counted_after["goals"]) > sum(
        g["counted"] for g in counted_before["goals"]
    )  # the reports really cover more data now
    assert after[1] == before[1]
    assert before[1][1] >= 30 * 4  # every day of the range, every counter shard
    goals = len(counted_after["goals"])
    assert after[0][0] == before[0][0]
    # the goal library (one Query) and, per shard, the day and goal-day items of the range
    assert after[0][1] <= goals + 30 * 4 * (1 + goals)


# -- attribution: bounded by a page, whatever the number of labels (issue 12, 10) ---

ATTRIBUTION_PAGE_ITEMS = 1000  # the README's page size: counter items read per request at most


def _calls(write: str, stack: InProcessStack, campaigns: range) -> None:
    """One qualified call (every one counts) per campaign, on 2026-11-10."""
    events = [
        {
            "event_id": f"call-{n}",
            "type": "call",
            "call_id": f"call-{n}",
            "connected": True,
            "bridged_seconds": 90,
            "occurred_at": "2026-11-10T10:00:00Z",
            "attribution": {"source": "google", "campaign": f"c-{n:05d}"},
        }
        for n in campaigns
    ]
    for start in range(0, len(events), 100):
        batch = {"events": events[start : start + 100]}
        assert stack.api.request("POST", "/v1/events", write, batch)[0] == 202
    stack.evaluate_pending()


def _attribution_pages(
    stack: InProcessStack, read: str, span: dict[str, str] = RANGE
) -> tuple[list[int], dict[str, int]]:
    """Follows the cursor to the end: items read by each request, and the counts per
    campaign of all the pages together."""
    items_read: list[int] = []
    counted: dict[str, int] = {}
    query = span | {"dimension": "campaign"}
    while True:
        meter = Meter().attach(runtime.dal().client)
        try:
            status, page = stack.api.request("GET", "/v1/reports/attribution", read, query=query)
        finally:
            meter.detach(runtime.dal().client)
        assert status == 200, page
        items_read.append(meter.items_read)
        for row in page["rows"]:
            counted[row["campaign"]] = counted.get(row["campaign"], 0) + row["counted"]
        if page["next_cursor"] is None:
            return items_read, counted
        query = query | {"cursor": page["next_cursor"]}


def test_attribution_reads_at_most_a_page_per_request_whatever_the_number_of_campaigns(
    stack: InProcessStack,
) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    # What any such request reads besides counters (the key, the account, its goals).
    (overhead,), _ = _attribution_pages(stack, read, {"from": "2026-01-01", "to": "2026-01-01"})
    bound = overhead + ATTRIBUTION_PAGE_ITEMS

    _calls(write, stack, range(30))
    few_reads, few = _attribution_pages(stack, read)
    _calls(write, stack, range(30, 1100))
    many_reads, many = _attribution_pages(stack, read)

    assert few == {f"c-{n:05d}": 1 for n in range(30)}
    assert many == {f"c-{n:05d}": 1 for n in range(1100)}  # every campaign, counted once
    assert max(few_reads) <= bound
    assert max(many_reads) <= bound  # 1,100 counters, still at most a page per request
    assert len(many_reads) >= 2
