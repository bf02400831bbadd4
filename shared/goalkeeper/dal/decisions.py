"""Decisions: conversions, de-dup claims, history rules' completions and visitor
markers, with the report counters they move, all written by the one transaction
that decides (`Decisions`); the transactions themselves are built by pure code
(items, not requests), tested on their own.

One transaction decides a group of the goals one event reached (every goal, unless
they need more than DynamoDB's 100 items; see `chunks`). Its items, by tag:
  ("conversion", goal)   Put of the conversion, only if not decided before
  ("completion", goal)   Put of a history rule's completion, once per ordinal
  ("claim", slot)        Update widening the claim period a counted conversion
                         falls in, conditioned on every check of that period
  ("before"|"after", s)  ConditionCheck of the periods around a windowed check
  ("converted", goal)    Put of "this visitor converted this goal this day"
  ("goal_day", goal)     Update of the goal's day counters
  ("attribution", goal)  Update of the goal's counters for the event's attribution
  ("seen", ...) ("day", ...)  "this visitor was seen this day" and its day counter
  ("progress", mark)     ConditionCheck of a step's earlier conversion (a goal's
                         prerequisite, a funnel's previous step), or Update widening a
                         track's period a counted conversion joins (goalkeeper.steps)
  ("funnel", funnel)     Update of the funnel's day counters (steps reached, seconds)
Counters change in the same write that decides, so they always equal a recount
of the conversion items. What each goal needs to be decided atomically with lives
in one transaction; goals of one event never void each other (a claim period that
holds only this event's conversions does not block), so splitting an event's goals
over several transactions decides each exactly as one transaction would.

A funnel created later is filled by putting stored counted conversions on its steps
(`Decisions.put_on_funnel_step`, a funnel backfill): the conversion's record of the
funnel (only if it holds none yet), the step's condition, its track and the funnel's
counters, in one transaction of their own.
"""

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from goalkeeper import counters, keys
from goalkeeper.dal.client import (
    TRANSACTION_CONFLICT_ATTEMPTS,
    Table,
    attempts,
    back_off,
)
from goalkeeper.dal.transactions import (
    MAX_ITEMS,
    Expression,
    Reason,
    Transaction,
    TransactionCancelled,
)
from goalkeeper.dedup import Check, ConversionPlan, Decision, Slot
from goalkeeper.models.common import iso
from goalkeeper.steps import FunnelStep, Mark, Met, Span, StepCheck, seconds_bucket


@dataclass(frozen=True)
class Sighting:
    """An event's visitor, to be counted once among the day's visitors seen."""

    account_id: str
    visitor_id: str
    day: str
    shard: int


