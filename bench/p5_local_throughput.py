"""P5: end-to-end throughput of `goalkeeper serve` over HTTP, against single-thread
put_item/s on the same embedded DynamoDB endpoint, at 1k and at a large number of
items already stored.

`goalkeeper serve` runs as a child process (a temporary working directory, so
its state files stay out of the repo). Stored data is pre-loaded with
BatchWriteItem straight to the endpoint: event-sized items under another
account, not of kind "event" so the stream filter does not evaluate them again
(the table and its stream still hold them). Then the workload's events are POSTed
in batches of 100 by 4 concurrent clients and the clock stops when the goals
report stops changing (polled every 0.2 s; the time of the last change counts).
Floor: one thread of PutItem requests to the endpoint, measured for 3 s right
before and right after the end-to-end run, averaged (the machines are noisy; the
two often differ by a third). Decisions that still arrive during the second floor
measurement mean the clock stopped early: the run fails rather than report it.
P5 = end-to-end events/s / floor put_item/s at the large size (target >= 0.5);
also the end-to-end slowdown from 1k stored to the large size (target <= 1.5).
The CPU time that `goalkeeper serve` and its embedded DynamoDB process used per
event is printed too (from /proc), to show where the time goes.

The index workload (support.workload.IndexWorkload, another account) runs the same
way at every size, after the default one: page views of visits and tag changes of
contacts, with page_views and tags goals, so evaluating every event queries the
scope index (gsi2); most of its events decide nothing, so its clock stops when both
processes of `goalkeeper serve` have gone idle (the stream drained) if that comes after
the report's last change. Its events/s end to end against the same floor, its slowdown
from 1k stored, and the time of one index Query (a visit's page views, a contact's
tag changes; median of 20) against one Query of a table partition of about the same
size (the account's goal library): index queries must cost in proportion to what
they return, so that ratio should not grow with the items stored.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import fmt
from support.served import ServedStack
from support.workload import GOALS, INDEX_GOALS, IndexWorkload, Workload

ADMIN = "admin-bench-p5"
CLIENTS = 4
PER_REQUEST = 100
RESENDS = 5
RANGE = "?from=2026-10-22&to=2026-11-20"


def cpu_seconds(served: ServedStack) -> dict[str, float]:
    """CPU time used so far by `goalkeeper serve` (API, poller, functions) and by
    its child, the embedded DynamoDB endpoint."""
    pid = served.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {"serve": _cpu_seconds(pid), "endpoint": sum(map(_cpu_seconds, map(int, children)))}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _client(served: ServedStack) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=served.dynamodb_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _stored_item(number: int) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    serialize = TypeSerializer().serialize
    event_id = f"pre-{number}"
    item = {
        "pk": f"A#acc_preload#E#{event_id}",
        "sk": "EVENT",
        "kind": "stored_event",  # not "event": the stream filter leaves it alone
        "account_id": "acc_preload",
        "event_id": event_id,
        "type": "page_view",
        "occurred_at": "2026-11-01T10:00:00+00:00",
        "received_at": "2026-11-01T10:00:01+00:00",
        "request_id": "00000000-0000-0000-0000-000000000000",
        "body": {
            "type": "page_view",
            "event_id": event_id,
            "visitor_id": f"v{number % 5000}",
            "url": f"https://acme.example/page/{number % 300}",
            "attribution": {"source": "google", "medium": "cpc", "campaign": "winter"},
        },
    }
    return {name: serialize(value) for name, value in item.items()}


def preload(client: Any, table: str, start: int, stop: int) -> None:
    for first in range(start, stop, 25):
        request = {
            table: [
                {"PutRequest": {"Item": _stored_item(n)}}
                for n in range(first, min(first + 25, stop))
            ]
        }
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def floor_puts_per_second(client: Any, table: str, tag: str, seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.put_item(
            TableName=table,
            Item={"pk": {"S": f"BENCH#{tag}#{count}"}, "sk": {"S": "PUT"}, "kind": {"S": "bench"}},
        )
        count += 1
    return count / (time.perf_counter() - started)


def _decided(served: ServedStack, read: str) -> int:
    for _ in range(RESENDS + 1):  # a 503 when the store is too slow: asked again
        status, body = served.request("GET", "/v1/reports/goals" + RANGE, read)
        if status != 503:
            break
    assert status == 200, body
    return sum(goal["counted"] + goal["void"] for goal in body["goals"])


def _wait_quiet(served: ServedStack, read: str, quiet: float = 2.0) -> tuple[int, float]:
    """(decisions, time of the last change) once the report stopped changing for `quiet` s."""
    last, changed = _decided(served, read), time.perf_counter()
    while time.perf_counter() - changed < quiet:
        time.sleep(0.2)
        now = _decided(served, read)
        if now != last:
            last, changed = now, time.perf_counter()
    return last, changed


def idle_cpu_per_second(served: ServedStack, seconds: int = 3) -> float:
    """CPU seconds per second both processes of `goalkeeper serve` use with nothing to
    do (the poller asking the stream for records ten times a second): median of 1 s
    samples."""
    samples = []
    for _ in range(seconds):
        before = cpu_seconds(served)
        time.sleep(1.0)
        samples.append(sum(cpu_seconds(served).values()) - sum(before.values()))
    return statistics.median(samples)


def _wait_idle(served: ServedStack, idle_cpu: float, second: float = 1.0) -> float:
    """When both processes of `goalkeeper serve` last began a second of idle CPU (at most
    twice what they use with nothing to do, measured before the run; evaluating uses
    most of a core): the stream is drained, whether or not its last events decided
    anything."""
    threshold = max(2 * idle_cpu, 0.05) * second
    before = cpu_seconds(served)
    for _ in range(600):
        started = time.perf_counter()
        time.sleep(second)
        now = cpu_seconds(served)
        if sum(now.values()) - sum(before.values()) <= threshold:
            return started
        before = now
    raise RuntimeError("goalkeeper serve never went idle")


def end_to_end(
    served: ServedStack,
    write: str,
    read: str,
    sent: list[dict[str, Any]],
    quiet: float = 2.0,
    idle: bool = False,
) -> dict[str, Any]:
    """`idle` (for a workload most of whose events decide nothing): the clock stops when
    both processes went idle after ingest, or when the report last changed if it still
    changed after that."""
    count = len(sent)
    before, _ = _wait_quiet(served, read, quiet=1.0)
    idle_cpu = idle_cpu_per_second(served) if idle else 0.0
    chunks = [sent[i : i + PER_REQUEST] for i in range(0, len(sent), PER_REQUEST)]
    lock = threading.Lock()
    errors: list[Any] = []
    resent: list[int] = []

    def client() -> None:
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop(0)
            # A 503 (store_unavailable) is answered when the store is too slow to take
            # the events: a client sends them again, as the API asks.
            for _ in range(RESENDS + 1):
                status, body = served.request("POST", "/v1/events", write, {"events": chunk})
                if status != 503:
                    break
                resent.append(1)
            if status != 202:
                errors.append(body)

    cpu_before = cpu_seconds(served)
    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ingested = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"ingest failed: {errors[:2]}")
    if idle:
        # Looked for from the end of ingest: a quiet report says nothing of the stream.
        idle_at = _wait_idle(served, idle_cpu)
        at_idle = _decided(served, read)
    decided, last_change = _wait_quiet(served, read, quiet)
    if idle and decided == at_idle:
        last_change = idle_at
    cpu_after = cpu_seconds(served)  # also counts the quiet wait's report reads
    elapsed = last_change - started
    return {
        "events": count,
        "resent_requests": len(resent),
        "decided_total": decided,
        "decisions": decided - before,
        "ingest_events_per_second": count / ingested,
        "events_per_second": count / elapsed,
        "seconds": elapsed,
        "cpu_ms_per_event": {
            name: 1000 * (cpu_after[name] - cpu_before[name]) / count for name in cpu_after
        },
    }


class Account:
    def __init__(self, served: ServedStack, goals: Any) -> None:
        status, account = served.request("POST", "/v1/accounts", ADMIN, {})
        assert status == 201, account
        self.account_id = account["account_id"]
        self.write, self.read = account["keys"]["write"], account["keys"]["read"]
        for spec in goals:
            status, body = served.request("POST", "/v1/goals", self.write, spec)
            assert status == 201, body


def query_ms(client: Any, table: str, rounds: int = 20, **query: Any) -> float:
    """Median milliseconds of one Query (every page of it)."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        pages = client.get_paginator("query").paginate(TableName=table, **query)
        items = sum(len(page["Items"]) for page in pages)
        times.append(time.perf_counter() - started)
    assert items, query
    return 1000 * statistics.median(times)


