"""P7: goal-reached webhooks on `goalkeeper serve`: conversion-to-webhook latency (p50,
p99) and deliveries per second, each against a floor measured in the same run.

`goalkeeper serve` runs as a child process (moto engine); a receiver in this process
(tests/support/receiver.py) verifies every request with the `standardwebhooks` package.

Latency: events are sent one at a time (a page view that counts a goal). For each, the
clock starts before the POST; the *decision* time is when its conversion item can be
read from the endpoint (polled every 5 ms: the floor, what evaluation alone takes from
the stream), the *webhook* time when the receiver has verified it. Printed: p50 and p99
of both, and of their difference (the notification's own share: the notify function's
stream poll, the delivery queue hop, the signed POST).
Throughput: a burst of conversions (100 events a request), all delivered; deliveries/s
from the first POST to the last arrival, against the floor of one thread POSTing signed
requests straight to the same receiver for 2 s (what the receiver itself can take).

    python bench/p7_webhooks.py [--events 60] [--burst 500]
"""

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import fmt
from support.receiver import Receiver
from support.served import ServedStack

ADMIN = "admin-bench-p7"
GOAL = {
    "name": "Thank-you page",
    "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/thanks"},
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _dynamodb(served: ServedStack) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=served.dynamodb_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def latency(served: ServedStack, write: str, account_id: str, goal_id: str, count: int) -> dict:
    from goalkeeper import keys

    receiver = Receiver()
    try:
        status, hook = served.request("POST", "/v1/webhooks", write, {"url": receiver.url})
        assert status == 201, hook
        receiver.secret = hook["secret"]
        client = _dynamodb(served)
        decided, hooked = [], []
        for number in range(count):
            event_id = f"lat-{number}"
            key = keys.conversion(account_id, keys.conversion_id(event_id, goal_id))
            started = time.monotonic()
            body = {
                "event_id": event_id,
                "type": "page_view",
                "visitor_id": f"lat-v-{number}",
                "url": "https://shop.example/thanks",
            }
            status, answer = served.request("POST", "/v1/events", write, body)
            assert status == 202, answer
            while "Item" not in client.get_item(
                TableName="goalkeeper", Key={name: {"S": value} for name, value in key.items()}
            ):
                time.sleep(0.005)
            decided.append(time.monotonic() - started)
            arrived = receiver.wait_for(number + 1, timeout=30)[-1]
            hooked.append(arrived.at - started)
        assert receiver.rejected == 0 and receiver.duplicates == 0
        served.request("DELETE", f"/v1/webhooks/{hook['webhook_id']}", write)
    finally:
        receiver.close()
    return {"decided": decided, "webhook": hooked}


def floor_posts_per_second(seconds: float = 2.0) -> float:
    from goalkeeper.messaging import HttpSender
    from goalkeeper.webhooks import new_secret, signed_headers

    receiver = Receiver(secret=new_secret())
    sender, sent = HttpSender(), 0
    try:
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        while time.monotonic() < deadline:
            body = json.dumps({"type": "conversion.counted", "data": {"n": sent}})
            headers = signed_headers(receiver.secret, f"msg_floor{sent}", int(time.time()), body)
            assert sender.post(receiver.url, body, headers, 10).delivered
            sent += 1
        return sent / (time.monotonic() - started)
    finally:
        receiver.close()