@dataclass
class DecisionState:
    """What earlier attempts at deciding one group of an event's goals have learned."""

    plans: list[ConversionPlan]
    sighting: Sighting | None = None
    decided: dict[str, Decision] = field(default_factory=dict)
    voids: dict[str, Decision] = field(default_factory=dict)
    # A history rule's completion another event already holds: no conversion at all.
    superseded: set[str] = field(default_factory=set)
    visitor_already_counted: set[str] = field(default_factory=set)
    claims: dict[Slot, Span] = field(default_factory=dict)
    # Progress items as last read or returned by a cancellation (goalkeeper.steps).
    progress: dict[Mark, Span] = field(default_factory=dict)

    @property
    def pending(self) -> list[ConversionPlan]:
        return [
            plan
            for plan in self.plans
            if plan.goal_id not in self.decided and plan.goal_id not in self.superseded
        ]

    @property
    def done(self) -> bool:
        return not self.pending and self.sighting is None

    def decision(self, plan: ConversionPlan) -> Decision:
        """What this attempt writes for `plan`: void when its prerequisite is not met (as
        far as the progress items are known; the write's conditions make sure), void when
        a claim blocks it, else counted."""
        if plan.prerequisite is not None and plan.prerequisite.judge(self.progress) is None:
            return plan.unmet()
        return self.voids.get(plan.goal_id) or plan.counted()

    def counted(self) -> list[ConversionPlan]:
        return [plan for plan in self.pending if self.decision(plan).status == "counted"]

    def funnel_steps(self, plan: ConversionPlan) -> list[tuple[FunnelStep, Met | None]]:
        """The funnel steps a counted conversion reaches, each with the previous step's
        conversion it rests on (None on a first step)."""
        reached: list[tuple[FunnelStep, Met | None]] = []
        for step in plan.funnel_steps:
            if step.after is None:
                reached.append((step, None))
            elif (met := step.after.judge(self.progress)) is not None:
                reached.append((step, met))
        return reached

    def transaction(self, table: str) -> Transaction:
        transaction = Transaction(table)
        counted = self.counted()
        reached = {plan.goal_id: self.funnel_steps(plan) for plan in counted}
        for plan in self.pending:
            decision = self.decision(plan)
            item = conversion_item(plan, decision)
            if decision.status == "counted":
                item |= self._step_attributes(plan, reached[plan.goal_id])
            transaction.create(("conversion", plan.goal_id), item, return_old=True)
            if plan.completion is not None:
                _add_completion(transaction, plan)
        self._add_progress(transaction, counted, reached)
        for slot, write in _claims_written(counted).items():
            _add_claim(transaction, slot, write, self.claims.get(slot, Span()))
            if write.checks and write.checks[0].windowed:
                _add_neighbour_checks(transaction, write.recorded, write.checks[0])
        converted = [plan for plan in counted if self._marks_visitor(plan)]
        for plan in converted:
            transaction.create(("converted", plan.goal_id), _marker(_converted_key(plan)))
        for plan in self.pending:
            _add_goal_day(transaction, plan, plan in counted, plan in converted)
        for plan in counted:
            _add_attribution(transaction, plan)
        if self.sighting is not None:
            _add_sightings(transaction, [self.sighting])
        return transaction

    def _step_attributes(
        self, plan: ConversionPlan, reached: list[tuple[FunnelStep, Met | None]]
    ) -> dict[str, Any]:
        """What a counted conversion records of its steps: the required goal's conversion
        it rests on, and its funnel steps (with the previous step's conversion and the
        seconds since it), as the write's conditions guarantee them."""
        attributes: dict[str, Any] = {}
        if plan.prerequisite is not None:
            met = plan.prerequisite.judge(self.progress)
            assert met is not None  # counted only when met
            attributes["prerequisite_conversion"] = met.conversion
        if reached:
            attributes["funnels"] = {
                step.funnel_id: _funnel_record(step, met) for step, met in reached
            }
        return attributes

    def _add_progress(
        self,
        transaction: Transaction,
        counted: list[ConversionPlan],
        reached: dict[str, list[tuple[FunnelStep, Met | None]]],
    ) -> None:
        """The steps' conditions, the tracks counted conversions join, and the funnels'
        day counters. Plans of one event share its time, so two checks of one item ask
        the same thing (one condition); an item written here is never checked here
        (`chunks` keeps such goals apart)."""
        checks: list[StepCheck] = [
            plan.prerequisite for plan in self.pending if plan.prerequisite is not None
        ]
        for plan in counted:
            checks += [step.after for step in plan.funnel_steps if step.after is not None]
        conditioned: set[Mark] = set()
        for check in checks:
            for mark, condition, expression in _step_conditions(check, self.progress):
                if mark not in conditioned:
                    conditioned.add(mark)
                    key = mark.key(self.plans[0].account_id)
                    transaction.check(("progress", mark), key, condition, expression)
        per_funnel: dict[str, list[tuple[ConversionPlan, FunnelStep, Met | None]]] = {}
        for plan in counted:
            marks = list(plan.progress_writes)
            for step, met in reached[plan.goal_id]:
                if step.mark is not None:
                    marks.append(step.mark)
                per_funnel.setdefault(step.funnel_id, []).append((plan, step, met))
            for mark in marks:
                _widen(
                    transaction,
                    ("progress", mark),
                    mark.key(plan.account_id),
                    plan,
                    self.progress.get(mark, Span()),
                    kind="progress",
                )
        for funnel_id, steps in per_funnel.items():
            _add_funnel_day(transaction, funnel_id, steps)

    def _marks_visitor(self, plan: ConversionPlan) -> bool:
        return bool(plan.visitor_id) and plan.goal_id not in self.visitor_already_counted

    def succeeded(self) -> None:
        for plan in self.pending:
            self.decided[plan.goal_id] = self.decision(plan)
        self.sighting = None

    def learn(self, reasons: dict[Hashable, Reason]) -> bool:
        """Record what a cancellation revealed; False when it revealed nothing new."""
        learned = False
        plans = {plan.goal_id: plan for plan in self.pending}
        for tag, reason in reasons.items():
            if not reason.failed_condition:
                continue
            match tag:  # the tags this module gives its items (see the module's doc)
                case ("conversion", str(goal_id)):
                    self.decided[goal_id] = _already_decided(plans[goal_id], reason.item)
                case ("completion", str(goal_id)):
                    self.superseded.add(goal_id)
                case ("converted", str(goal_id)):
                    self.visitor_already_counted.add(goal_id)
                case ("seen", *_):
                    self.sighting = None  # an earlier event already counted this visitor today
                case ("claim" | "before" | "after" as kind, Slot() as slot):
                    learned |= self._learn_claim(kind, slot, Span.of(reason.item))
                    continue
                case ("progress", Mark() as mark):
                    span = Span.of(reason.item)
                    if self.progress.get(mark) == span:
                        continue
                    self.progress[mark] = span
                case _:
                    continue
            learned = True
        return learned

    def _learn_claim(self, kind: str, slot: Slot, claim: Span) -> bool:
        learned = False
        if kind == "claim" and self.claims.get(slot) != claim:
            self.claims[slot] = claim
            learned = True
        for plan in self.counted():
            for check in plan.checks:
                blocking = _blocking(kind, slot, check, claim)
                if blocking is not None and plan.goal_id not in self.voids:
                    self.voids[plan.goal_id] = plan.void(check, blocking)
                    learned = True
        return learned

    def results(self) -> list[Decision]:
        return [self.decided[plan.goal_id] for plan in self.plans if plan.goal_id in self.decided]


