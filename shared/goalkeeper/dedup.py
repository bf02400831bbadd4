"""De-duplication planning: which claims a conversion checks and writes. Pure.

A goal's rule applies to events that match that goal, but it looks at the counted
conversions of every goal. A goal checks a *layout*: a key shape (visitor, goal,
transaction reference...) and a window (days, or forever). The rule, whatever order
events arrive and are decided in: a conversion is void exactly when a counted
conversion sharing the values of its shape lies less than `window` days from it, on
either side, and the first decided wins.

A single "last time" per key cannot answer that for a late event, so claims are
bucketed: time is cut into window-sized periods, and one claim item per (layout,
key values, period) remembers the earliest and the latest counted conversion in it
(`lo`, `hi`). Any two conversions in one period are less than a window apart, so a
check asks three items: its own period holds no other event's conversion, the
period before ends (`hi`) at least a window earlier, the period after starts (`lo`)
at least a window later. Every counted conversion widens the lo/hi of its period
in every layout that some goal checks (shapes naming a goal only for that goal),
so later checks see it; lo only moves back and hi only forward, under conditions.
The store turns a plan into one TransactWriteItems whose conditions are the checks.
A plan also carries its steps (goalkeeper.steps): the goal's prerequisite, the goal
tracks and funnel steps a counted conversion joins; their conditions ride in the same
write.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from goalkeeper import keys
from goalkeeper.crediting import Credit
from goalkeeper.models.common import iso
from goalkeeper.models.events import Call, EventBase
from goalkeeper.models.goals import CallRule, Goal
from goalkeeper.steps import FunnelStep, Links, Mark, Span, StepCheck, goal_track, subject_of
from goalkeeper.values import Money

# Canonical order of key names inside a shape, so one claim item per shape.
KEY_ORDER = ("visitor", "goal", "transaction_ref", "visit", "caller", "contact", "call_caller")
Shape = tuple[str, ...]
ONCE_PER_VISIT: Shape = ("goal", "visit")
ONCE_PER_CONTACT: Shape = ("goal", "contact")
# Target calls: the caller had no counted call conversion (of any call goal) in the window.
CALL_CALLER: Shape = ("call_caller",)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def canonical(names: Iterable[str]) -> Shape:
    return tuple(sorted(set(names), key=KEY_ORDER.index))


@dataclass(frozen=True)
class Layout:
    """A key shape with a window: the unit a goal's de-dup rule checks."""

    shape: Shape
    window_days: int | None  # None: forever

    def describe(self) -> str:
        window = "forever" if self.window_days is None else f"{self.window_days} days"
        return f"key {'+'.join(self.shape)} within {window}"

    def bucket(self, at: datetime) -> int:
        if self.window_days is None:
            return 0
        return (at - _EPOCH) // timedelta(days=self.window_days)


@dataclass(frozen=True)
class Slot:
    """One claim item: a layout's period for one set of key values."""

    layout: Layout
    values: tuple[str, ...]
    bucket: int

    def key(self, account_id: str) -> dict[str, str]:
        return keys.claim(
            account_id, self.layout.shape, self.values, self.layout.window_days, self.bucket
        )

    def neighbour(self, step: int) -> "Slot":
        return Slot(self.layout, self.values, self.bucket + step)


