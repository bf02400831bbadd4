"""P4: read cost of a 30-day goals report and a goal's 30-day time series, at 1k
stored events and at a larger size, in process (moto), metered per request.

Events are the workload's, sent through ingest and decided by evaluation (both
sizes are real stored, evaluated events: that costs ~10 ms per event in moto, so
--quick stops at 2k and the full run at 20k to stay within its 10 minutes; the
50k figure comes from running this script alone with --large 50000, ~9 minutes).
P4 = read units at the large size / at 1k, both reports together (target 1.0).
"""

import argparse
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import fmt, in_process_stack, metered

SMALL = 1000
RANGE = {"from": "2026-10-22", "to": "2026-11-20"}  # 30 days, the workload's span


def _cost(stack: Any, read: str, path: str) -> dict[str, Any]:
    from goalkeeper import runtime

    (status, body), cost = metered(
        runtime.dal().client, lambda: stack.request("GET", path, read, query=RANGE)
    )
    assert status == 200, body
    return cost | {"body": body}


def _load(stack: Any, write: str, seed: int, count: int) -> None:
    from support.workload import Workload

    sent = Workload(seed=seed, events=count).generate()
    for start in range(0, len(sent), 500):
        stack.send(write, sent[start : start + 500])
        stack.evaluate_pending()


def run(large: int = 3000) -> dict[str, Any]:
    from support.workload import GOALS

    with in_process_stack() as stack:
        account = stack.new_account()
        write, read = account["keys"]["write"], account["keys"]["read"]
        stack.add_goals(write, GOALS)
        _load(stack, write, seed=31, count=SMALL)
        goals = stack.request("GET", "/v1/goals", read)[1]["goals"]
        goal_id = next(g["goal_id"] for g in goals if g["name"] == "Big sale")
        paths = {
            "goals report": "/v1/reports/goals",
            "timeseries": f"/v1/reports/goals/{goal_id}/timeseries",
        }
        small = {name: _cost(stack, read, path) for name, path in paths.items()}
        _load(stack, write, seed=32, count=large - SMALL)
        big = {name: _cost(stack, read, path) for name, path in paths.items()}

    def counted(cost: dict[str, Any]) -> int:
        return sum(goal["counted"] for goal in cost["body"]["goals"])

    units_small = sum(cost["read_units"] for cost in small.values())
    units_big = sum(cost["read_units"] for cost in big.values())
    return {
        "small": SMALL,
        "large": large,
        "costs": {
            name: {
                "small": {k: v for k, v in small[name].items() if k != "body"},
                "large": {k: v for k, v in big[name].items() if k != "body"},
            }
            for name in paths
        },
        "counted_small": counted(small["goals report"]),
        "counted_large": counted(big["goals report"]),
        "ratio": units_big / units_small,
    }


def report(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    big_k = f"{result['large'] // 1000}k"
    for name, cost in result["costs"].items():
        s, b = cost["small"], cost["large"]
        ops = ", ".join(f"{op} {n}" for op, n in sorted(b["requests"].items()))
        rows.append(
            (
                f"P4 {name} 30 d",
                f"{fmt(s['read_units'], 1)} RU @1k, {fmt(b['read_units'], 1)} RU @{big_k}"
                f" ({ops}; {b['keys']} keys)",
                "",
            )
        )
    rows.append(
        (
            "P4 counted conversions in report",
            f"{result['counted_small']} @1k -> {result['counted_large']} @{big_k}",
            "grows",
        )
    )
    rows.append(
        (f"P4 read units {result['large'] // 1000}k / 1k", fmt(result["ratio"], 3), "= 1.0")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=3000)
    args = parser.parse_args()
    for name, value, target in report(run(args.large)):
        print(f"{name:34} {value:70} {target}")


if __name__ == "__main__":
    main()