def conversion_item(plan: ConversionPlan, decision: Decision) -> dict[str, Any]:
    """The conversion of one (event, goal): what it records, and how it was decided."""
    item = (
        keys.conversion(plan.account_id, plan.conversion_id)
        | {
            "kind": "conversion",
            "account_id": plan.account_id,
            "conversion_id": plan.conversion_id,
            "event_id": plan.event_id,
            "goal_id": plan.goal_id,
            "occurred_at": plan.occurred_at,
            "day": plan.aggregate.day,
        }
        | plan.attributes
        | {"status": decision.status}
    )
    if plan.visitor_id:
        item["gsi1pk"] = keys.visitor_trace_pk(plan.account_id, plan.visitor_id)
        item["gsi1sk"] = keys.trace_sk(plan.occurred_at, "G", plan.conversion_id)
    if decision.status == "void":
        item["reason"] = decision.reason
        item["duplicate_of"] = decision.duplicate_of
    else:
        if plan.aggregate.value is not None:
            item["value_amount"] = plan.aggregate.value.amount
            item["value_currency"] = plan.aggregate.value.currency
        if plan.attributes.get("event_type") == "call" and plan.attributes.get("call_id"):
            # A later rating of the call restates its value (services.ledger).
            item["gsi2pk"] = keys.call_conversions_pk(plan.account_id, plan.attributes["call_id"])
            item["gsi2sk"] = keys.trace_sk(plan.occurred_at, "G", plan.conversion_id)
        if (plan.attributes.get("attribution") or {}).get("click_id"):
            # The Google Ads export reads an account day's conversions of ad clicks.
            item["gsi3pk"] = keys.ads_conversions_day_pk(plan.account_id, plan.aggregate.day)
            item["gsi3sk"] = keys.trace_sk(plan.occurred_at, "G", plan.conversion_id)
    return item


def _already_decided(plan: ConversionPlan, item: dict[str, Any]) -> Decision:
    """The decision a stored conversion of the plan's (event, goal) holds."""
    return Decision(
        plan.conversion_id,
        plan.goal_id,
        item.get("status", "counted"),
        reason=item.get("reason"),
        duplicate_of=item.get("duplicate_of"),
        replayed=True,
    )


def chunks(
    plans: list[ConversionPlan], sighting: Sighting | None, table: str
) -> list[DecisionState]:
    """The event's goals in groups whose transactions fit DynamoDB's item limit.

    A group is sized by the most items any attempt can write (`_most_items`): an
    attempt that learns a claim blocks writes less, but one that learns a step is met
    writes more (a counted conversion instead of a void one), so a group is sized as
    if every step were met, plus one condition per step (a step not met checks two
    items, a step met one).
    """
    groups: list[DecisionState] = []
    current = DecisionState([], sighting)
    for plan in plans:
        candidate = DecisionState([*current.plans, plan], current.sighting)
        if current.plans and (
            _entangled(current.plans, plan) or _most_items(candidate, table) > MAX_ITEMS
        ):
            groups.append(current)
            candidate = DecisionState([plan])
        current = candidate
    if current.plans or current.sighting is not None:
        groups.append(current)
    return groups


