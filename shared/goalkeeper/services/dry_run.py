"""Trying a goal before saving it: what it would have done over stored events.

A dry-run decides the candidate goal for the account's stored events of a range
exactly as a backfill of it would, and writes nothing. Events come from the day
index (an account's events of one UTC day, in time order), at most
MAX_EVENTS_EXAMINED per request. Matching uses the rules engine and the history
helpers evaluation uses; each match is planned by the de-dup planner with the
account's layouts plus the candidate's, and judged (dedup.judge_in_order) against
the claims stored now, read by exact key, and against the candidate's own earlier
would-count matches. A candidate that `requires` a goal is judged against the
progress items stored now (a requirement a goal of the library already has; for a
goal no goal required yet, none are kept, and every match would be void).

One approximation: a page_views goal counts a visit's page views from the start of
the range, so a visit already under way at `from` is judged on its pages in the
range (evaluation also counts the earlier ones). Tags goals read each contact's
whole tag history, as evaluation does.
"""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from goalkeeper.crediting import Credit
from goalkeeper.dal import Dal
from goalkeeper.dal.decisions import Conversion
from goalkeeper.dal.events import EventItem
from goalkeeper.dedup import (
    ConversionPlan,
    Decision,
    Slot,
    judge_in_order,
    library_layouts,
)
from goalkeeper.history import Occurrence, page_view_occurrences, stored_event, tag_occurrences
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.models.common import iso
from goalkeeper.models.events import EARLIEST_EVENT, MAX_CLOCK_SKEW
from goalkeeper.models.goals import DryRunRequest, Goal, PageViewsRule, TagsRule
from goalkeeper.rules import EVENT_TYPES_BY_KIND, GoalIndex
from goalkeeper.services.evaluation import GoalLibrary, conversion_plans
from goalkeeper.services.goals import list_goals
from goalkeeper.services.reports import date_range
from goalkeeper.steps import Span

MAX_RANGE_DAYS = 31
# Events one dry-run examines at most; when the range holds more, the answer says
# "truncated" and covers the range up to the last event examined.
MAX_EVENTS_EXAMINED = 10_000
SAMPLE_SIZE = 20
# The candidate is no goal of the library: this id names it in its plans only. Claims
# keyed by a goal id are therefore never stored for it, and never read.
CANDIDATE_ID = "dry-run"


def dry_run(
    dal: Dal, account_id: str, request: DryRunRequest, now: datetime, shards: int
) -> dict[str, Any]:
    timezone = dal.accounts.timezone(account_id)
    span = date_range(request.start, request.end, timezone, now, max_days=MAX_RANGE_DAYS)
    # `active` is the library's switch; the dry-run shows what the rule would do when on.
    spec = request.goal.model_copy(update={"active": True})
    goal = Goal.from_spec(spec, CANDIDATE_ID, 1, now, now)
    library = GoalLibrary(
        GoalIndex.build([goal]),
        library_layouts([*list_goals(dal.goals, account_id), goal]),
        timezone,
        AttributionSettings(),  # a dry-run counts decisions; it credits nothing
    )
    start, end = _instants(span.start, span.end, timezone, now)
    # One more than the cap is read, to know whether the range holds more.
    items = _range_events(dal, account_id, start, end, MAX_EVENTS_EXAMINED + 1)
    truncated = len(items) > MAX_EVENTS_EXAMINED
    items = items[:MAX_EVENTS_EXAMINED]
    found = _occurrences(dal, library.index, goal, account_id, items)
    plans = [
        plan
        for occurrence in found
        for plan in conversion_plans(library, account_id, occurrence, shards, Credit.none())
    ]
    marks = [mark for plan in plans for mark in plan.progress_reads()]
    progress = dal.decisions.progress(account_id, marks) if marks else {}
    judged = judge_in_order(plans, _stored_claims(dal, account_id, plans), progress)
    counted = sum(decision.status == "counted" for _, decision in judged)
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "examined": len(items),
        "truncated": truncated,
        "examined_until": items[-1]["occurred_at"] if truncated else None,
        "matched": len(judged),
        "would_count": counted,
        "would_void": len(judged) - counted,
        "sample": _sample(dal, account_id, judged[:SAMPLE_SIZE]),
    }