@dataclass(frozen=True)
class Check:
    """One de-dup check of a conversion at `at` (sort key `order_key`) in `slot`."""

    slot: Slot
    at: datetime
    order_key: str

    @property
    def windowed(self) -> bool:
        return self.slot.layout.window_days is not None

    def bounds(self) -> tuple[str, str]:
        """The neighbouring periods must end at or before the first, and start at or
        after the second, of these instants."""
        window = timedelta(days=self.slot.layout.window_days or 0)
        return iso(self.at - window), iso(self.at + window)

    def reason(self) -> str:
        return f"duplicate under {self.slot.layout.describe()}"

    def reads(self) -> tuple[Slot, ...]:
        """The claim periods this check's conditions look at."""
        if not self.windowed:
            return (self.slot,)
        return (self.slot, self.slot.neighbour(-1), self.slot.neighbour(1))

    # Each mirrors the write condition of decisions, for a cancellation's item.
    def blocking_in_own(self, claim: Span) -> str | None:
        if not claim.exists or claim.lo_key == claim.hi_key == self.order_key:
            return None
        return claim.lo_conversion if claim.lo_key != self.order_key else claim.hi_conversion

    def blocking_before(self, claim: Span) -> str | None:
        lower, _ = self.bounds()
        ends = claim.hi_at if claim.exists else None
        return claim.hi_conversion if ends is not None and ends > lower else None

    def blocking_after(self, claim: Span) -> str | None:
        _, upper = self.bounds()
        starts = claim.lo_at if claim.exists else None
        return claim.lo_conversion if starts is not None and starts < upper else None


@dataclass(frozen=True)
class Completion:
    """A history rule reached in a scope for the `ordinal`-th time: decided once."""

    scope: str  # "visit" | "contact"
    scope_id: str
    ordinal: int


@dataclass(frozen=True)
class AggregateDelta:
    shard: int
    day: str
    value: Money | None


@dataclass(frozen=True)
class Decision:
    conversion_id: str
    goal_id: str
    status: str  # "counted" | "void"
    reason: str | None = None
    duplicate_of: str | None = None
    replayed: bool = False  # the same (event, goal) had already been decided earlier


@dataclass(frozen=True)
class ConversionPlan:
    account_id: str
    conversion_id: str
    goal_id: str
    event_id: str
    at: datetime
    checks: tuple[Check, ...]
    writes: tuple[Slot, ...]  # claim periods widened if counted (own checks' slots among them)
    aggregate: AggregateDelta
    completion: Completion | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    # The goal's prerequisite (goalkeeper.steps): checked in the deciding write.
    prerequisite: StepCheck | None = None
    # The goal tracks a counted conversion joins (goals that require this one look back).
    progress_writes: tuple[Mark, ...] = ()
    # Its places in funnels: on each step whose previous step was reached, it counts there.
    funnel_steps: tuple[FunnelStep, ...] = ()

    @property
    def occurred_at(self) -> str:
        return iso(self.at)

    @property
    def order_key(self) -> str:
        """Orders conversions by time, then event: distinct for distinct events."""
        return f"{self.occurred_at}#{self.event_id}"

    @property
    def visitor_id(self) -> str | None:
        return self.attributes.get("visitor_id")

    def counted(self) -> Decision:
        return Decision(self.conversion_id, self.goal_id, "counted")

    def void(self, check: Check, duplicate_of: str | None) -> Decision:
        return Decision(
            self.conversion_id, self.goal_id, "void", check.reason(), duplicate_of=duplicate_of
        )

    def unmet(self) -> Decision:
        """Void: no counted conversion of the required goal earlier within the window."""
        assert self.prerequisite is not None
        track = self.prerequisite.track
        return Decision(
            self.conversion_id,
            self.goal_id,
            "void",
            f"prerequisite not met: no counted conversion of goal {track.ident} "
            f"within {track.window_days} days before",
        )

    def step_checks(self) -> tuple[StepCheck, ...]:
        """Its prerequisite and its funnel steps' looks back at the previous step."""
        checks = [self.prerequisite] + [step.after for step in self.funnel_steps]
        return tuple(check for check in checks if check is not None)

    def progress_reads(self) -> tuple[Mark, ...]:
        """Every progress item this plan's conditions may look at."""
        return tuple(mark for check in self.step_checks() for mark in check.marks())

    def progress_written(self) -> tuple[Mark, ...]:
        """Every progress item this plan may widen."""
        funnel_marks = tuple(step.mark for step in self.funnel_steps if step.mark is not None)
        return self.progress_writes + funnel_marks


