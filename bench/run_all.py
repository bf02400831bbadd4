"""Runs every benchmark (P1-P6) and prints one table, ending with the line
`bench: P1=<x> P2=<x> P3=<x> P4=<x> P5=<x> P6=<x>`.

    .venv/bin/python bench/run_all.py --quick   # under 3 minutes
    .venv/bin/python bench/run_all.py           # full, under 10 minutes
    .venv/bin/python bench/run_all.py --tracing # also cold starts with X-Ray on

Every figure is a ratio against a floor measured in the same run (see each
module's docstring for what is measured and how).
"""

import argparse
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (
    p1_requests,
    p2_cold_start,
    p3_rules,
    p4_report_cost,
    p5_local_throughput,
    p6_dry_run,
)

QUICK = {
    "p2_rounds": 10,
    "p4_large": 2000,
    "p5_large": 3000,
    "p5_events": 500,
    "p5_index_events": 200,
    "p6_small": 1000,
    "p6_large": 5000,
}
FULL = {
    "p2_rounds": 12,
    "p4_large": 50_000,
    "p5_large": 100_000,
    "p5_events": 1000,
    # Each index workload event queries the scope index; on moto that Query still
    # visits every stored item (~2.5 ms per 1k), so the 100k leg is kept short.
    "p5_index_events": 200,
    "p6_small": 10_000,
    "p6_large": 100_000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, under 3 minutes")
    parser.add_argument(
        "--tracing", action="store_true", help="also P2 with X-Ray tracing on (~30 s more)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", "No application metrics to publish")
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    rows: list[tuple[str, str, str]] = []
    figures: dict[str, float] = {}

    def stage(name: str, result: dict, report: list) -> None:
        figures[name] = result["ratio"] if name != "P3" else result["checks_per_second"]
        rows.extend(report)
        print(f"  .. {name} done at {time.perf_counter() - started:.0f} s", flush=True)

    result = p1_requests.run(1000)
    stage("P1", result, p1_requests.report(result))
    # P2 as template.yaml deploys by default (Tracing=off); with X-Ray on, for reference.
    result = p2_cold_start.run(plan["p2_rounds"], tracing=False)
    stage("P2", result, p2_cold_start.report(result))
    if args.tracing:
        rows.extend(p2_cold_start.report(p2_cold_start.run(plan["p2_rounds"], tracing=True)))
    result = p3_rules.run(quick=args.quick)
    stage("P3", result, p3_rules.report(result))
    result = p4_report_cost.run(plan["p4_large"])
    stage("P4", result, p4_report_cost.report(result))
    result = p5_local_throughput.run(plan["p5_large"], plan["p5_events"], plan["p5_index_events"])
    stage("P5", result, p5_local_throughput.report(result))
    result = p6_dry_run.run(plan["p6_small"], plan["p6_large"])
    stage("P6", result, p6_dry_run.report(result))

    width = max(len(name) for name, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    print()
    print(f"{'figure':{width}}  {'measured':{value_width}}  target")
    for name, value, target in rows:
        print(f"{name:{width}}  {value:{value_width}}  {target}")
    print(f"({'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s)")
    print(
        f"bench: P1={figures['P1']:.3f} P2={figures['P2']:.2f} P3={figures['P3']:.0f} "
        f"P4={figures['P4']:.3f} P5={figures['P5']:.2f} P6={figures['P6']:.3f}"
    )


if __name__ == "__main__":
    main()