def _most_items(state: DecisionState, table: str) -> int:
    """The most items any attempt of `state` can write (see `chunks`): its transaction
    with every step met (through its own period's earliest conversion), plus one."""
    probe = DecisionState(state.plans, state.sighting)
    checks = [check for plan in state.plans for check in plan.step_checks()]
    for check in checks:
        if check.own is not None:
            probe.progress[check.own] = Span(lo_key="", lo_at=iso(check.at), lo_conversion="")
    return len(probe.transaction(table)) + len(checks)


def _entangled(plans: list[ConversionPlan], plan: ConversionPlan) -> bool:
    """Would `plan` check a progress item the group writes, or write one it checks?
    (DynamoDB takes one operation per item in a transaction; and a step never rests on
    a conversion of its own event, so deciding them apart changes nothing.)"""
    reads = {mark for known in plans for mark in known.progress_reads()}
    writes = {mark for known in plans for mark in known.progress_written()}
    return bool(reads & set(plan.progress_written()) or writes & set(plan.progress_reads()))


def _blocking(kind: str, slot: Slot, check: Check, claim: Span) -> str | None:
    """The conversion that makes `check` fail, given the item a cancellation returned."""
    if kind == "claim" and check.slot == slot:
        return check.blocking_in_own(claim)
    if kind == "before" and check.slot.neighbour(-1) == slot:
        return check.blocking_before(claim)
    if kind == "after" and check.slot.neighbour(1) == slot:
        return check.blocking_after(claim)
    return None


@dataclass
class _ClaimWrite:
    recorded: ConversionPlan  # conversions of one event share its time and order key
    checks: list[Check] = field(default_factory=list)


def _claims_written(counted: list[ConversionPlan]) -> dict[Slot, _ClaimWrite]:
    """Each claim period the counted conversions widen, with the checks made on it."""
    written: dict[Slot, _ClaimWrite] = {}
    for plan in counted:
        for slot in plan.writes:
            written.setdefault(slot, _ClaimWrite(plan))
        for check in plan.checks:
            written[check.slot].checks.append(check)
    return written


def _add_claim(transaction: Transaction, slot: Slot, write: _ClaimWrite, known: Span) -> None:
    """Widen the period's lo/hi to this event's conversions (see `_widen`)."""
    key = slot.key(write.recorded.account_id)
    _widen(transaction, ("claim", slot), key, write.recorded, known, bool(write.checks))


def _widen(
    transaction: Transaction,
    tag: Hashable,
    item_key: dict[str, str],
    plan: ConversionPlan,
    known: Span,
    checked: bool = False,
    kind: str = "claim",
) -> None:
    """Widen a period's lo/hi (a claim's, or a track's progress item) to this event's
    conversions. lo only ever moves back and hi forward, so a period that already spans
    the event needs no write, and a stale `known` only costs a retry: every write is
    conditioned on what it assumes. A `checked` claim may hold only this event's own."""
    expression = Expression()
    key = expression.value(plan.order_key)
    recorded = (
        ("key", key),
        ("at", expression.value(plan.occurred_at)),
        ("conversion", expression.value(plan.conversion_id)),
    )

    def sets(end: str, keep_existing: bool = False) -> list[str]:
        if keep_existing:
            return [
                f"{expression.name(f'{end}_{name}')} = "
                f"if_not_exists({expression.name(f'{end}_{name}')}, {value})"
                for name, value in recorded
            ]
        return [f"{expression.name(f'{end}_{name}')} = {value}" for name, value in recorded]

    if checked:
        # A checked period may hold only this event's own conversions.
        condition = (
            f"attribute_not_exists(pk) OR ({expression.name('lo_key')} = {key} "
            f"AND {expression.name('hi_key')} = {key})"
        )
        assignments = sets("lo") + sets("hi")
    elif known.hi_key is None or known.hi_key <= plan.order_key:  # none yet, or ends before
        condition = f"attribute_not_exists(pk) OR {expression.name('hi_key')} <= {key}"
        assignments = sets("lo", keep_existing=True) + sets("hi")
    elif known.lo_key is not None and known.lo_key > plan.order_key:
        condition = f"{expression.name('lo_key')} > {key}"
        assignments = sets("lo")
    else:
        return  # the period already spans this event
    assignments.append(f"{expression.name('kind')} = {expression.value(kind)}")
    transaction.update(
        tag,
        item_key,
        f"SET {', '.join(assignments)}",
        expression,
        condition,
        return_old=True,
    )


