"""P6: read cost of one 31-day goal dry-run (POST /v1/goals/dry-run), in process
(moto), metered per request: with `small` stored events of the account in the range,
with `large` (the dry-run examines at most 10,000, then answers "truncated"), and
with `small` of its own beside `large` events of another account on the same days.

Events are written straight into the table with ingest's own item builder
(services.ingest.event_item), 25 per BatchWriteItem, without evaluation: that makes
100k events take about a minute instead of twenty. A dry-run reads the events of the
range, the goal library and the claim items its matches' checks name; evaluation's
writes would change which claims exist, not which keys are read (a claim, found or
not, costs 0.5 unit).
P6 = read units with the other account's events ÷ without them (target 1.0: other
tenants' data never changes the cost). The own-events ratio grows with the events
in the range up to the cap, then stays flat.
"""

import argparse
from datetime import UTC, datetime
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import TABLE, fmt, in_process_stack, metered

RANGE = {"from": "2026-10-21", "to": "2026-11-20"}  # 31 days, the workload's span
# Reads the claims of a layout shared by every goal ("visitor", 30 days).
CANDIDATE = {
    "name": "Thank-you page, once per visitor a month",
    "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"},
    "dedup": {"keys": ["visitor"], "window_days": 30},
}
BATCH_WRITE_ITEMS = 25


def _store_events(account_id: str, seed: int, count: int) -> None:
    """`count` workload events of the account, stored as ingest stores them."""
    import boto3
    from botocore.config import Config

    from goalkeeper import runtime
    from goalkeeper.attributes import to_attributes
    from goalkeeper.models.events import EventBatch
    from goalkeeper.services.ingest import event_item, load_account_secret
    from support.workload import Workload

    secret = load_account_secret(runtime.dal().accounts, account_id)
    sent = Workload(seed=seed, events=count, resend_share=0).generate()
    received = datetime.now(UTC)
    # Checked once by pydantic here; botocore's own parameter check would double the time.
    client = boto3.client("dynamodb", config=Config(parameter_validation=False))
    for start in range(0, len(sent), 100):
        batch = EventBatch.model_validate({"events": sent[start : start + 100]})
        items = [
            event_item(account_id, event, received, "bench", 400, secret) for event in batch.events
        ]
        for first in range(0, len(items), BATCH_WRITE_ITEMS):
            puts = [
                {"PutRequest": {"Item": to_attributes(item)}}
                for item in items[first : first + BATCH_WRITE_ITEMS]
            ]
            response = client.batch_write_item(RequestItems={TABLE: puts})
            assert not response.get("UnprocessedItems"), "moto deferred a batch write"


def _cost(stack: Any, read: str) -> dict[str, Any]:
    from goalkeeper import runtime

    request = {"goal": CANDIDATE} | RANGE
    (status, body), cost = metered(
        runtime.dal().client, lambda: stack.request("POST", "/v1/goals/dry-run", read, request)
    )
    assert status == 200, body
    return cost | {name: body[name] for name in ("examined", "truncated", "matched", "would_count")}


def run(small: int = 10_000, large: int = 100_000) -> dict[str, Any]:
    from support.workload import GOALS

    with in_process_stack() as stack:
        own, other = stack.new_account(), stack.new_account()
        stack.add_goals(own["keys"]["write"], GOALS)
        stack.add_goals(other["keys"]["write"], GOALS)
        read = own["keys"]["read"]
        _store_events(own["account_id"], seed=61, count=small)
        at_small = _cost(stack, read)
        _store_events(other["account_id"], seed=62, count=large)
        beside_other = _cost(stack, read)
        _store_events(own["account_id"], seed=63, count=large - small)
        at_large = _cost(stack, read)
    return {
        "small": small,
        "large": large,
        "costs": {"small": at_small, "other": beside_other, "large": at_large},
        "own_ratio": at_large["read_units"] / at_small["read_units"],
        "ratio": beside_other["read_units"] / at_small["read_units"],
    }


def _size(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 else str(count)


def report(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    small, large = _size(result["small"]), _size(result["large"])
    labels = {
        "small": f"{small} own",
        "other": f"{small} own + {large} other account",
        "large": f"{large} own",
    }
    rows = []
    for name, cost in result["costs"].items():
        ops = ", ".join(f"{op} {n}" for op, n in sorted(cost["requests"].items()))
        truncated = ", truncated" if cost["truncated"] else ""
        rows.append(
            (
                f"P6 dry-run 31 d, {labels[name]}",
                f"{fmt(cost['read_units'], 1)} RU ({ops}; {cost['keys']} keys; "
                f"{cost['examined']} examined{truncated}, {cost['matched']} matched)",
                "",
            )
        )
    from goalkeeper.services.dry_run import MAX_EVENTS_EXAMINED

    capped = result["small"] >= MAX_EVENTS_EXAMINED
    own_target = "≈ 1 (both at the cap)" if capped else "grows up to the cap"
    rows.append((f"P6 read units {large} / {small} own", fmt(result["own_ratio"], 3), own_target))
    rows.append((f"P6 read units +{large} other / {small} own", fmt(result["ratio"], 3), "= 1.0"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    for name, value, target in report(run(args.small, args.large)):
        print(f"{name:48} {value:90} {target}")


if __name__ == "__main__":
    main()