def _busiest(events: list[dict[str, Any]], field: str) -> str:
    return Counter(event[field] for event in events if field in event).most_common(1)[0][0]


def index_queries(client: Any, table: str, account: Account, sent: list[dict[str, Any]]) -> dict:
    """One index Query of the busiest visit's page views and of the busiest contact's
    tag changes, and one Query of the account's goal library (a table partition)."""
    from goalkeeper import keys

    def on_index(pk: str) -> float:
        return query_ms(
            client,
            table,
            IndexName=keys.SCOPE_INDEX,
            KeyConditionExpression="gsi2pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        )

    visit = keys.visit_scope_pk(account.account_id, _busiest(sent, "visit_id"))
    contact = keys.contact_scope_pk(account.account_id, _busiest(sent, "contact_id"))
    library = keys.goal_library_pk(account.account_id)
    return {
        "visit_query_ms": on_index(visit),
        "contact_query_ms": on_index(contact),
        "table_query_ms": query_ms(
            client,
            table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": library}},
        ),
    }


def _measured(
    served: ServedStack,
    client: Any,
    table: str,
    account: Account,
    size: int,
    sent: list,
    quiet: float = 2.0,
    idle: bool = False,
) -> dict[str, Any]:
    """End to end between two floors; fails if decisions come after the clock stopped
    (`quiet`, `idle`: see end_to_end)."""
    floors = [floor_puts_per_second(client, table, f"{size}-{account.account_id}-before", 3.0)]
    e2e = end_to_end(served, account.write, account.read, sent, quiet, idle)
    floors.append(floor_puts_per_second(client, table, f"{size}-{account.account_id}-after", 3.0))
    late = _decided(served, account.read) - e2e["decided_total"]
    if late:
        raise RuntimeError(f"{late} decisions came after the clock stopped; run again")
    return e2e | {"floor": sum(floors) / len(floors), "floors": floors}


def _progress(what: str, figures: dict[str, Any]) -> None:
    shown = {k: round(v, 1) for k, v in figures.items() if isinstance(v, float)}
    print(f"  .. P5 {what}: {shown}, resent {figures['resent_requests']}", file=sys.stderr)


def run(
    large: int = 20_000, events: int = 1000, index_events: int | None = None, middle: int = 0
) -> dict[str, Any]:
    """At 1k stored, `middle` (if any) and `large`: the default workload's `events`, then
    the index workload's `index_events` (as many by default)."""
    index_events = events if index_events is None else index_events
    sizes = sorted({1000, large} | ({middle} if middle else set()))
    served = ServedStack(ADMIN)
    try:
        client = _client(served)
        table = client.list_tables()["TableNames"][0]
        mixed, indexed = Account(served, GOALS), Account(served, INDEX_GOALS)
        results, index_results = {}, {}
        stored = 0
        for number, size in enumerate(sizes):
            load_started = time.perf_counter()
            preload(client, table, stored, size)
            stored = size
            load_seconds = time.perf_counter() - load_started
            # The poller has skipped the pre-loaded records.
            _wait_quiet(served, mixed.read, quiet=1.0)
            sent = Workload(seed=41 + number, events=events).generate()
            results[size] = _measured(served, client, table, mixed, size, sent) | {
                "preload_seconds": load_seconds
            }
            _progress(f"default workload at {size} stored", results[size])
            sent = IndexWorkload(seed=51 + number, events=index_events).generate()
            # Most of its events decide nothing: the clock waits for the stream to drain.
            index_results[size] = _measured(served, client, table, indexed, size, sent, 8.0, True)
            index_results[size] |= index_queries(client, table, indexed, sent)
            _progress(f"index workload at {size} stored", index_results[size])
    finally:
        served.stop()
    big, small = results[large], results[1000]
    index_big, index_small = index_results[large], index_results[1000]

    def query_ratio(r: dict[str, Any]) -> float:
        return (r["visit_query_ms"] + r["contact_query_ms"]) / (2 * r["table_query_ms"])

    return {
        "large": large,
        "events": events,
        "index_events": index_events,
        "sizes": results,
        "index_sizes": index_results,
        "ratio": big["events_per_second"] / big["floor"],
        "slowdown": small["events_per_second"] / big["events_per_second"],
        "index_ratio": index_big["events_per_second"] / index_big["floor"],
        "index_slowdown": index_small["events_per_second"] / index_big["events_per_second"],
        "query_ratios": {size: query_ratio(r) for size, r in index_results.items()},
    }


def _serve_rows(label: str, size: int, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    cpu = r["cpu_ms_per_event"]
    resent = f", {r['resent_requests']} resent after a 503" if r["resent_requests"] else ""
    return [
        (
            f"P5 {label}, {size // 1000}k stored",
            f"{r['events_per_second']:.0f} events/s end to end ({r['decisions']} decisions; "
            f"ingest {r['ingest_events_per_second']:.0f}/s{resent}), floor {r['floor']:.0f} "
            f"put_item/s ({' and '.join(f'{floor:.0f}' for floor in r['floors'])})",
            "",
        ),
        (
            f"P5 {label} CPU ms/event, {size // 1000}k",
            f"API+functions {cpu['serve']:.1f}, embedded DynamoDB {cpu['endpoint']:.1f}",
            "",
        ),
    ]


def report(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for size, r in result["sizes"].items():
        rows += _serve_rows("serve", size, r)
    for size, r in result["index_sizes"].items():
        rows += _serve_rows("index goals", size, r)
        rows.append(
            (
                f"P5 index Query ms, {size // 1000}k stored",
                f"visit's page views {r['visit_query_ms']:.1f}, contact's tags "
                f"{r['contact_query_ms']:.1f}; table partition {r['table_query_ms']:.1f} "
                f"(index / table {fmt(result['query_ratios'][size])})",
                "",
            )
        )
    large = result["large"] // 1000
    rows.append((f"P5 e2e / floor @{large}k stored", fmt(result["ratio"]), ">= 0.5"))
    rows.append((f"P5 slowdown 1k -> {large}k stored", f"{fmt(result['slowdown'])}x", "<= 1.5"))
    rows.append((f"P5 index goals e2e / floor @{large}k", fmt(result["index_ratio"]), ">= 0.5"))
    rows.append(
        (
            f"P5 index goals slowdown 1k -> {large}k",
            f"{fmt(result['index_slowdown'])}x",
            "<= 1.5",
        )
    )
    ratios = result["query_ratios"]
    rows.append(
        (
            f"P5 index / table Query @{large}k ÷ @1k",
            fmt(ratios[result["large"]] / ratios[1000]),
            "≈ 1 (no growth)",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--middle", type=int, default=0, help="a third size, e.g. 10000")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--index-events", type=int, default=None)
    args = parser.parse_args()
    result = run(args.large, args.events, args.index_events, args.middle)
    for name, value, target in report(result):
        print(f"{name:38} {value:90} {target}")


if __name__ == "__main__":
    main()
