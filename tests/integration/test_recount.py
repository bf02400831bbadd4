"""Invariant 3: report counters equal a recount of the conversion items, after a
randomized workload, with money kept per currency."""

import os
from collections import Counter, defaultdict
from decimal import Decimal

from goalkeeper import counters
from goalkeeper.counters import attribution_labels
from support.stack import InProcessStack
from support.workload import GOALS, Workload

EVENTS = int(os.environ.get("GOALKEEPER_RECOUNT_EVENTS", "2000"))


def _load(stack: InProcessStack, seed: int, events: int) -> str:
    write = stack.new_account()["keys"]["write"]
    load_more(stack, write, seed, events)
    return write


def load_more(stack: InProcessStack, write: str, seed: int, events: int) -> None:
    """The workload's goals (once) and `events` of its events, sent in batches of 100."""
    _, library = stack.api.request("GET", "/v1/goals", write)
    names = {goal["name"] for goal in library["goals"]}
    for spec in GOALS:
        if spec["name"] not in names:
            assert stack.api.request("POST", "/v1/goals", write, spec)[0] == 201
    batch: list[dict] = []
    for event in Workload(seed=seed, events=events).generate():
        batch.append(event)
        if len(batch) == 100:
            assert stack.api.request("POST", "/v1/events", write, {"events": batch})[0] == 202
            batch = []
            stack.evaluate_pending()
    if batch:
        assert stack.api.request("POST", "/v1/events", write, {"events": batch})[0] == 202
    stack.evaluate_pending()


def test_aggregates_equal_a_recount_of_conversions_after_a_random_workload(
    stack: InProcessStack,
) -> None:
    _load(stack, seed=7, events=EVENTS)
    items = stack.items()
    conversions = [i for i in items if i.get("kind") == "conversion"]
    assert len(conversions) > EVENTS // 10  # the workload really converts
    # ... and credits some conversions from their visitors' earlier touches, so the
    # attribution counters are checked against credited attributions too.
    assert any(c.get("attribution_source") == "visitor" for c in conversions)

    daily: dict[tuple, Counter] = defaultdict(Counter)
    converted_visitors: dict[tuple, set] = defaultdict(set)
    attributed: dict[tuple, Counter] = defaultdict(Counter)
    for conversion in conversions:
        cell = (conversion["day"], conversion["goal_id"])
        daily[cell][conversion["status"]] += 1
        if conversion["status"] != "counted":
            continue
        labels = tuple(attribution_labels(conversion.get("attribution")).values())
        attributed[(*cell, labels)]["counted"] += 1
        if conversion.get("visitor_id"):
            converted_visitors[cell].add(conversion["visitor_id"])
        if conversion.get("value_currency"):
            value_name = f"value_{conversion['value_currency']}"
            daily[cell][value_name] += conversion["value_amount"]
            attributed[(*cell, labels)][value_name] += conversion["value_amount"]

    kept_daily: dict[tuple, Counter] = defaultdict(Counter)
    kept_visitors: Counter = Counter()
    kept_attributed: dict[tuple, Counter] = defaultdict(Counter)
    for item in items:
        if item.get("kind") == counters.GOAL_DAY_KIND:
            cell = (item["day"], item["goal_id"])
            for counter in (counters.COUNTED, counters.VOID):
                kept_daily[cell][counter] += int(item.get(counter, 0))
            kept_visitors[cell] += int(item.get(counters.VISITORS_CONVERTED, 0))
            for currency, amount in counters.values_of(item).items():
                kept_daily[cell][f"value_{currency}"] += amount
        elif item.get("kind") == counters.ATTRIBUTION_KIND:
            labels = tuple(item[name] for name in counters.ATTRIBUTION_DIMENSIONS)
            key = (item["day"], item["goal_id"], labels)
            kept_attributed[key]["counted"] += int(item[counters.COUNTED])
            for currency, amount in counters.values_of(item).items():
                kept_attributed[key][f"value_{currency}"] += amount

    visitor_days = {
        (item["occurred_at"][:10], item["body"]["visitor_id"])
        for item in items
        if item.get("kind") == "event" and item["body"].get("visitor_id")
    }
    kept_seen = sum(
        int(i.get(counters.VISITORS_SEEN, 0)) for i in items if i.get("kind") == counters.DAY_KIND
    )
    assert kept_seen == len(visitor_days)
    assert _plain(kept_daily) == _plain(daily)
    assert kept_visitors == Counter({cell: len(v) for cell, v in converted_visitors.items()})
    assert _plain(kept_attributed) == _plain(attributed)


def _plain(cells: dict) -> dict:
    return {
        cell: {name: Decimal(value) for name, value in counts.items() if value}
        for cell, counts in cells.items()
    }
