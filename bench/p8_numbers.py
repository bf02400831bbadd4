"""P8: call tracking on the in-process local stack (the handlers, the gateway, moto):
pool number assignments per second with 100 live visits, and the DynamoDB requests
of an assignment and of a call matched to a visit.

A pool of `--numbers` (110) numbers stands in for one site number. 100 visits each
take one (new holds), then renew theirs `--rounds` times while all 100 stay live
(the tracker's renewals), then `--numbers - 100` more visits and 20 beyond find the
pool exhausted. Each phase is timed and metered (support.metering.Meter on the one
client the functions share in process): assignments/s, and requests per assignment by
operation. Floor: page views POSTed one at a time to the same stack in the same run
(one conditional put each), events/s; the ratio assignments/s / events/s says what an
assignment costs beside the cheapest write there is.

Calls: one call to each held number (matched to its visit), then as many to a number
no one holds (unmatched) and to no tracking number (the floor: the event's own reads
and write). Printed: requests per call of each kind, and the matched call's extra
requests over the floor (the number's item, the hold covering the call, the pool's
day counter).

    python bench/p8_numbers.py [--numbers 110] [--rounds 3]
"""

import argparse
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

if __package__ in (None, ""):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import BenchStack, fmt, in_process_stack

LIVE_VISITS = 100
OWN = "+442079480000"


def _number(n: int) -> str:
    return f"+4420794{90000 + n:05d}"


def _timed(stack: BenchStack, client: Any, requests: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """Send the requests one at a time: seconds taken, answers, DynamoDB requests made."""
    from support.metering import Meter

    meter = Meter().attach(client)
    answers = []
    started = time.perf_counter()
    try:
        for path, key, body in requests:
            status, answer = stack.request("POST", path, key, body)
            assert status in (200, 202), answer
            answers.append(answer)
    finally:
        meter.detach(client)
    return {
        "seconds": time.perf_counter() - started,
        "answers": answers,
        "requests": Counter(meter.requests),
        "count": len(requests),
    }


def _per(phase: dict[str, Any]) -> float:
    return sum(phase["requests"].values()) / phase["count"]


def _call(n: int, number: str | None) -> dict[str, Any]:
    call: dict[str, Any] = {"type": "call", "call_id": f"c-{n}", "connected": True}
    call["bridged_seconds"] = 75
    call["occurred_at"] = datetime.now(UTC).isoformat()
    return call | ({"tracking_number": number} if number else {})


def run(numbers: int = 110, rounds: int = 3) -> dict[str, Any]:
    from goalkeeper import runtime

    assert numbers >= LIVE_VISITS
    with in_process_stack() as stack:
        keys = stack.new_account()["keys"]
        write, site = keys["write"], keys["site"]
        for n in range(numbers):
            body = {"number": _number(n), "kind": "pool", "replaces": OWN}
            assert stack.request("POST", "/v1/numbers", write, body)[0] == 201
        client = runtime.dal().client

        def visit(n: int) -> tuple[str, str, Any]:
            body = {"visitor_id": f"v-{n}", "visit_id": f"s-{n}", "replaces": OWN}
            return "/v1/numbers/assign", site, body

        floor = _timed(
            stack,
            client,
            [
                ("/v1/events", write, {"type": "page_view", "url": f"https://x/{n}"})
                for n in range(LIVE_VISITS)
            ],
        )
        new = _timed(stack, client, [visit(n) for n in range(LIVE_VISITS)])
        held = {answer["number"] for answer in new["answers"]}
        assert len(held) == LIVE_VISITS and all(a["pooled"] for a in new["answers"])
        renew = _timed(stack, client, [visit(n) for n in range(LIVE_VISITS)] * rounds)
        assert all(a["pooled"] for a in renew["answers"])
        late = range(LIVE_VISITS, numbers + 20)
        rest = _timed(stack, client, [visit(n) for n in late])
        refused = [a for a in rest["answers"] if not a["pooled"]]
        assert len(refused) == 20, rest["answers"]

        matched = _timed(
            stack,
            client,
            [("/v1/events", write, _call(n, number)) for n, number in enumerate(sorted(held))],
        )
        spare = _number(numbers + 5)
        assert (
            stack.request(
                "POST", "/v1/numbers", write, {"number": spare, "kind": "pool", "replaces": OWN}
            )[0]
            == 201
        )
        unmatched = _timed(
            stack,
            client,
            [("/v1/events", write, _call(1000 + n, spare)) for n in range(LIVE_VISITS)],
        )
        plain = _timed(
            stack,
            client,
            [("/v1/events", write, _call(2000 + n, None)) for n in range(LIVE_VISITS)],
        )
        stack.evaluate_pending()
    floor_rate = floor["count"] / floor["seconds"]
    return {
        "numbers": numbers,
        "rounds": rounds,
        "floor_events_per_s": floor_rate,
        "new_per_s": new["count"] / new["seconds"],
        "renew_per_s": renew["count"] / renew["seconds"],
        "exhausted_per_s": rest["count"] / rest["seconds"],
        "new_requests": _per(new),
        "new_by_operation": dict(new["requests"]),
        "renew_requests": _per(renew),
        "renew_by_operation": dict(renew["requests"]),
        "matched_call_requests": _per(matched),
        "matched_by_operation": dict(matched["requests"]),
        "unmatched_call_requests": _per(unmatched),
        "plain_call_requests": _per(plain),
        "floor_event_requests": _per(floor),
    }


def report(f: dict[str, Any]) -> list[str]:
    floor = f["floor_events_per_s"]

    def rate(name: str) -> str:
        return f"{fmt(f[name], 0)}/s (x{fmt(f[name] / floor)} the floor)"

    return [
        f"P8 call tracking in process: a pool of {f['numbers']} numbers, "
        f"{LIVE_VISITS} live visits, {f['rounds']} renewal rounds",
        f"  floor: page views one at a time {fmt(floor, 0)}/s "
        f"({fmt(f['floor_event_requests'])} DynamoDB requests each)",
        f"  new holds      {rate('new_per_s')}; requests each {fmt(f['new_requests'])} "
        f"{f['new_by_operation']}",
        f"  renewals       {rate('renew_per_s')}; requests each {fmt(f['renew_requests'])} "
        f"{f['renew_by_operation']}",
        f"  exhausted pool {rate('exhausted_per_s')} (the rest of the pool, then 20 refused)",
        f"  matched call: {fmt(f['matched_call_requests'])} requests "
        f"{f['matched_by_operation']}; unmatched {fmt(f['unmatched_call_requests'])}; "
        f"no tracking number (floor) {fmt(f['plain_call_requests'])}; "
        f"matching adds {fmt(f['matched_call_requests'] - f['plain_call_requests'])}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=110, help="numbers in the pool (>= 100)")
    parser.add_argument("--rounds", type=int, default=3, help="renewals of each live visit")
    args = parser.parse_args()
    for line in report(run(args.numbers, args.rounds)):
        print(line)


if __name__ == "__main__":
    main()