def _step_conditions(
    check: StepCheck, known: dict[Mark, Span]
) -> list[tuple[Mark, str, Expression]]:
    """The conditions that make `check`'s judgement true when the write commits: the
    end of the item it rests on is still that conversion, or, not met, neither item
    holds an earlier conversion within the window. (No subject: nothing to check.)"""
    own, before = check.own, check.before
    if own is None or before is None:
        return []
    met = check.judge(known)
    if met is not None:
        expression = Expression()
        condition = f"{expression.name(f'{met.end}_key')} = {expression.value(met.key)}"
        return [(met.mark, condition, expression)]
    at_own, at_before = Expression(), Expression()
    own_condition = (
        f"attribute_not_exists(pk) OR {at_own.name('lo_key')} >= {at_own.value(check.order_key)}"
    )
    before_condition = (
        f"attribute_not_exists(pk) OR {at_before.name('hi_at')} < {at_before.value(check.lower)}"
    )
    return [(own, own_condition, at_own), (before, before_condition, at_before)]


def _funnel_record(step: FunnelStep, met: Met | None) -> dict[str, Any]:
    """A counted conversion's record of a funnel step it is on: the previous step's
    conversion it rests on, and the seconds since (none on a first step)."""
    record: dict[str, Any] = {"step": step.step}
    if met is not None and step.after is not None:
        record["previous_conversion"] = met.conversion
        record["seconds_to_convert"] = step.after.seconds_since(met)
    return record


@dataclass(frozen=True)
class CountedConversion:
    """A stored counted conversion, as a funnel backfill reads it."""

    conversion_id: str
    goal_id: str
    event_id: str
    occurred_at: str
    day: str
    visitor_id: str | None
    contact_id: str | None
    funnels: frozenset[str]  # the funnels it holds a step record of

    @classmethod
    def of(cls, item: dict[str, Any]) -> "CountedConversion":
        return cls(
            item["conversion_id"],
            item["goal_id"],
            item["event_id"],
            item["occurred_at"],
            item["day"],
            item.get("visitor_id"),
            item.get("contact_id"),
            frozenset(item.get("funnels") or {}),
        )


@dataclass
class StepFill:
    """A stored counted conversion to put on its step of one funnel after the fact
    (`plan.funnel_steps` holds that one step), and what attempts at it have learned."""

    plan: ConversionPlan
    has_funnels: bool  # the conversion holds a record of some funnel (a map to add to)
    progress: dict[Mark, Span] = field(default_factory=dict)
    # Settled: on the step (True), or no longer a counted conversion (False).
    on_step: bool | None = None

    @property
    def step(self) -> FunnelStep:
        return self.plan.funnel_steps[0]

    def reached(self) -> bool:
        """The previous step is reached within the window, as far as the items are known."""
        return self.step.after is None or self.step.after.judge(self.progress) is not None

    def transaction(self, table: str) -> Transaction:
        plan, step = self.plan, self.step
        met = None if step.after is None else step.after.judge(self.progress)
        transaction = Transaction(table)
        expression = Expression()
        funnels, record = expression.name("funnels"), _funnel_record(step, met)
        condition = f"{expression.name('status')} = {expression.value('counted')} AND "
        if self.has_funnels:
            funnel = expression.name(step.funnel_id)
            update = f"SET {funnels}.{funnel} = {expression.value(record)}"
            condition += f"attribute_not_exists({funnels}.{funnel})"
        else:
            update = f"SET {funnels} = {expression.value({step.funnel_id: record})}"
            condition += f"attribute_not_exists({funnels})"
        key = keys.conversion(plan.account_id, plan.conversion_id)
        transaction.update("conversion", key, update, expression, condition, return_old=True)
        if step.after is not None:
            for mark, check, at_mark in _step_conditions(step.after, self.progress):
                transaction.check(("progress", mark), mark.key(plan.account_id), check, at_mark)
        if step.mark is not None:
            known = self.progress.get(step.mark, Span())
            key = step.mark.key(plan.account_id)
            _widen(transaction, ("progress", step.mark), key, plan, known, kind="progress")
        _add_funnel_day(transaction, step.funnel_id, [(plan, step, met)])
        return transaction

    def learn(self, reasons: dict[Hashable, Reason]) -> bool:
        """Record what a cancellation revealed; False when it revealed nothing new."""
        learned = False
        for tag, reason in reasons.items():
            if not reason.failed_condition:
                continue
            match tag:
                case "conversion":
                    item, known = reason.item, (self.on_step, self.has_funnels)
                    if item.get("status") != "counted":
                        self.on_step = False
                    elif self.step.funnel_id in (item.get("funnels") or {}):
                        self.on_step = True
                    self.has_funnels = "funnels" in item
                    learned |= (self.on_step, self.has_funnels) != known
                case ("progress", Mark() as mark):
                    span = Span.of(reason.item)
                    if self.progress.get(mark) != span:
                        self.progress[mark] = span
                        learned = True
        return learned


