"""The real `segment-analytics-python` client, unchanged, pointed at `goalkeeper serve`
(host = API + "/segment"): its track, page and identify calls reach the visitor trace
and the goals; a message we refuse reaches the client as Segment's 400."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from support.served import ServedStack

ADMIN = "segment-e2e-admin"
GOALS = [
    {"name": "Thank you", "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"}},
    {"name": "Sale", "rule": {"kind": "transaction", "min_value": "10"}},
]
REPORT = "/v1/reports/goals?from=2026-11-01&to=2026-11-30"
AT = datetime(2026, 11, 12, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served() -> Iterator[ServedStack]:
    # One engine: the protocol is under test here, not the table (test_serve_engines).
    stack = ServedStack(ADMIN)
    yield stack
    if stack.process.poll() is None:
        stack.stop()


def _counted(served: ServedStack, read: str) -> dict[str, int]:
    deadline = time.monotonic() + 20
    while True:
        status, report = served.request("GET", REPORT, read)
        assert status == 200, report
        ours = {goal["name"] for goal in GOALS}  # not the default call goals
        counted = {row["name"]: row["counted"] for row in report["goals"] if row["name"] in ours}
        if all(counted.values()) or time.monotonic() > deadline:
            return counted
        time.sleep(0.3)


def test_the_segment_client_sends_unchanged(served: ServedStack) -> None:
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write, read = account["keys"]["write"], account["keys"]["read"]
    for goal in GOALS:
        assert served.request("POST", "/v1/goals", write, goal)[0] == 201

    errors: list[Any] = []
    client = Client(
        write,
        host=served.base_url + "/segment",
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,
    )
    campaign = {"campaign": {"name": "winter", "source": "google", "medium": "cpc"}}
    client.page(
        anonymous_id="anon-7",
        name="Boots",
        properties={"url": "https://shop.example/boots", "title": "Boots"},
        context=campaign,
        timestamp=AT,
    )
    client.identify(user_id="contact-7", anonymous_id="anon-7", traits={"email": "a@b.example"})
    client.track(
        anonymous_id="anon-7",
        event="Order Completed",
        properties={"order_id": "o-7", "revenue": 49.9, "currency": "EUR"},
        timestamp=AT,
    )
    client.page(
        anonymous_id="anon-7", properties={"url": "https://shop.example/thank-you"}, timestamp=AT
    )
    client.shutdown()  # sends what it queued as /v1/batch requests, then stops its thread
    assert errors == []

    status, trace = served.request("GET", "/v1/visitors/anon-7/trace", read)
    assert status == 200, trace
    kinds = [(i["type"], i.get("url")) for i in trace["items"] if i["kind"] == "event"]
    assert ("transaction", None) in kinds
    assert ("page_view", "https://shop.example/thank-you") in kinds
    assert ("custom_trigger", None) in kinds  # the identify
    landing = next(i for i in trace["items"] if i.get("url") == "https://shop.example/boots")
    assert landing["attribution"] == {"campaign": "winter", "source": "google", "medium": "cpc"}
    assert _counted(served, read) == {"Thank you": 1, "Sale": 1}

    # sync_mode posts each call at once; a page without a URL is refused as Segment
    # refuses: 400 with a reason, which the client raises.
    blocking = Client(write, host=served.base_url + "/segment", sync_mode=True)
    blocking.track(user_id="contact-7", event="Newsletter", properties={"list": "weekly"})
    with pytest.raises(APIError) as refused:
        blocking.page(anonymous_id="anon-7", name="Home")
    assert refused.value.status == 400
    assert "properties.url" in str(refused.value.message)
