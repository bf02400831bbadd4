"""Deciding goals for one stored event: rules (pure) first, then atomic decisions."""

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from goalkeeper import keys
from goalkeeper.decision_writes import Sighting
from goalkeeper.dedup import Decision, Shape, library_shapes, plan_conversion
from goalkeeper.models.common import local_day
from goalkeeper.models.events import Event, EventBase, TagChange
from goalkeeper.rules import GoalIndex, RuleContext
from goalkeeper.services.goals import list_goals
from goalkeeper.storage import Store
from goalkeeper.values import conversion_value

_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


@dataclass(frozen=True)
class GoalLibrary:
    """An account's goals as evaluation needs them, built once per load."""

    index: GoalIndex
    shapes: frozenset[Shape]
    timezone: str


class GoalLibraryCache:
    """Keeps each account's goal library in the warm Lambda for `ttl` seconds,
    so evaluation reads the library once per TTL, not once per event; a goal
    change is picked up within the TTL. One stream batch always uses one
    snapshot of the library, whatever the TTL (even 0)."""

    def __init__(self, store: Store, ttl: float, clock: Callable[[], float] = time.monotonic):
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._batch = 0
        self._entries: dict[str, tuple[float, int, GoalLibrary]] = {}

    def new_batch(self) -> None:
        self._batch += 1

    def get(self, account_id: str) -> GoalLibrary:
        now = self._clock()
        cached = self._entries.get(account_id)
        if cached and (now - cached[0] < self._ttl or cached[1] == self._batch):
            return cached[2]
        account = self._store.get_account(account_id) or {}
        goals = list_goals(self._store, account_id)
        library = GoalLibrary(
            GoalIndex.build(goals), library_shapes(goals), account.get("timezone", "UTC")
        )
        self._entries[account_id] = (now, self._batch, library)
        return library


class SeenVisitors:
    """(account, day, visitor) this warm Lambda has already counted among the day's
    visitors seen, so repeat events of a visitor cost no extra write. Bounded LRU;
    forgetting one only costs a conditional write that finds its marker."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def __contains__(self, key: tuple[str, str, str]) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[str, str, str]) -> None:
        self._seen[key] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


def count_deferred_sightings(store: Store, sightings: list[Sighting], seen: SeenVisitors) -> None:
    store.count_sightings(sightings)
    for sighting in sightings:
        seen.add((sighting.account_id, sighting.day, sighting.visitor_id))
    sightings.clear()


def stored_event(item: dict[str, Any]) -> EventBase:
    return _event_adapter.validate_python(item["body"])  # type: ignore[return-value]


def rule_context(
    store: Store, library: GoalLibrary, account_id: str, event: EventBase, sort_key: str
) -> RuleContext:
    """Only the history a candidate rule needs is read, through narrow index ranges."""
    context: dict[str, Any] = {}
    if library.index.needs_visit_pages(event) and event.visit_id:  # type: ignore[arg-type]
        earlier = store.visit_page_views_before(account_id, event.visit_id, sort_key)
        context["visit_page_count"] = earlier + 1
    if library.index.needs_contact_tags(event) and isinstance(event, TagChange):  # type: ignore[arg-type]
        before: set[str] = set()
        for item in store.contact_tag_events_before(account_id, event.contact_id, sort_key):
            before = _apply_tags(
                before, item["body"].get("added", []), item["body"].get("removed", [])
            )
        context["contact_tags_before"] = frozenset(before)
        context["contact_tags_after"] = frozenset(_apply_tags(before, event.added, event.removed))
    return RuleContext(**context)


def _apply_tags(tags: set[str], added: list[str], removed: list[str]) -> set[str]:
    return (tags - set(removed)) | set(added)


def evaluate_event_item(
    store: Store,
    libraries: GoalLibraryCache,
    item: dict[str, Any],
    shards: int,
    seen: SeenVisitors | None = None,
    deferred_sightings: list[Sighting] | None = None,
) -> list[Decision]:
    """Decide every goal this event reaches, and count its visitor among the day's
    visitors seen. Safe to repeat: decisions are keyed by (event, goal) and a repeat
    returns the earlier decision unchanged; a visitor is counted once per day."""
    account_id = item["account_id"]
    event_id = item["event_id"]
    event = stored_event(item)
    occurred_at: datetime = event.occurred_at  # type: ignore[assignment]
    library = libraries.get(account_id)
    day = local_day(occurred_at, library.timezone)
    sort_key = keys.trace_sk(item["occurred_at"], "E", event_id)
    context = rule_context(store, library, account_id, event, sort_key)
    plans = [
        plan_conversion(
            account_id=account_id,
            event=event,
            event_id=event_id,
            occurred_at=occurred_at,
            goal=goal,
            shapes=library.shapes,
            day=day,
            shards=shards,
            value=conversion_value(goal.value, event),
        )
        for goal in library.index.matching_goals(event, context)  # type: ignore[arg-type]
    ]
    sighting = None
    seen_key = (account_id, day, event.visitor_id or "")
    if event.visitor_id and (seen is None or seen_key not in seen):
        sighting = Sighting(account_id, event.visitor_id, day, keys.shard_of(event_id, shards))
    if not plans and sighting is not None and deferred_sightings is not None:
        deferred_sightings.append(sighting)  # counted with the batch's others, in one write
        return []
    decisions = store.decide_event(plans, sighting) if plans or sighting else []
    if seen is not None and event.visitor_id:
        seen.add(seen_key)
    return decisions