def _add_funnel_day(
    transaction: Transaction,
    funnel_id: str,
    steps: list[tuple[ConversionPlan, FunnelStep, Met | None]],
) -> None:
    """One funnel's day counters: each step reached, and the seconds since the previous
    step in its histogram bucket (one item: an event's conversions share day and shard)."""
    plan = steps[0][0]
    expression = Expression()
    one = expression.value(1)
    adds = []
    for _, step, met in steps:
        adds.append(f"{expression.name(counters.funnel_step_attribute(step.step))} {one}")
        if met is not None and step.after is not None:
            bucket = seconds_bucket(step.after.seconds_since(met))
            name = expression.name(counters.funnel_seconds_attribute(step.step, bucket))
            adds.append(f"{name} {one}")
    labels = counters.item_labels(counters.FUNNEL_DAY_KIND, plan.aggregate.day)
    sets = _labels(expression, labels | {counters.FUNNEL_ID: funnel_id})
    key = keys.funnel_day_counters(
        plan.account_id, plan.aggregate.shard, plan.aggregate.day, funnel_id
    )
    update = f"ADD {', '.join(adds)} SET {', '.join(sets)}"
    transaction.update(("funnel", funnel_id), key, update, expression)


def _add_neighbour_checks(transaction: Transaction, plan: ConversionPlan, check: Check) -> None:
    lower, upper = check.bounds()
    for tag, step, end, test, bound in (
        ("before", -1, "hi_at", "<=", lower),
        ("after", 1, "lo_at", ">=", upper),
    ):
        expression = Expression()
        condition = (
            f"attribute_not_exists(pk) OR {expression.name(end)} {test} {expression.value(bound)}"
        )
        neighbour = check.slot.neighbour(step)
        transaction.check((tag, neighbour), neighbour.key(plan.account_id), condition, expression)


def _add_completion(transaction: Transaction, plan: ConversionPlan) -> None:
    completion = plan.completion
    assert completion is not None
    item = keys.completion(
        plan.account_id, plan.goal_id, completion.scope, completion.scope_id, completion.ordinal
    ) | {
        "kind": "completion",
        "ordinal": completion.ordinal,
        "event_id": plan.event_id,
        "conversion_id": plan.conversion_id,
    }
    expression = Expression()
    condition = (
        f"attribute_not_exists(pk) OR {expression.name('event_id')} = "
        f"{expression.value(plan.event_id)}"
    )
    transaction.put(("completion", plan.goal_id), item, condition, expression)


def _marker(key: dict[str, str]) -> dict[str, Any]:
    """Created once per key, it makes a daily count count a visitor once. Markers are
    kept as long as the counters they protect (for good): an event of any past day
    still finds the markers of that day."""
    return key | {"kind": "visitor_marker"}


def _converted_key(plan: ConversionPlan) -> dict[str, str]:
    day = plan.aggregate.day
    return keys.converted_visitor(plan.account_id, plan.goal_id, day, plan.visitor_id or "")


def _add_goal_day(
    transaction: Transaction, plan: ConversionPlan, counted: bool, converted: bool
) -> None:
    delta = plan.aggregate
    expression = Expression()
    one = expression.value(1)
    adds = [f"{expression.name(counters.COUNTED if counted else counters.VOID)} {one}"]
    if converted:
        adds.append(f"{expression.name(counters.VISITORS_CONVERTED)} {one}")
    if counted and delta.value is not None:
        name = expression.name(counters.value_attribute(delta.value.currency))
        adds.append(f"{name} {expression.value(delta.value.amount)}")
    names = counters.item_labels(counters.GOAL_DAY_KIND, delta.day, plan.goal_id)
    sets = _labels(expression, names)
    sets.append(f"{expression.name(counters.LAST_MATCH_AT)} = {expression.value(plan.occurred_at)}")
    key = keys.goal_day_counters(plan.account_id, delta.shard, delta.day, plan.goal_id)
    update = f"ADD {', '.join(adds)} SET {', '.join(sets)}"
    transaction.update(("goal_day", plan.goal_id), key, update, expression)


