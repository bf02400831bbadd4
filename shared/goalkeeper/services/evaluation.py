"""Deciding goals for one stored event: rules (pure) first, then atomic decisions."""

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from goalkeeper import keys
from goalkeeper.crediting import Credit
from goalkeeper.dal import Dal
from goalkeeper.dal.decisions import Decisions, Sighting
from goalkeeper.dal.funnels import Funnels
from goalkeeper.dal.goals import Goals, LibraryVersion
from goalkeeper.dedup import ConversionPlan, Decision, Layout, library_layouts, plan_conversion
from goalkeeper.history import Occurrence, page_view_occurrences, stored_event, tag_occurrences
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.models.common import local_day
from goalkeeper.models.events import Call, CallRating, Event, TagChange
from goalkeeper.models.goals import Goal
from goalkeeper.rules import GoalIndex
from goalkeeper.services.attribution import credit_conversion
from goalkeeper.services.goals import list_goals
from goalkeeper.services.ledger import call_decided, rating_arrived
from goalkeeper.settings import Settings
from goalkeeper.steps import FunnelShape, Links
from goalkeeper.values import conversion_value

# What an account item that is gone (or never was) stands for: no goals, defaults.
UNKNOWN_ACCOUNT = LibraryVersion(0, "UTC", AttributionSettings())


@dataclass(frozen=True)
class GoalLibrary:
    """An account's goals as evaluation needs them, built once per load."""

    index: GoalIndex
    layouts: frozenset[Layout]
    timezone: str
    attribution: AttributionSettings
    # Prerequisites' and funnels' tracks (goalkeeper.steps).
    links: Links = field(default_factory=Links.none)


def library_links(goals: list[Goal], funnels: Funnels, account_id: str) -> Links:
    """The tracks an account's counted conversions join: the windows each goal is
    required within, and the places of goals in the account's funnels (not deleted)."""
    requirements = [
        (goal.requires.goal_id, goal.requires.within_days)
        for goal in goals
        if goal.requires is not None
    ]
    shapes = [
        FunnelShape(funnel.funnel_id, tuple(funnel.steps), funnel.window_days)
        for funnel in funnels.all(account_id)
        if funnel.active
    ]
    return Links.build(requirements, shapes)


class GoalLibraryCache:
    """Each account's goal library, kept in the warm Lambda and reloaded only when the
    account's library version moved on. Every goal change moves it on in the change's
    own write, and the version is read once per stream batch and account (one strongly
    consistent GetItem), so every event received after a change was answered is
    decided with that change, at the cost of one read per batch and account. One
    stream batch always uses one snapshot of the library."""

    def __init__(self, goals: Goals, funnels: Funnels) -> None:
        self._goals = goals
        self._funnels = funnels
        self._checked: set[str] = set()
        self._entries: dict[str, tuple[LibraryVersion, GoalLibrary]] = {}

    def new_batch(self) -> None:
        self._checked.clear()

    def get(self, account_id: str) -> GoalLibrary:
        cached = self._entries.get(account_id)
        if cached is not None and account_id in self._checked:
            return cached[1]
        version = self._goals.library_version(account_id) or UNKNOWN_ACCOUNT
        if cached is None or cached[0] != version:
            goals = list_goals(self._goals, account_id)
            library = GoalLibrary(
                GoalIndex.build(goals),
                library_layouts(goals),
                version.timezone,
                version.attribution,
                library_links(goals, self._funnels, account_id),
            )
            cached = self._entries[account_id] = (version, library)
        self._checked.add(account_id)
        return cached[1]


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

    def discard(self, key: tuple[str, str, str]) -> None:
        self._seen.pop(key, None)


def count_deferred_sightings(
    decisions: Decisions, sightings: list[Sighting], seen: SeenVisitors
) -> None:
    """Count the sightings a batch deferred, in one write. Their visitors were taken for
    seen when deferred (a batch defers a visitor-day once); when the write fails they
    are forgotten again, so the retried batch, in this warm Lambda too, counts them."""
    try:
        decisions.count_sightings(sightings)
    except Exception:
        for sighting in sightings:
            seen.discard((sighting.account_id, sighting.day, sighting.visitor_id))
        raise
    for sighting in sightings:
        seen.add((sighting.account_id, sighting.day, sighting.visitor_id))
    sightings.clear()


class Evaluator:
    """Evaluation as a warm Lambda keeps it, with the lifetimes of what it keeps: each
    account's goal library, one snapshot per stream batch (GoalLibraryCache); the
    visitors already counted among a day's visitors seen, while the Lambda is warm
    (SeenVisitors); the sightings of a batch's events that reached no goal, counted
    together in one write at the end of the batch. The data access and the settings
    are fetched at each use (`runtime.dal`, `get_settings`), as the handler did."""

    def __init__(self, dal: Callable[[], Dal], settings: Callable[[], Settings]) -> None:
        self._dal = dal
        self._settings = settings
        self.libraries = GoalLibraryCache(dal().goals, dal().funnels)
        self.seen_visitors = SeenVisitors()
        self.deferred_sightings: list[Sighting] = []

    def new_batch(self) -> None:
        self.libraries.new_batch()
        self.deferred_sightings.clear()

    def evaluate(self, item: dict[str, Any]) -> list[Decision]:
        """Decide one stored event of the batch (see evaluate_event_item)."""
        return evaluate_event_item(
            self._dal(),
            self.libraries,
            item,
            self._settings().aggregate_shards,
            self.seen_visitors,
            self.deferred_sightings,
        )

    def count_sightings(self) -> None:
        """Count the batch's deferred sightings, in one write."""
        count_deferred_sightings(self._dal().decisions, self.deferred_sightings, self.seen_visitors)