def goal_layouts(goal: Goal) -> list[Layout]:
    layouts = []
    if goal.dedup.keys:
        layouts.append(Layout(canonical(goal.dedup.keys), goal.dedup.window_days))
    if goal.once_per_visit:
        layouts.append(Layout(ONCE_PER_VISIT, None))
    if goal.once_per_contact:
        layouts.append(Layout(ONCE_PER_CONTACT, None))
    if isinstance(goal.rule, CallRule) and goal.rule.first_time_caller_days:
        layouts.append(Layout(CALL_CALLER, goal.rule.first_time_caller_days))
    return layouts


def library_layouts(goals: Iterable[Goal]) -> frozenset[Layout]:
    """Every layout some goal of the account checks."""
    return frozenset(layout for goal in goals for layout in goal_layouts(goal))


# Every counted conversion writes one claim item per layout of the library whose
# shape names no goal; the rest of a goal's decision takes at most ~20 items, so 60
# keeps one goal's decision well inside one transaction (100 items), with room for
# two libraries saved at once to pass the check together.
MAX_SHARED_LAYOUTS = 60


def shared_layouts(goals: Iterable[Goal]) -> frozenset[Layout]:
    """The layouts every counted conversion of the account writes."""
    return frozenset(layout for layout in library_layouts(goals) if "goal" not in layout.shape)


def key_values(event: EventBase, goal: Goal) -> dict[str, str | None]:
    transaction = event.transaction_facts()
    # The stored call keeps only a keyed hash of the caller (goalkeeper.pii).
    caller = event.caller_hash if isinstance(event, Call) else None
    return {
        "visitor": event.visitor_id,
        "goal": goal.goal_id,
        "transaction_ref": transaction.reference if transaction else None,
        "visit": event.visit_id,
        "caller": caller,
        "contact": event.contact_id,
        "call_caller": caller if isinstance(goal.rule, CallRule) else None,
    }


def plan_claims(
    event: EventBase, event_id: str, at: datetime, goal: Goal, layouts: frozenset[Layout]
) -> tuple[tuple[Check, ...], tuple[Slot, ...]]:
    """The checks of this goal's rules, and the periods a counted conversion widens.

    A check whose key the event lacks (no visitor, no transaction reference...)
    cannot identify a duplicate, so it is skipped and the conversion counts.
    """
    values = key_values(event, goal)
    own = set(goal_layouts(goal))
    order_key = f"{iso(at)}#{event_id}"
    checks, writes = [], []
    for layout in sorted(layouts | own, key=lambda known: (known.shape, known.window_days or 0)):
        if "goal" in layout.shape and layout not in own:
            continue  # only this goal's own checks ever read a claim keyed by its id
        shape_values = tuple(values[name] for name in layout.shape)
        if not _all_known(shape_values):
            continue
        slot = Slot(layout, shape_values, layout.bucket(at))
        writes.append(slot)
        if layout in own:
            checks.append(Check(slot, at, order_key))
    return tuple(checks), tuple(writes)


def _all_known(values: tuple[str | None, ...]) -> TypeGuard[tuple[str, ...]]:
    return all(value is not None for value in values)