def _add_attribution(transaction: Transaction, plan: ConversionPlan) -> None:
    delta = plan.aggregate
    labels = counters.attribution_labels(plan.attributes.get("attribution"))
    expression = Expression()
    adds = [f"{expression.name(counters.COUNTED)} {expression.value(1)}"]
    if delta.value is not None:
        name = expression.name(counters.value_attribute(delta.value.currency))
        adds.append(f"{name} {expression.value(delta.value.amount)}")
    names = counters.item_labels(counters.ATTRIBUTION_KIND, delta.day, plan.goal_id)
    sets = _labels(expression, names | labels)
    key = keys.attribution(
        plan.account_id, delta.shard, delta.day, plan.goal_id, tuple(labels.values())
    )
    update = f"ADD {', '.join(adds)} SET {', '.join(sets)}"
    transaction.update(("attribution", plan.goal_id), key, update, expression)


def _labels(expression: Expression, labels: dict[str, str]) -> list[str]:
    return [
        f"{expression.name(name)} = {expression.value(value)}" for name, value in labels.items()
    ]


def _add_sightings(transaction: Transaction, sightings: list[Sighting]) -> None:
    """One marker per visitor-day, then one counter update per day item touched."""
    per_item: dict[tuple[str, int, str], int] = {}
    for sighting in sightings:
        key = keys.seen_visitor(sighting.account_id, sighting.day, sighting.visitor_id)
        transaction.create(("seen", sighting.visitor_id, sighting.day), _marker(key))
        cell = (sighting.account_id, sighting.shard, sighting.day)
        per_item[cell] = per_item.get(cell, 0) + 1
    for (account_id, shard, day), count in per_item.items():
        expression = Expression()
        adds = f"{expression.name(counters.VISITORS_SEEN)} {expression.value(count)}"
        sets = _labels(expression, counters.item_labels(counters.DAY_KIND, day))
        update = f"ADD {adds} SET {', '.join(sets)}"
        transaction.update(
            ("day", shard, day), keys.day_counters(account_id, shard, day), update, expression
        )


def sightings_transaction(table: str, sightings: list[Sighting]) -> Transaction:
    """Visitors seen by events that reached no goal, counted once per day in one write."""
    transaction = Transaction(table)
    _add_sightings(transaction, sightings)
    return transaction


# Each sighting is a marker plus at most one counter update: 45 stay within 100 items.
SIGHTINGS_PER_WRITE = 45


@dataclass(frozen=True)
class Conversion:
    """A stored decision of one (event, goal), as far as callers other than the trace need it."""

    conversion_id: str
    goal_id: str
    event_id: str
    occurred_at: str
    status: str

    @classmethod
    def of(cls, item: dict[str, Any]) -> "Conversion":
        return cls(
            item["conversion_id"],
            item["goal_id"],
            item["event_id"],
            item["occurred_at"],
            item["status"],
        )


