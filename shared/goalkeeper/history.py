"""Rules that read history (page views of a visit, tags of a contact), whatever order
events arrive in. Pure: stored events in, occurrences out.

Such a rule is reached by one event of the history in time order (the visit's N-th
page view; the tag change that makes a contact hold the tags). Events are stored
and evaluated in any order, so when one is evaluated the history may already hold
later events, and an event evaluated earlier may have seen an incomplete history.
Each evaluation therefore replays the stored history and decides the occurrences
it finds undecided: the occurrence's event carries the conversion, and a completion
claim (per goal, scope and ordinal) makes each one count once, whichever evaluation
decides it first. The last of a history's events to be evaluated sees all of them,
so no occurrence is missed.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from goalkeeper.dedup import Completion
from goalkeeper.models.events import Event, TagChange
from goalkeeper.models.goals import Goal, PageViewsRule, TagsRule
from goalkeeper.rules import GoalIndex, RuleContext


@cache
def _event_adapter() -> TypeAdapter[Event]:
    """Built at first use (~15 ms): the ingest function imports this module for dry-runs
    and backfills, but most of its cold starts only take events in."""
    return TypeAdapter(Event)


def stored_event(item: dict[str, Any]) -> Event:
    return _event_adapter().validate_python(item["body"])


def stored_tag_change(item: dict[str, Any]) -> TagChange:
    """An event of a contact's tag history (the index of contacts holds tag changes only)."""
    return TagChange.model_validate(item["body"])


@dataclass(frozen=True)
class Occurrence:
    """Goals one event reached, each with the completion it takes (history rules)."""

    event: Event
    event_id: str
    goals: tuple[tuple[Goal, Completion | None], ...]


def _reads_history(goal: Goal) -> bool:
    return isinstance(goal.rule, PageViewsRule | TagsRule)


def page_view_occurrences(
    index: GoalIndex, pages_before: int, visit_id: str, pages_from: Sequence[dict[str, Any]]
) -> Iterator[Occurrence]:
    """The evaluated page view (first of `pages_from`) and the later stored ones of its
    visit. A page views rule is reached once per visit, by its N-th page view."""
    reached: set[str] = set()
    for position, item in enumerate(pages_from, start=pages_before + 1):
        event = stored_event(item)
        goals: list[tuple[Goal, Completion | None]] = []
        for goal in index.matching_goals(event, RuleContext(visit_page_count=position)):
            if not _reads_history(goal):
                if position == pages_before + 1:
                    goals.append((goal, None))
            elif goal.goal_id not in reached:
                reached.add(goal.goal_id)
                goals.append((goal, Completion("visit", visit_id, 1)))
        if goals or position == pages_before + 1:
            yield Occurrence(event, item["event_id"], tuple(goals))


def tag_occurrences(
    index: GoalIndex,
    evaluated_id: str,
    contact_id: str,
    history: Sequence[dict[str, Any]],
    held: Callable[[str], Mapping[str, int]],
) -> Iterator[Occurrence]:
    """The evaluated tag change, then the stored ones of its contact that carry an entry
    into a tags rule not yet decided. Replayed from the contact's first change, a rule
    is entered each time the contact comes to satisfy it; `held(goal_id)` gives the
    entries already decided (event id -> ordinal). A late change can move an entry to
    another event, so a goal gets new conversions only for entries beyond those
    decided: never two for one entry, and one for each entry the history shows."""
    tags: frozenset[str] = frozenset()
    entered: dict[str, list[str]] = defaultdict(list)
    goals: dict[str, Goal] = {}
    events: dict[str, TagChange] = {}
    for item in history:
        event = stored_tag_change(item)
        events[item["event_id"]] = event
        after = (tags - set(event.removed)) | set(event.added)
        context = RuleContext(contact_tags_before=tags, contact_tags_after=after)
        for goal in index.matching_goals(event, context):
            entered[goal.goal_id].append(item["event_id"])
            goals[goal.goal_id] = goal
        tags = after
    carried: dict[str, list[tuple[Goal, Completion | None]]] = defaultdict(list)
    for goal_id, entries in entered.items():
        decided = held(goal_id)
        undecided = [event_id for event_id in entries if event_id not in decided]
        fresh = undecided[: max(0, len(entries) - len(decided))]
        for ordinal, event_id in enumerate(fresh, start=max(decided.values(), default=0) + 1):
            carried[event_id].append((goals[goal_id], Completion("contact", contact_id, ordinal)))
    own = tuple(carried.pop(evaluated_id, ()))
    yield Occurrence(events[evaluated_id], evaluated_id, own)
    for event_id in events:  # in time order, as replayed
        if event_id in carried:
            yield Occurrence(events[event_id], event_id, tuple(carried[event_id]))