def plan_conversion(
    *,
    account_id: str,
    event: EventBase,
    event_id: str,
    occurred_at: datetime,
    goal: Goal,
    layouts: frozenset[Layout],
    day: str,
    shards: int,
    value: Money | None,
    credit: Credit,
    completion: Completion | None = None,
    links: Links | None = None,
) -> ConversionPlan:
    conversion_id = keys.conversion_id(event_id, goal.goal_id)
    # What the conversion records of its event and goal (see dal.decisions.conversion_item).
    attributes: dict[str, Any] = {
        "event_type": getattr(event, "type", None),
        "goal_id": goal.goal_id,
        "goal_version": goal.version,
        "goal_name": goal.name,
        "converting": goal.converting,
        "visitor_id": event.visitor_id,
        "visit_id": event.visit_id,
        "contact_id": event.contact_id,
        # A call's conversions are found by its id when a rating brings the sale value.
        "call_id": getattr(event, "call_id", None),
        # What reports count it under, as credited when it was decided (never rewritten).
        "attribution": credit.attribution.model_dump(exclude_none=True)
        if credit.attribution
        else None,
        "attribution_source": credit.source.value,
    }
    checks, writes = plan_claims(event, event_id, occurred_at, goal, layouts)
    subject = subject_of(event.visitor_id, event.contact_id)
    order_key = f"{iso(occurred_at)}#{event_id}"
    prerequisite = None
    if goal.requires is not None:
        track = goal_track(goal.requires.goal_id, goal.requires.within_days)
        prerequisite = StepCheck(track, subject, occurred_at, order_key)
    progress_writes, funnel_steps = (links or Links.none()).plan(
        goal.goal_id, subject, occurred_at, order_key
    )
    return ConversionPlan(
        account_id=account_id,
        conversion_id=conversion_id,
        goal_id=goal.goal_id,
        event_id=event_id,
        at=occurred_at,
        checks=checks,
        writes=writes,
        aggregate=AggregateDelta(keys.shard_of(event_id, shards), day, value),
        completion=completion,
        attributes=attributes,
        prerequisite=prerequisite,
        progress_writes=progress_writes,
        funnel_steps=funnel_steps,
    )


def judge_in_order(
    plans: Iterable[ConversionPlan],
    stored: Mapping[Slot, Span],
    progress: Mapping[Mark, Span] | None = None,
) -> list[tuple[ConversionPlan, Decision]]:
    """The decisions `plans` would get if decided one after another in time order,
    with nothing written: a goal's dry-run, judged as a backfill of the goal would be.

    Each plan is judged by the conditions its write would carry (decisions)
    against the claims `stored` and the conversions counted before it in this
    sequence: a counted one widens its claim periods as its write would, a void one
    claims nothing. A plan with a prerequisite is judged first against the `progress`
    items as stored (the plans' own conversions never join the track they look at).
    Pure: plain claim states and plans in, decisions out.
    """
    claims = dict(stored)
    judged = []
    for plan in sorted(plans, key=lambda plan: plan.order_key):
        if plan.prerequisite is not None and plan.prerequisite.judge(progress or {}) is None:
            judged.append((plan, plan.unmet()))
            continue
        decision = _judge(plan, claims)
        if decision.status == "counted":
            for slot in plan.writes:
                claims[slot] = _widened(claims.get(slot, Span()), plan)
        judged.append((plan, decision))
    return judged


def _judge(plan: ConversionPlan, claims: Mapping[Slot, Span]) -> Decision:
    empty = Span()
    for check in plan.checks:
        blocking = check.blocking_in_own(claims.get(check.slot, empty))
        if blocking is None and check.windowed:
            blocking = check.blocking_before(
                claims.get(check.slot.neighbour(-1), empty)
            ) or check.blocking_after(claims.get(check.slot.neighbour(1), empty))
        if blocking is not None:
            return plan.void(check, blocking)
    return plan.counted()


def _widened(claim: Span, plan: ConversionPlan) -> Span:
    """The claim once `plan`'s counted conversion is recorded in it (lo moves back, hi on)."""
    lo = {"lo_key": plan.order_key, "lo_at": plan.occurred_at, "lo_conversion": plan.conversion_id}
    hi = {"hi_key": plan.order_key, "hi_at": plan.occurred_at, "hi_conversion": plan.conversion_id}
    if claim.hi_key is None:  # no period yet (see Span.exists)
        return Span(**lo, **hi)
    widened = claim
    if claim.lo_key is not None and plan.order_key < claim.lo_key:
        widened = replace(widened, **lo)
    if plan.order_key > claim.hi_key:
        widened = replace(widened, **hi)
    return widened