class Decisions:
    def __init__(self, table: Table) -> None:
        self._table = table

    def decide_event(
        self, plans: list[ConversionPlan], sighting: Sighting | None = None
    ) -> list[Decision]:
        """Decide every goal one event reached, each group of goals in one atomic write
        (see `chunks`).

        All conditions are judged against the table as it was before the write, and
        a claim period holding only this event's conversions blocks none of them, so
        conversions of one event never void each other. A cancellation says which
        conditions failed: a conversion that already exists was decided by an earlier
        delivery (kept as it was); a failed claim makes the goals whose check it fails
        void; the rest are written again, still under conditions.
        """
        decisions: list[Decision] = []
        for state in chunks(plans, sighting, self._table.name):
            self._decide(state)
            decisions += state.results()
        return decisions

    def _decide(self, state: DecisionState) -> None:
        # An optimistic read of the progress items the steps look at (one BatchGetItem,
        # eventually consistent) picks the item each condition names; the conditions,
        # not this read, make the decision right.
        reads = sorted({m for plan in state.plans for m in plan.progress_reads()}, key=repr)
        if reads:
            state.progress.update(self.progress(state.plans[0].account_id, reads))
        written = {mark for plan in state.plans for mark in plan.progress_written()}
        exhausted = "conversion write kept conflicting with concurrent writes"
        for attempt in attempts(
            TRANSACTION_CONFLICT_ATTEMPTS
            + 4 * len(state.plans)
            + 2 * len(reads)
            + len(written)
            + 1,
            exhausted,
        ):
            if state.done:
                return  # everything was decided by earlier deliveries
            try:
                self._table.commit(state.transaction(self._table.name))
            except TransactionCancelled as cancelled:
                if not state.learn(cancelled.reasons):
                    back_off(cancelled, attempt)
                continue
            state.succeeded()
            return

    def count_sightings(self, sightings: list[Sighting]) -> None:
        """Count each visitor-day once among the visitors seen, many per request.

        A marker that already exists (an earlier event or delivery counted that
        visitor that day) cancels the write; it is dropped and the rest retried.
        """
        unique = list({(s.account_id, s.day, s.visitor_id): s for s in sightings}.values())
        exhausted = "counting visitors seen kept conflicting"
        for start in range(0, len(unique), SIGHTINGS_PER_WRITE):
            pending = unique[start : start + SIGHTINGS_PER_WRITE]
            for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS + SIGHTINGS_PER_WRITE, exhausted):
                if not pending:
                    break
                try:
                    self._table.commit(sightings_transaction(self._table.name, pending))
                    break
                except TransactionCancelled as cancelled:
                    counted = {
                        (tag[1], tag[2])
                        for tag, reason in cancelled.reasons.items()
                        if isinstance(tag, tuple) and tag[0] == "seen" and reason.failed_condition
                    }
                    if not counted:
                        back_off(cancelled, attempt)
                    pending = [s for s in pending if (s.visitor_id, s.day) not in counted]

    def conversion(self, account_id: str, conversion_id: str) -> Conversion | None:
        item = self._table.get(keys.conversion(account_id, conversion_id), consistent=True)
        return Conversion.of(item) if item else None

    def conversions(self, account_id: str, conversion_ids: list[str]) -> list[Conversion]:
        """The stored conversions among these ids (BatchGetItem, eventually consistent)."""
        found = self._table.get_many([keys.conversion(account_id, c) for c in conversion_ids])
        return [Conversion.of(item) for item in found]

    def claims(self, account_id: str, slots: list[Slot]) -> dict[Slot, Span]:
        """The claim items of these periods as stored now (BatchGetItem by exact key);
        a period with no item is left out."""
        by_key = {_position(slot.key(account_id)): slot for slot in slots}
        found = self._table.get_many([slot.key(account_id) for slot in by_key.values()])
        return {by_key[_position(item)]: Span.of(item) for item in found}

    def progress(
        self, account_id: str, marks: list[Mark], consistent: bool = False
    ) -> dict[Mark, Span]:
        """The progress items of these marks as stored now (BatchGetItem by exact key);
        a mark with no item is left out."""
        by_key = {_position(mark.key(account_id)): mark for mark in marks}
        found = self._table.get_many([mark.key(account_id) for mark in by_key.values()], consistent)
        return {by_key[_position(item)]: Span.of(item) for item in found}

    def counted_conversions(
        self, account_id: str, conversion_ids: list[str]
    ) -> list[CountedConversion]:
        """The stored counted conversions among these ids (BatchGetItem, consistent)."""
        found = self._table.get_many(
            [keys.conversion(account_id, c) for c in conversion_ids], consistent=True
        )
        return [CountedConversion.of(item) for item in found if item.get("status") == "counted"]

    def put_on_funnel_step(self, fill: StepFill) -> bool:
        """Put a stored counted conversion on its step of a funnel after the fact (a
        funnel backfill), when that step is reached: True when the conversion is on the
        step (put there now, or earlier by evaluation or another run), False when the
        previous step is not reached within the window (nothing is written then).

        The write (the conversion's record of the funnel, the track it joins, the
        funnel's day counters) is conditioned on the conversion holding no record of the
        funnel yet and on the progress item the step rests on, as a live decision is: a
        conversion is put on a step once, whoever races it."""
        marks = [*fill.step.after.marks()] if fill.step.after is not None else []
        if fill.step.mark is not None:
            marks.append(fill.step.mark)
        fill.progress.update(self.progress(fill.plan.account_id, marks, consistent=True))
        exhausted = "putting a conversion on a funnel step kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS + 4, exhausted):
            if fill.on_step is not None or not fill.reached():
                break
            try:
                self._table.commit(fill.transaction(self._table.name))
            except TransactionCancelled as cancelled:
                if not fill.learn(cancelled.reasons):
                    back_off(cancelled, attempt)
                continue
            fill.on_step = True
        return bool(fill.on_step)

    def completions(
        self, account_id: str, goal_id: str, scope: str, scope_id: str
    ) -> dict[str, int]:
        """The decided occurrences of a history rule in one scope: event id -> ordinal."""
        expression = Expression()
        pk = keys.completions_pk(account_id, goal_id, scope, scope_id)
        items = self._table.query(
            KeyConditionExpression=f"{expression.name(keys.PK)} = {expression.value(pk)}",
            ConsistentRead=True,
            **expression.request(),
        )
        return {item["event_id"]: int(item["ordinal"]) for item in items}


def _position(item: dict[str, Any]) -> tuple[str, str]:
    return item[keys.PK], item[keys.SK]