def _instants(first: date, last: date, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """The range's days in the account's time zone as [start, end) instants, narrowed to
    when events can have occurred (from 2000 to a day ahead of now, see models.events):
    no day outside holds one, and far dates stay clear of datetime's limits."""
    earliest, latest = EARLIEST_EVENT, now + MAX_CLOCK_SKEW
    first = max(first, earliest.date() - timedelta(days=1))
    last = min(last, latest.date() + timedelta(days=1))
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return max(start, earliest), min(end, latest)


def _utc_days(start: datetime, end: datetime) -> list[str]:
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _range_events(
    dal: Dal, account_id: str, start: datetime, end: datetime, cap: int
) -> list[EventItem]:
    """The account's events in [start, end), in time order, day by day from the day
    index; at most `cap`."""
    after, before = iso(start), iso(end)
    items: list[dict[str, Any]] = []
    for number, day in enumerate(_utc_days(start, end)):
        position: str | None = after if number == 0 else None
        while len(items) < cap:
            page = dal.events.day_events(account_id, day, position, cap - len(items), before)
            items += page.items
            if page.cursor is None:
                break
            position = page.cursor["gsi3sk"]
    return items


def _occurrences(
    dal: Dal, index: GoalIndex, goal: Goal, account_id: str, items: list[dict[str, Any]]
) -> list[Occurrence]:
    """The candidate's matches among the examined events, found as evaluation finds them."""
    kinds = EVENT_TYPES_BY_KIND[goal.rule.kind]
    candidates = [item for item in items if item["type"] in kinds]
    if isinstance(goal.rule, PageViewsRule):
        return _page_view_occurrences(index, candidates)
    if isinstance(goal.rule, TagsRule):
        return _tag_occurrences(dal, index, account_id, candidates)
    found = []
    for item in candidates:
        event = stored_event(item)
        goals = index.matching_goals(event)
        if goals:
            found.append(Occurrence(event, item["event_id"], tuple((g, None) for g in goals)))
    return found


def _page_view_occurrences(index: GoalIndex, pages: list[dict[str, Any]]) -> list[Occurrence]:
    """Each visit's N-th page view, counting the visit's pages from the start of the range."""
    visits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in pages:
        visit_id = item["body"].get("visit_id")
        if visit_id:
            visits[visit_id].append(item)
    return [
        occurrence
        for visit_id, visit in visits.items()
        for occurrence in page_view_occurrences(index, 0, visit_id, visit)
        if occurrence.goals
    ]


def _tag_occurrences(
    dal: Dal, index: GoalIndex, account_id: str, changes: list[dict[str, Any]]
) -> list[Occurrence]:
    """The examined tag changes that make a contact come to hold the tags, replayed over
    each contact's whole tag history (one Query per contact, as evaluation reads it)."""
    contacts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in changes:
        if index.needs_contact_tags(stored_event(item)):
            contacts[item["body"]["contact_id"]].append(item)
    found = []
    for contact_id, examined in contacts.items():
        # Examined events are placed in the history even if the index lags behind.
        stored = dal.events.contact_tag_events(account_id, contact_id)
        by_id = {item["event_id"]: item for item in [*stored, *examined]}
        history = sorted(by_id.values(), key=lambda item: item["gsi2sk"])
        ids = {item["event_id"] for item in examined}
        found += [
            occurrence
            for occurrence in tag_occurrences(
                index, history[0]["event_id"], contact_id, history, lambda goal_id: {}
            )
            if occurrence.goals and occurrence.event_id in ids
        ]
    return found


def _stored_claims(dal: Dal, account_id: str, plans: list[ConversionPlan]) -> dict[Slot, Span]:
    """The claim items the plans' checks read, as stored now (BatchGetItem by exact key)."""
    slots = [
        slot
        for plan in plans
        for check in plan.checks
        for slot in check.reads()
        if "goal" not in slot.layout.shape
    ]
    return dal.decisions.claims(account_id, slots)


def _sample(
    dal: Dal, account_id: str, judged: list[tuple[ConversionPlan, Decision]]
) -> list[dict[str, Any]]:
    """The first matches in time order, each void one with what it would duplicate: a
    stored conversion, or an earlier would-count match of this dry-run (in the sample
    too, being earlier)."""
    own = {plan.conversion_id: plan for plan, _ in judged}
    stored_ids = [
        decision.duplicate_of
        for _, decision in judged
        if decision.duplicate_of and decision.duplicate_of not in own
    ]
    stored = {
        conversion.conversion_id: conversion
        for conversion in dal.decisions.conversions(account_id, list(set(stored_ids)))
    }
    return [
        {
            "event_id": plan.event_id,
            "occurred_at": plan.occurred_at,
            "type": plan.attributes["event_type"],
            "visitor_id": plan.visitor_id,
            "status": "would_count" if decision.status == "counted" else "would_void",
            "reason": decision.reason,
            "duplicate_of": _duplicate(decision.duplicate_of, own, stored),
        }
        for plan, decision in judged
    ]


def _duplicate(
    conversion_id: str | None,
    own: dict[str, ConversionPlan],
    stored: dict[str, Conversion],
) -> dict[str, Any] | None:
    if conversion_id is None:
        return None
    if conversion_id in own:  # a match of this dry-run: no conversion, no goal id yet
        plan = own[conversion_id]
        return {
            "conversion_id": None,
            "goal_id": None,
            "event_id": plan.event_id,
            "occurred_at": plan.occurred_at,
        }
    conversion = stored.get(conversion_id)
    return {
        "conversion_id": conversion_id,
        "goal_id": conversion.goal_id if conversion else None,
        "event_id": conversion.event_id if conversion else None,
        "occurred_at": conversion.occurred_at if conversion else None,
    }
