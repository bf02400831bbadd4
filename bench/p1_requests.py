"""P1: DynamoDB requests per event through ingest and evaluation, in process.

1,000 events of support.workload (page views, calls, sales, leads,
webinar sign-ups; ~3% re-sent with the same id) are POSTed in batches of 100
and evaluated from the stream in batches as template.yaml configures them.
Every request the functions make to DynamoDB is counted per operation
(support.metering.Meter: botocore event hooks on the process-wide
client both functions share in process). Stream reads are Lambda's event source
mapping, not the functions', and are not counted.

Floor = 1 write per event sent + 1 transaction per new event whose decision
has counted or void conversions + 1 read per such event that carries no
attribution of its own (crediting it from its visitor's or contact's touches needs
at least one) + 0 goal-library reads per event.
P1 = requests / floor (target <= 1.05).
"""

import argparse
import time
from collections import Counter
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import fmt, in_process_stack

TARGET = 1.05


def run(events: int = 1000, seed: int = 21, per_request: int = 100) -> dict[str, Any]:
    from goalkeeper import runtime
    from goalkeeper_cli.local_stack.template import load_template, table_create_kwargs
    from support.metering import IndexShape, Meter
    from support.workload import GOALS, Workload

    sent = Workload(seed=seed, events=events).generate()
    with in_process_stack() as stack:
        write = stack.new_account()["keys"]["write"]
        stack.add_goals(write, GOALS)
        client = runtime.dal().client
        indexes = IndexShape.from_create_kwargs(table_create_kwargs(load_template(), "bench"))
        meter = Meter(indexes).attach(client)
        started = time.perf_counter()
        ingest_started = time.perf_counter()
        stack.send(write, sent, per_request)
        ingest_seconds = time.perf_counter() - ingest_started
        ingest_requests = Counter(meter.requests)
        ingest_wu = meter.write_units
        evaluate_started = time.perf_counter()
        batches = stack.evaluate_pending()
        evaluate_seconds = time.perf_counter() - evaluate_started
        elapsed = time.perf_counter() - started
        meter.detach(client)
        evaluate_requests = meter.requests - ingest_requests
        items = _conversions(stack)
        stored_events = [item for item in stack.items() if item.get("kind") == "event"]

    unique = len({event["event_id"] for event in sent})
    converted_events = len({item["event_id"] for item in items})
    counted = sum(1 for item in items if item["status"] == "counted")
    void = sum(1 for item in items if item["status"] == "void")
    total = meter.total_requests
    to_credit = len({i["event_id"] for i in items if i.get("attribution_source") != "event"})
    floor = len(sent) + converted_events + to_credit
    transactions = evaluate_requests["TransactWriteItems"]
    extra_tx = transactions - converted_events
    return {
        "events": len(sent),
        "unique": unique,
        "per_request": per_request,
        "stream_batches": batches,
        "converted_events": converted_events,
        "counted": counted,
        "void": void,
        "requests": dict(meter.requests),
        "ingest_requests": dict(ingest_requests),
        "evaluate_requests": dict(evaluate_requests),
        "total": total,
        "floor": floor,
        "ratio": total / floor,
        "extra_transactions": extra_tx,
        "scans": meter.requests["Scan"],
        "write_units_per_event": meter.write_units / len(sent),
        "index_write_units_per_event": {
            name: units / len(sent) for name, units in sorted(meter.index_write_units.items())
        },
        "credited_events": to_credit,
        "touch_index_entries": sum(1 for item in stored_events if "gsi4pk" in item),
        "credited": Counter(item.get("attribution_source") for item in items),
        "ingest_write_units_per_event": ingest_wu / len(sent),
        "read_units_per_event": meter.read_units / len(sent),
        "ingest_ms_per_event": 1000 * ingest_seconds / len(sent),
        "evaluate_ms_per_event": 1000 * evaluate_seconds / len(sent),
        "seconds": elapsed,
    }


def _conversions(stack: Any) -> list[dict[str, Any]]:
    return [item for item in stack.items() if item.get("kind") == "conversion"]


def report(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [
        ("P1 events sent (unique)", f"{result['events']} ({result['unique']})", ""),
        (
            "P1 events with conversions",
            f"{result['converted_events']} ({result['counted']} counted, {result['void']} void)",
            "~20%",
        ),
    ]
    for phase in ("ingest", "evaluate"):
        ops = ", ".join(f"{op} {n}" for op, n in sorted(result[f"{phase}_requests"].items()))
        rows.append((f"P1 {phase} requests", ops, ""))
    rows += [
        (
            "P1 extra TransactWriteItems",
            f"{result['extra_transactions']} (visitor-seen markers)",
            "0",
        ),
        ("P1 Scan requests", str(result["scans"]), "0"),
        (
            "P1 write units / event",
            f"{fmt(result['write_units_per_event'])} "
            f"in all (ingest {fmt(result['ingest_write_units_per_event'])}); index entries "
            + ", ".join(
                f"{name} {fmt(units)}"
                for name, units in result["index_write_units_per_event"].items()
            )
            + ")",
            "",
        ),
        (
            "P1 touches, conversions credited",
            f"{result['touch_index_entries']} touch index entries; conversions credited by "
            + ", ".join(f"{k} {n}" for k, n in sorted(result["credited"].items()))
            + f" ({result['credited_events']} events read touches)",
            "",
        ),
        (
            "P1 in-process ms / event",
            f"ingest {fmt(result['ingest_ms_per_event'])}, "
            f"evaluate {fmt(result['evaluate_ms_per_event'])} (moto)",
            "",
        ),
        ("P1 read units / event", fmt(result["read_units_per_event"], 3), ""),
        (
            "P1 requests / floor",
            f"{result['total']} / {result['floor']} = {fmt(result['ratio'], 3)}",
            f"<= {TARGET}",
        ),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--per-request", type=int, default=100)
    args = parser.parse_args()
    result = run(args.events, per_request=args.per_request)
    for name, value, target in report(result):
        print(f"{name:34} {value:50} {target}")
    print(
        f"ingest {fmt(result['ingest_ms_per_event'])} ms/event, evaluate "
        f"{fmt(result['evaluate_ms_per_event'])} ms/event in process; {fmt(result['seconds'], 1)} s"
    )


if __name__ == "__main__":
    main()
