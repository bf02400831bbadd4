"""Ids that reach a URL: every visitor id the API accepts has a readable trace
(GET /v1/visitors/{visitor_id}/trace), whether or not the client percent-encodes it.
A '/' would split the path, so a visitor id never contains one."""

from typing import Any
from urllib.parse import quote

import pytest

from goalkeeper.dal import Dal
from goalkeeper.models.events import Call
from goalkeeper.services.ingest import event_item
from support.stack import TABLE, InProcessStack


def _page_view(visitor_id: str, number: int = 0) -> dict[str, Any]:
    return {
        "type": "page_view",
        "event_id": f"e-{number}",
        "url": "https://shop.example/",
        "visitor_id": visitor_id,
    }


@pytest.mark.parametrize("visitor_id", ["a/b", "/v-1", "v-1/", "/"])
def test_a_visitor_id_with_a_slash_is_refused_naming_what_is_allowed(
    stack: InProcessStack, visitor_id: str
) -> None:
    write = stack.new_account()["keys"]["write"]
    status, body = stack.api.request("POST", "/v1/events", write, _page_view(visitor_id))
    assert status == 400, body
    (problem,) = body["error"]["fields"]
    assert problem["field"] == "events[0].visitor_id"
    assert "._:@|+=~-" in problem["reason"]
    assert "/" in problem["reason"]
    assert [item for item in stack.items() if item.get("kind") == "event"] == []


# Every character ids may contain (README, Events), alone, twice, and inside an id.
ID_PUNCTUATION = "._:@|/+=~-"
VISITOR_IDS = [
    *(spelling for c in ID_PUNCTUATION for spelling in (c, c * 2, f"v{c}1")),
    "Az09" + ID_PUNCTUATION,
]


def test_every_accepted_visitor_id_has_a_readable_trace(stack: InProcessStack) -> None:
    account = stack.new_account()
    write, read = account["keys"]["write"], account["keys"]["read"]
    for number, visitor_id in enumerate(VISITOR_IDS):
        status, answer = stack.api.request(
            "POST", "/v1/events", write, _page_view(visitor_id, number)
        )
        if status != 202:
            assert "/" in visitor_id, answer
            continue
        # As written, and as encodeURIComponent or quote(safe="") would send it.
        for segment in (visitor_id, quote(visitor_id, safe="")):
            status, trace = stack.api.request("GET", f"/v1/visitors/{segment}/trace", read)
            assert status == 200, (visitor_id, segment, trace)
            assert trace["visitor_id"] == visitor_id
            assert [item["event_id"] for item in trace["items"]] == [f"e-{number}"]


def test_an_event_accepted_before_these_checks_is_still_decided(stack: InProcessStack) -> None:
    """Stored events are read as they were accepted: a visitor id with '/' and a
    tracking number in other digits, both accepted before today's checks, still
    count (evaluation does not dead-letter them)."""
    account = stack.new_account()
    earlier = Call.model_validate(
        {
            "type": "call",
            "event_id": "call-before",
            "occurred_at": "2026-11-01T10:00:00Z",
            "visitor_id": "site.example/v/1",
            "call_id": "c-1",
            "tracking_number": "+4" + "".join(chr(0xFF10 + int(d)) for d in "42079460000"),
            "connected": True,
            "bridged_seconds": 75,
        }
    )
    item = event_item(account["account_id"], earlier, earlier.occurred_at, "req-1", 400)
    assert Dal.open(TABLE, stack.client).events.put_many([item], 1) == [None]  # None: stored now
    stack.evaluate_pending()

    assert not stack.dead_letters.exists() or stack.dead_letters.read_text() == ""
    status, report = stack.api.request(
        "GET",
        "/v1/reports/goals",
        account["keys"]["read"],
        query={"from": "2026-11-01", "to": "2026-11-01"},
    )
    assert status == 200, report
    counted = {goal["name"]: goal["counted"] for goal in report["goals"]}
    assert counted["Call Qualified"] == 1
