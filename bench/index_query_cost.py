"""The cost of one index Query on the embedded DynamoDB endpoint against the items stored.

The endpoint runs in a child process of its own, as `goalkeeper serve` runs it, with
the table template.yaml declares. At each size, items are added with BatchWriteItem
until the table holds that many: each carries index keys (gsi1, gsi2, gsi3) like a
stored event, ten items to a gsi2 partition. Then one gsi2 partition of 20 items and
one table partition of 20 items are each queried 20 times (median, milliseconds): an
index Query should cost what the table-partition Query costs, whatever the table holds.
The endpoint's resident memory is printed too (what keeping the index partitions costs).

    python bench/index_query_cost.py --sizes 1000 10000 100000
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import REPO

TABLE = "goalkeeper-index-bench"
WANTED = 20


def _client(url: str) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _item(number: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"A#acc_other#E#pre-{number}"},
        "sk": {"S": "EVENT"},
        "kind": {"S": "stored_event"},
        "gsi1pk": {"S": f"A#acc_other#V#v{number % 5000}"},
        "gsi1sk": {"S": f"2026-11-01T10:00:00#{number:08d}"},
        "gsi2pk": {"S": f"A#acc_other#VISIT#{number // 10}"},
        "gsi2sk": {"S": f"2026-11-01T10:00:00#{number:08d}"},
        "gsi3pk": {"S": f"A#acc_other#DAY#2026-11-{1 + number % 28:02d}"},
        "gsi3sk": {"S": f"2026-11-01T10:00:00#{number:08d}"},
        "body": {"M": {"type": {"S": "page_view"}, "url": {"S": "https://acme.example/"}}},
    }


def _wanted(number: int) -> list[dict[str, Any]]:
    """The measured index partition and table partition, WANTED items each."""
    index_item = {
        "pk": {"S": f"A#acc_bench#E#ev-{number}"},
        "sk": {"S": "EVENT"},
        "gsi2pk": {"S": "A#acc_bench#VISIT#measured"},
        "gsi2sk": {"S": f"2026-11-02T10:00:00#{number:08d}"},
    }
    table_item = {"pk": {"S": "A#acc_bench#GOALS"}, "sk": {"S": f"G#{number:08d}"}}
    return [index_item, table_item]


def _write(client: Any, items: list[dict[str, Any]]) -> None:
    for first in range(0, len(items), 25):
        request = {TABLE: [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def _query_ms(client: Any, rounds: int, **query: Any) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        found = client.query(TableName=TABLE, **query)["Count"]
        times.append(time.perf_counter() - started)
        assert found == WANTED, (found, query)
    return 1000 * statistics.median(times)


def _resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(url: str, pid: int, sizes: list[int], rounds: int) -> list[tuple[int, float, float]]:
    from goalkeeper_cli.local_stack.template import load_template, table_create_kwargs

    client = _client(url)
    client.create_table(**table_create_kwargs(load_template(), TABLE))
    _write(client, [item for number in range(WANTED) for item in _wanted(number)])
    stored, rows = 2 * WANTED, []
    for size in sizes:
        _write(client, [_item(number) for number in range(stored, size)])
        stored = max(stored, size)
        index_ms = _query_ms(
            client,
            rounds,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "A#acc_bench#VISIT#measured"}},
        )
        table_ms = _query_ms(
            client,
            rounds,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "A#acc_bench#GOALS"}},
        )
        rows.append((stored, index_ms, table_ms))
        print(
            f"{stored:>8} stored: index Query {index_ms:7.2f} ms, table Query {table_ms:7.2f} ms, "
            f"endpoint resident {_resident_mb(pid):6.0f} MB",
            flush=True,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    paths = [str(REPO / "tools"), str(REPO / "shared")]
    child = subprocess.Popen(
        [sys.executable, "-m", "goalkeeper_cli.local_stack.dynamodb"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        measure(url, child.pid, sorted(args.sizes), args.rounds)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    main()