def burst(
    served: ServedStack, write: str, read: str, count: int, already: int
) -> tuple[float, float]:
    """(conversions decided per second, deliveries per second), both from the first POST."""
    receiver = Receiver()
    try:
        status, hook = served.request("POST", "/v1/webhooks", write, {"url": receiver.url})
        assert status == 201, hook
        receiver.secret = hook["secret"]
        events = [
            {"type": "page_view", "visitor_id": f"b-{n}", "url": "https://shop.example/thanks"}
            for n in range(count)
        ]
        started = time.monotonic()
        threads = [
            threading.Thread(
                target=lambda chunk: served.request("POST", "/v1/events", write, {"events": chunk}),
                args=(events[start : start + 100],),
            )
            for start in range(0, count, 100)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        decided = started
        today = time.strftime("%Y-%m-%d", time.gmtime())
        report = f"/v1/reports/goals?from={today}&to={today}"
        while True:
            status, answer = served.request("GET", report, read)
            counted = sum(goal["counted"] for goal in answer["goals"]) if status == 200 else 0
            if counted >= count + already:
                decided = time.monotonic()
                break
            time.sleep(0.1)
        arrived = receiver.wait_for(count, timeout=600)
        assert receiver.rejected == 0 and receiver.duplicates == 0
        return count / (decided - started), count / (arrived[-1].at - started)
    finally:
        receiver.close()


def run(events: int = 60, burst_size: int = 500) -> dict[str, Any]:
    served = ServedStack(ADMIN, ["--engine", "moto"])
    try:
        status, account = served.request("POST", "/v1/accounts", ADMIN, {})
        assert status == 201, account
        write = account["keys"]["write"]
        status, goal = served.request("POST", "/v1/goals", write, GOAL)
        assert status == 201, goal
        lat = latency(served, write, account["account_id"], goal["goal_id"], events)
        decided_rate, rate = burst(
            served, write, account["keys"]["read"], burst_size, already=events
        )
    finally:
        served.stop()
    floor_rate = floor_posts_per_second()
    notify = [w - d for w, d in zip(lat["webhook"], lat["decided"], strict=True)]
    figures = {
        "decided_p50_ms": 1000 * statistics.median(lat["decided"]),
        "decided_p99_ms": 1000 * percentile(lat["decided"], 0.99),
        "webhook_p50_ms": 1000 * statistics.median(lat["webhook"]),
        "webhook_p99_ms": 1000 * percentile(lat["webhook"], 0.99),
        "notify_p50_ms": 1000 * statistics.median(notify),
        "notify_p99_ms": 1000 * percentile(notify, 0.99),
        "deliveries_per_s": rate,
        "floor_posts_per_s": floor_rate,
        "decided_per_s": decided_rate,
    }
    figures["latency_ratio_p50"] = figures["webhook_p50_ms"] / figures["decided_p50_ms"]
    figures["throughput_ratio"] = rate / floor_rate
    figures["delivery_to_decision_ratio"] = rate / decided_rate
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60, help="sequential events for latency")
    parser.add_argument("--burst", type=int, default=500, help="conversions in the burst")
    args = parser.parse_args()
    f = run(args.events, args.burst)
    print(f"P7 webhooks on goalkeeper serve ({args.events} sequential, burst of {args.burst})")
    print(
        f"  event -> conversion stored (floor): p50 {fmt(f['decided_p50_ms'], 0)} ms, "
        f"p99 {fmt(f['decided_p99_ms'], 0)} ms"
    )
    print(
        f"  event -> webhook verified:          p50 {fmt(f['webhook_p50_ms'], 0)} ms, "
        f"p99 {fmt(f['webhook_p99_ms'], 0)} ms  (x{fmt(f['latency_ratio_p50'])} the floor at p50)"
    )
    print(
        f"  the notification's own share:       p50 {fmt(f['notify_p50_ms'], 0)} ms, "
        f"p99 {fmt(f['notify_p99_ms'], 0)} ms"
    )
    print(
        f"  burst: {fmt(f['deliveries_per_s'], 1)} deliveries/s; floor (signed POSTs straight "
        f"to the receiver, one thread) {fmt(f['floor_posts_per_s'], 0)}/s; "
        f"ratio {fmt(f['throughput_ratio'], 3)}"
    )
    print(
        f"  burst: conversions decided {fmt(f['decided_per_s'], 1)}/s (evaluation, the other "
        f"floor); deliveries / decisions {fmt(f['delivery_to_decision_ratio'], 2)}"
    )


if __name__ == "__main__":
    main()
