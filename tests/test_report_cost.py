"""A report's cost is fixed by its date range and goal library, not by how much data
is stored: a goal's 30-day time series makes the same requests, reads the same keys
and costs the same read units at 1k events and many more; the 30-day goals report
makes the same requests and reads at most one counters item per day, shard and
(goal, or the day itself), however many events are behind them."""

import os

from test_recount import _load_more

from conftest import InProcessStack
from goalkeeper import runtime
from goalkeeper.local.metering import Meter

SMALL = 1000
LARGE = int(os.environ.get("GOALKEEPER_SCALE_EVENTS", "2000"))  # 50000 for the full claim
RANGE = {"from": "2026-10-22", "to": "2026-11-20"}  # 30 days


def _cost(stack: InProcessStack, read: str, path: str) -> tuple:
    meter = Meter().attach(runtime.store().client)
    try:
        status, body = stack.api.request("GET", path, read, query=RANGE)
    finally:
        meter.detach(runtime.store().client)
    assert status == 200, body
    return dict(meter.requests), meter.keys_read, meter.read_units


def test_report_cost_does_not_grow_with_stored_events(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    _load_more(stack, write, seed=11, events=SMALL)
    goal_id = stack.api.request("GET", "/v1/goals", read)[1]["goals"][0]["goal_id"]
    paths = ("/v1/reports/goals", f"/v1/reports/goals/{goal_id}/timeseries")
    before = [_cost(stack, read, path) for path in paths]
    counted_before = stack.api.request("GET", paths[0], read, query=RANGE)[1]

    _load_more(stack, write, seed=12, events=LARGE - SMALL)
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