def occurrences(
    dal: Dal, library: GoalLibrary, account_id: str, event: Event, item: dict[str, Any]
) -> list[Occurrence]:
    """The evaluated event's goals, then the later events whose history rules its
    arrival completed. Only the history a candidate rule needs is read, through
    narrow index ranges; the event itself is placed in it even before the index
    shows it (a secondary index is updated a moment after the table)."""
    event_id = item["event_id"]
    if library.index.needs_visit_pages(event) and event.visit_id:
        sort_key = item["gsi2sk"]  # a page view of a visit is in the visit's history index
        before = dal.events.visit_page_views_before(account_id, event.visit_id, sort_key)
        later = dal.events.visit_page_views_from(account_id, event.visit_id, sort_key)
        pages = [item] + [page for page in later if page["event_id"] != event_id]
        return list(page_view_occurrences(library.index, before, event.visit_id, pages))
    if library.index.needs_contact_tags(event) and isinstance(event, TagChange):
        stored = dal.events.contact_tag_events(account_id, event.contact_id)
        history = sorted(
            [change for change in stored if change["event_id"] != event_id] + [item],
            key=lambda change: change["gsi2sk"],
        )
        contact_id = event.contact_id

        def held(goal_id: str) -> dict[str, int]:
            return dal.decisions.completions(account_id, goal_id, "contact", contact_id)

        return list(tag_occurrences(library.index, event_id, contact_id, history, held))
    return [
        Occurrence(
            event, event_id, tuple((goal, None) for goal in library.index.matching_goals(event))
        )
    ]


def evaluate_event_item(
    dal: Dal,
    libraries: GoalLibraryCache,
    item: dict[str, Any],
    shards: int,
    seen: SeenVisitors | None = None,
    deferred_sightings: list[Sighting] | None = None,
) -> list[Decision]:
    """Decide every goal this event reaches (and the history rules its arrival
    completed for later events), and count its visitor among the day's visitors
    seen. Safe to repeat: decisions are keyed by (event, goal) and a repeat returns
    the earlier decision unchanged; a visitor is counted once per day."""
    account_id = item["account_id"]
    event = stored_event(item)
    library = libraries.get(account_id)
    day = local_day(event.occurred_at, library.timezone)  # type: ignore[arg-type]
    found = occurrences(dal, library, account_id, event, item)
    own, later = found[0], found[1:]
    sighting = None
    seen_key = (account_id, day, event.visitor_id or "")
    if event.visitor_id and (seen is None or seen_key not in seen):
        sighting = Sighting(
            account_id, event.visitor_id, day, keys.shard_of(item["event_id"], shards)
        )
    plans = conversion_plans(
        library, account_id, own, shards, credit(dal, library, account_id, own)
    )
    decisions: list[Decision] = []
    if not plans and sighting is not None and deferred_sightings is not None:
        deferred_sightings.append(sighting)  # counted with the batch's others, in one write
    elif plans or sighting:
        decisions = dal.decisions.decide_event(plans, sighting)
    if seen is not None and event.visitor_id:
        seen.add(seen_key)
    # Sale values after the call (services.ledger): a rating's value restates its call.
    goals = library.index.goals
    if isinstance(event, CallRating):
        rating_arrived(dal, account_id, goals, event, item["event_id"], shards)
    elif isinstance(event, Call):
        call_decided(dal, account_id, goals, event, decisions, shards)
    for occurrence in later:
        decisions += dal.decisions.decide_event(
            conversion_plans(
                library,
                account_id,
                occurrence,
                shards,
                credit(dal, library, account_id, occurrence),
            )
        )
    return decisions


def credit(dal: Dal, library: GoalLibrary, account_id: str, occurrence: Occurrence) -> Credit:
    """What an occurrence's conversions are credited to (read only when it reached a goal)."""
    if not occurrence.goals:
        return Credit.none()
    return credit_conversion(dal.touches, account_id, library.attribution, occurrence.event)


def conversion_plans(
    library: GoalLibrary, account_id: str, occurrence: Occurrence, shards: int, credit: Credit
) -> list[ConversionPlan]:
    """The decisions an occurrence's goals need (evaluation's, and a backfill's), each
    conversion credited with `credit`."""
    event = occurrence.event
    occurred_at: datetime = event.occurred_at  # type: ignore[assignment]
    return [
        plan_conversion(
            account_id=account_id,
            event=event,
            event_id=occurrence.event_id,
            occurred_at=occurred_at,
            goal=goal,
            layouts=library.layouts,
            day=local_day(occurred_at, library.timezone),
            shards=shards,
            value=conversion_value(goal.value, event),
            credit=credit,
            completion=completion,
            links=library.links,
        )
        for goal, completion in occurrence.goals
    ]
