"""Funnel workloads on the in-process stack: a checkout's goals, events built around
one moment, and a history whose funnel numbers are counted by hand (tests of funnels
and of funnel backfills share them)."""

from datetime import datetime, timedelta
from typing import Any

from support.stack import InProcessStack

T = datetime(2026, 11, 10, 10, 0, 0)
RANGE = {"from": "2026-11-01", "to": "2026-11-30"}
LANDING = {
    "name": "Landing",
    "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/landing"},
}
FORM = {"name": "Form", "rule": {"kind": "custom_trigger", "name": "form"}}
THANKS = {
    "name": "Thanks",
    "rule": {"kind": "url", "match": "prefix", "pattern": "https://shop.example/thanks"},
}


def at(seconds: float) -> str:
    return (T + timedelta(seconds=seconds)).isoformat() + "Z"


def page(event_id: str, visitor: str, path: str, seconds: float) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "page_view",
        "visitor_id": visitor,
        "url": f"https://shop.example/{path}",
        "occurred_at": at(seconds),
    }


def trigger(event_id: str, name: str, seconds: float, **who: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "custom_trigger",
        "name": name,
        "occurred_at": at(seconds),
    } | who


def send(stack: InProcessStack, write: str, *events: dict[str, Any]) -> None:
    for event in events:  # one by one: decided in this order
        status, answer = stack.api.request("POST", "/v1/events", write, event)
        assert status == 202, answer
        stack.evaluate_pending()


def stored_conversions(stack: InProcessStack) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (i["event_id"], i["goal_name"]): i for i in stack.items() if i.get("kind") == "conversion"
    }


DAY = 86400


# A three-step checkout (landing, form, thanks; 7-day window), decided in this order.
# Counted by hand: landing 5; form entered 5, converted 3 (v1, v4, v6); thanks entered
# 3, converted 2 (v1, v6). Seconds to the form 300, 1200, 7200; to thanks 60, 1800.
CHECKOUT = [
    # v1: every step (300 s, then 60 s).
    page("v1-l", "v1", "landing", 0),
    trigger("v1-f", "form", 300, visitor_id="v1"),
    page("v1-t", "v1", "thanks", 360),
    # v2 skips the form: the thank-you page is no step for them.
    page("v2-l", "v2", "landing", 0),
    page("v2-t", "v2", "thanks", 3600),
    # v3 fills the form 8 days later, outside the window; so the thank-you page neither.
    page("v3-l", "v3", "landing", 0),
    trigger("v3-f", "form", 8 * DAY, visitor_id="v3"),
    page("v3-t", "v3", "thanks", 8 * DAY + 60),
    # v4 repeats steps (the repeats are void conversions: once per visitor and goal).
    page("v4-l", "v4", "landing", 0),
    page("v4-l2", "v4", "landing", 60),
    trigger("v4-f", "form", 7200, visitor_id="v4"),
    trigger("v4-f2", "form", 7300, visitor_id="v4"),
    # v5 fills the form without landing.
    trigger("v5-f", "form", 0, visitor_id="v5"),
    # v6: every step (1200 s, then 1800 s).
    page("v6-l", "v6", "landing", 0),
    trigger("v6-f", "form", 1200, visitor_id="v6"),
    page("v6-t", "v6", "thanks", 3000),
]
