"""A seeded mix of adjustments of counted conversions (the value ledger) with
redeliveries: the same adjustment sent twice in a row, two different adjustments of one
conversion back to back, and resends of adjustments already made. They are sent one at
a time: moto in process has no lock, so racing them there would test moto's races, not
our conditions (tests/e2e/test_serve_e2e.py races adjustments over `goalkeeper serve`)."""

import random
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from goalkeeper import counters
from support.stack import InProcessStack

CURRENCIES = ("USD", "EUR", "GBP")


def _body(rng: random.Random, number: int, conversion: dict[str, Any]) -> dict[str, Any]:
    if rng.random() < 0.4:
        return {"adjustment_id": f"adj-{number}", "type": "retract", "reason": "refund"}
    body: dict[str, Any] = {
        "adjustment_id": f"adj-{number}",
        "type": "restate",
        "value": f"{rng.randrange(0, 90000) / 100:.2f}",
        "reason": "later value",
    }
    if not conversion.get("value_currency") or (
        conversion["goal_name"] == "Big sale" and rng.random() < 0.5
    ):
        body["currency"] = rng.choice(CURRENCIES)  # a sale may close in another currency
    if conversion["goal_name"] == "Thank-you page":  # a fixed value: the goal's currency
        body.pop("currency", None)
    return body


def adjust_some(
    stack: InProcessStack, write: str, conversions: list[dict[str, Any]], seed: int, count: int
) -> int:
    """Sends `count` adjustments (some twice, some followed by another of the same
    conversion, a fifth resent afterwards); how many were made (201)."""
    rng = random.Random(seed)
    counted = sorted(
        (c for c in conversions if c["status"] == "counted"), key=lambda c: c["conversion_id"]
    )
    requests = []
    for number in range(count):
        conversion = rng.choice(counted)
        body = _body(rng, number, conversion)
        requests.append((conversion["conversion_id"], body))
        roll = rng.random()
        if roll < 0.2:
            requests.append((conversion["conversion_id"], body))  # the same, sent again
        elif roll < 0.4:  # another adjustment of the same conversion
            requests.append((conversion["conversion_id"], _body(rng, count + number, conversion)))
    resends = rng.sample(requests, len(requests) // 5)

    def send(request: tuple[str, dict[str, Any]]) -> int:
        conversion_id, body = request
        path = f"/v1/conversions/{conversion_id}/adjustments"
        status, answer = stack.api.request("POST", path, write, body)
        assert status in (200, 201, 409), (body, answer)  # 409: retracted before it
        return status

    made = sum(send(request) == 201 for request in requests)
    for request in resends:  # redelivery: answered by the first, nothing changes
        assert send(request) in (200, 409)
    return made


def recount_adjustments(
    items: list[dict[str, Any]],
) -> tuple[dict[tuple, Counter], dict[tuple, Counter]]:
    """The adjustments' changes per (day, goal) and per (day, goal, labels), from the
    adjustment items; each conversion's net value checked against its adjustments."""
    daily: dict[tuple, Counter] = defaultdict(Counter)
    attributed: dict[tuple, Counter] = defaultdict(Counter)
    by_conversion: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        if item.get("kind") != "adjustment":
            continue
        cell = (item["day"], item["goal_id"])
        labels = tuple(counters.attribution_labels(item.get("attribution")).values())
        for currency, delta in item["deltas"].items():
            daily[cell][f"adjusted_{currency}"] += delta
            attributed[(*cell, labels)][f"adjusted_{currency}"] += delta
        if item["type"] == "retract":
            daily[cell]["retracted"] += 1
        by_conversion[(item["account_id"], item["conversion_id"])].append(item)
    for conversion in (i for i in items if i.get("kind") == "conversion"):
        # Conversion ids are unique per account (another test's account may hold one alike).
        mine = by_conversion[(conversion["account_id"], conversion["conversion_id"])]
        made = sorted(mine, key=lambda a: a["sequence"])
        assert [a["sequence"] for a in made] == list(range(1, len(made) + 1))
        assert int(conversion.get("adjustments", 0)) == len(made)
        net: Counter = Counter()
        if conversion.get("value_currency"):
            net[conversion["value_currency"]] += conversion["value_amount"]
        for adjustment in made:
            net.update(adjustment["deltas"])
        if made:
            expected = (
                {conversion["net_currency"]: conversion["net_amount"]}
                if conversion.get("net_currency")
                else {}
            )
            assert {c: Decimal(a) for c, a in net.items() if a} == {
                c: a for c, a in expected.items() if a
            }
    return daily, attributed
