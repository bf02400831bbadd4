"""P3: rules speed — event x goal checks per second per core, 10 / 100 / 1,000 goals.

A goal library of N goals in a fixed mix of rule kinds (per 100 goals: 40 exact
URLs, 10 URL prefixes, 5 URL "contains", 5 URL regexes, 20 custom triggers by
name with conditions, 5 service-activity, 5 call-rating, 4 call, 3 transaction,
1 lead, 1 tags, 1 page-views) is compiled into goalkeeper.rules.GoalIndex once;
then the workload's events (page views, calls, sales, leads, triggers), plus
triggers, ratings and service updates aimed at the library, are matched in one
thread (RuleContext supplied, as evaluation reads it).

"Checks" = goals in the account x events decided (every goal is decided for
every event, the index just rules most out without running them). The candidate
goals actually examined per event are printed too.
P3 = checks/s at 1,000 goals (target >= 100,000); and the time per event at
1,000 goals / at 10 goals (target <= 3).
"""

import argparse
import random
import time
from datetime import UTC, datetime
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _stack  # noqa: F401  (puts shared/, tools/ and tests/ on the path)

TARGET = 100_000
RATIO_TARGET = 3.0
SIZES = (10, 100, 1000)
MIX = (
    ("url_exact", 40),
    ("url_prefix", 10),
    ("url_contains", 5),
    ("url_regex", 5),
    ("custom_trigger", 20),
    ("service_activity", 5),
    ("call_rating", 5),
    ("call", 4),
    ("transaction", 3),
    ("lead", 1),
    ("tags", 1),
    ("page_views", 1),
)


def _rule(kind: str, n: int) -> dict[str, Any]:
    if kind == "url_exact":
        return {"kind": "url", "match": "exact", "pattern": f"https://acme.example/p/{n}"}
    if kind == "url_prefix":
        return {"kind": "url", "match": "prefix", "pattern": f"https://acme.example/s{n}/"}
    if kind == "url_contains":
        return {"kind": "url", "match": "contains", "pattern": f"/thank-you-{n}"}
    if kind == "url_regex":
        return {"kind": "url", "match": "regex", "pattern": rf"/order/{n}/[0-9]+/done$"}
    if kind == "custom_trigger":
        return {
            "kind": "custom_trigger",
            "name": f"trigger-{n}",
            "conditions": [{"field": "seats", "op": "gte", "value": 1}],
        }
    if kind == "service_activity":
        return {"kind": "service_activity", "topics": {f"topic-{n}": ["done", "booked"]}}
    if kind == "call_rating":
        return {"kind": "call_rating", "rating": f"rating-{n}"}
    if kind == "call":
        return {"kind": "call", "connected": True, "min_bridged_seconds": 30 + n % 120}
    if kind == "transaction":
        return {"kind": "transaction", "min_value": str(50 + n)}
    if kind == "lead":
        return {"kind": "lead"}
    if kind == "tags":
        return {"kind": "tags", "tags": [f"tag-{n}", "customer"], "match": "all"}
    return {"kind": "page_views", "min_pages": 3 + n % 5}


def goal_library(size: int) -> list[Any]:
    from goalkeeper.models.goals import Goal

    now = datetime(2026, 11, 1, tzinfo=UTC)
    per_hundred = [kind for kind, share in MIX for _ in range(share)]
    kinds = [per_hundred[(i * 100) // size % 100] if size < 100 else None for i in range(size)]
    if size >= 100:
        kinds = [per_hundred[i % 100] for i in range(size)]
    return [
        Goal(
            goal_id=f"goal-{i}",
            version=1,
            name=f"Goal {i}",
            rule=_rule(kind, i),
            dedup={"keys": ["visitor", "goal"], "window_days": None},
            created_at=now,
            updated_at=now,
        )
        for i, kind in enumerate(kinds)
    ]


def events(count: int, seed: int = 5) -> list[Any]:
    from pydantic import TypeAdapter

    from goalkeeper.models.events import Event
    from support.workload import Workload

    rng = random.Random(seed)
    raw = Workload(seed=seed, events=count).generate()
    for number, event in enumerate(raw):
        roll = rng.random()
        if event["type"] == "page_view" and roll < 0.3:
            event["url"] = f"https://acme.example/p/{rng.randrange(2000)}"
        elif event["type"] == "custom_trigger" and roll < 0.7:
            event["name"] = f"trigger-{rng.randrange(2000)}"
        elif event["type"] == "lead" and roll < 0.4:
            event.pop("lead_id")
            event.update(
                type="call_rating", call_id=f"c{number}", rating=f"rating-{rng.randrange(2000)}"
            )
        elif event["type"] == "lead" and roll < 0.8:
            event.pop("lead_id")
            event.update(
                type="service_status",
                service_id=f"s{number}",
                topic=f"topic-{rng.randrange(2000)}",
                status="done",
            )
    adapter = TypeAdapter(Event)
    return [adapter.validate_python(event) for event in raw]


SLICE_SECONDS = 0.05


def measure(sample: list[Any], min_seconds: float) -> dict[int, dict[str, Any]]:
    """Each size's time is gathered in short slices taken in turn, so a change in the
    machine's speed during the run weighs on every size alike."""
    from goalkeeper.rules import GoalIndex, RuleContext

    context = RuleContext(visit_page_count=2)
    indexes = {size: GoalIndex.build(goal_library(size)) for size in SIZES}
    elapsed = dict.fromkeys(SIZES, 0.0)
    decided = dict.fromkeys(SIZES, 0)
    position = dict.fromkeys(SIZES, 0)
    while min(elapsed.values()) < min_seconds:
        for size, index in indexes.items():
            started = time.perf_counter()
            while time.perf_counter() - started < SLICE_SECONDS:
                for event in sample[position[size] : position[size] + 100]:
                    index.matching_goals(event, context)
                position[size] = (position[size] + 100) % len(sample)
                decided[size] += 100
            elapsed[size] += time.perf_counter() - started
    results = {}
    for size, index in indexes.items():
        candidates = sum(len(index.candidates(event)) for event in sample)
        results[size] = {
            "goals": size,
            "events_per_second": decided[size] / elapsed[size],
            "checks_per_second": decided[size] * size / elapsed[size],
            "us_per_event": 1e6 * elapsed[size] / decided[size],
            "candidates_per_event": candidates / len(sample),
        }
    return results


def run(quick: bool = False) -> dict[str, Any]:
    sample = events(2000)
    results = measure(sample, 0.5 if quick else 2.0)
    ratio = results[1000]["us_per_event"] / results[10]["us_per_event"]
    return {
        "sizes": results,
        "checks_per_second": results[1000]["checks_per_second"],
        "ratio": ratio,
    }


def report(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for size, figures in result["sizes"].items():
        rows.append(
            (
                f"P3 rules, {size} goals",
                f"{figures['checks_per_second']:,.0f} checks/s, "
                f"{figures['us_per_event']:.1f} us/event, "
                f"{figures['candidates_per_event']:.1f} candidates/event",
                f">= {TARGET:,}" if size == 1000 else "",
            )
        )
    rows.append(("P3 time/event 1,000 / 10 goals", f"{result['ratio']:.2f}", f"<= {RATIO_TARGET}"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name, value, target in report(run(args.quick)):
        print(f"{name:34} {value:70} {target}")


if __name__ == "__main__":
    main()
