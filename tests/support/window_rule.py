"""The window rule of de-duplication over random workloads in random arrival order
(issue 12): the goals, the events and the check that the integration test (in-process
stack) and the end-to-end race test (`goalkeeper serve`, parallel batches) share."""

import random
from datetime import datetime, timedelta
from typing import Any

T = datetime(2026, 9, 30, 12, 0, 0)


def at(days: float) -> str:
    return (T + timedelta(days=days)).isoformat() + "Z"


def trigger(event_id: str, name: str, days: float, visitor: str = "v1", **extra: Any) -> dict:
    return {
        "event_id": event_id,
        "type": "custom_trigger",
        "name": name,
        "occurred_at": at(days),
        "visitor_id": visitor,
    } | extra


GOAL_SPECS = [
    {"name": "3d-visitor", "trigger": "buy", "dedup": {"keys": ["visitor"], "window_days": 3}},
    {"name": "7d-goal", "trigger": "buy", "dedup": {"keys": ["visitor", "goal"], "window_days": 7}},
    {"name": "every", "trigger": "ping", "dedup": {"keys": []}},
    {"name": "forever-ref", "trigger": "buy", "dedup": {"keys": ["visitor", "transaction_ref"]}},
    {"name": "2d-visit", "trigger": "ping", "dedup": {"keys": ["visit"], "window_days": 2}},
]


def random_events(rng: random.Random, count: int) -> list[dict]:
    events = []
    for n in range(count):
        event = trigger(
            f"e{n}",
            rng.choice(["buy", "ping"]),
            -rng.uniform(0, 40),
            visitor=f"v{rng.randrange(6)}",
            visit_id=f"s{rng.randrange(10)}",
        )
        if rng.random() < 0.7:
            event["transaction"] = {"value": "10", "currency": "USD", "reference": f"r{n % 7}"}
        events.append(event)
    return events


def _key_values(shape: tuple[str, ...], conversion: dict, event: dict) -> tuple | None:
    values = {
        "visitor": event.get("visitor_id"),
        "goal": conversion["goal_id"],
        "visit": event.get("visit_id"),
        "transaction_ref": (event.get("transaction") or {}).get("reference"),
    }
    found = tuple(values[name] for name in shape)
    return None if None in found else found


def assert_window_rule(goals: dict[str, dict], conversions: list[dict], events: dict) -> None:
    """For every goal G with window W on shape S: no two counted conversions of goals
    checking that same layout (S, W) share S's values less than W apart; each void
    conversion of G has its duplicate counted within W, sharing S's values (of any
    goal when S does not name one). A goal that checks nothing may count next to G's
    conversion: the rule of G applies to G's events."""
    by_id = {c["conversion_id"]: c for c in conversions}
    counted = [c for c in conversions if c["status"] == "counted"]
    for goal_id, spec in goals.items():
        shape = tuple(spec["dedup"]["keys"])
        window = spec["dedup"].get("window_days")
        if not shape:
            continue
        span = timedelta(days=window) if window else timedelta.max

        def at(conversion: dict) -> datetime:
            return datetime.fromisoformat(conversion["occurred_at"].replace("Z", "+00:00"))

        def same_layout(other: dict, spec: dict = spec) -> bool:
            return other["dedup"] == spec["dedup"]

        mine = [c for c in conversions if c["goal_id"] == goal_id]
        for conversion in mine:
            values = _key_values(shape, conversion, events[conversion["event_id"]])
            if values is None:
                continue
            near = [
                other
                for other in counted
                if other["event_id"] != conversion["event_id"]
                and ("goal" not in shape or other["goal_id"] == goal_id)
                and _key_values(shape, other, events[other["event_id"]]) == values
                and abs(at(other) - at(conversion)) < span
            ]
            if conversion["status"] == "counted":
                rivals = [other for other in near if same_layout(goals[other["goal_id"]])]
                assert not rivals, (spec["name"], conversion["event_id"], rivals[0]["event_id"])
            else:
                duplicate = by_id[conversion["duplicate_of"]]
                assert duplicate in near, (spec["name"], conversion["event_id"])
