"""De-duplication planning: which claims a conversion checks and writes. Pure.

A *claim* is one item per (key shape, key values) remembering the last counted
conversion under that key. A goal's rule applies to events that match that
goal, but it looks at the counted conversions of every goal: a counted
conversion therefore writes the claims of every shape any goal of the account
checks, while shapes that include the goal id are only written for that goal.
The store turns a plan into one TransactWriteItems whose conditions are the
checks, so the decision and all its writes are one atomic operation.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from goalkeeper import keys
from goalkeeper.models.common import iso
from goalkeeper.models.events import Call, EventBase
from goalkeeper.models.goals import CallRule, Goal
from goalkeeper.values import Money

# Canonical order of key names inside a shape, so one claim item per shape.
KEY_ORDER = ("visitor", "goal", "transaction_ref", "visit", "caller", "contact", "call_caller")
Shape = tuple[str, ...]
ONCE_PER_VISIT: Shape = ("goal", "visit")
ONCE_PER_CONTACT: Shape = ("goal", "contact")
# Target calls: the caller had no counted call conversion (of any call goal) in the window.
CALL_CALLER: Shape = ("call_caller",)


def canonical(names: Iterable[str]) -> Shape:
    return tuple(sorted(set(names), key=KEY_ORDER.index))


@dataclass(frozen=True)
class ClaimCheck:
    shape: Shape
    cutoff: str | None  # claims counted at or after this instant block; None: forever
    window: str

    def reason(self) -> str:
        return f"duplicate under key {'+'.join(self.shape)} within {self.window}"

    def blocked_by(self, claim_item: dict[str, Any], event_id: str) -> bool:
        """Whether an existing claim makes this check fail (mirrors the write condition)."""
        if not claim_item or claim_item.get("event_id") == event_id:
            return False
        return self.cutoff is None or claim_item.get("last_at", "") >= self.cutoff


@dataclass(frozen=True)
class Claim:
    shape: Shape
    values: tuple[str, ...]
    check: ClaimCheck | None = None


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
    occurred_at: str
    claims: tuple[Claim, ...]
    aggregate: AggregateDelta
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def visitor_id(self) -> str | None:
        return self.attributes.get("visitor_id")

    def counted(self) -> Decision:
        return Decision(self.conversion_id, self.goal_id, "counted")

    def void(self, check: ClaimCheck, claim_item: dict[str, Any]) -> Decision:
        return Decision(
            self.conversion_id,
            self.goal_id,
            "void",
            reason=check.reason(),
            duplicate_of=claim_item.get("conversion_id"),
        )

    def already_decided(self, item: dict[str, Any]) -> Decision:
        return Decision(
            self.conversion_id,
            self.goal_id,
            item.get("status", "counted"),
            reason=item.get("reason"),
            duplicate_of=item.get("duplicate_of"),
            replayed=True,
        )

    def conversion_item(self, status: str, decision: Decision | None = None) -> dict[str, Any]:
        item = dict(self.attributes)
        item.update(keys.conversion(self.account_id, self.conversion_id))
        item["status"] = status
        if decision is not None:
            item["reason"] = decision.reason
            item["duplicate_of"] = decision.duplicate_of
        if self.aggregate.value is not None and status == "counted":
            item["value_amount"] = self.aggregate.value.amount
            item["value_currency"] = self.aggregate.value.currency
        return item


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClaimWrite:
    """One claim item written by the counted conversions of one event.

    Several goals reached by one event may check and write the same claim; the
    item is written once, recording the first of them, under a condition that
    holds only if every check holds (the strictest window wins).
    """

    shape: Shape
    values: tuple[str, ...]
    recorded: ConversionPlan
    checks: tuple[tuple[ConversionPlan, ClaimCheck], ...] = ()

    @property
    def forever(self) -> bool:
        return any(check.cutoff is None for _, check in self.checks)

    @property
    def cutoff(self) -> str | None:
        cutoffs = [check.cutoff for _, check in self.checks if check.cutoff is not None]
        return None if self.forever or not cutoffs else min(cutoffs)


def claim_writes(counted: list[ConversionPlan]) -> list[ClaimWrite]:
    merged: dict[tuple[Shape, tuple[str, ...]], ClaimWrite] = {}
    for plan in counted:
        for claim in plan.claims:
            key = (claim.shape, claim.values)
            write = merged.get(key) or ClaimWrite(claim.shape, claim.values, plan)
            if claim.check is not None:
                write = replace(write, checks=(*write.checks, (plan, claim.check)))
            merged[key] = write
    return list(merged.values())


def library_shapes(goals: Iterable[Goal]) -> frozenset[Shape]:
    """Every claim shape some goal of the account checks."""
    shapes: set[Shape] = set()
    for goal in goals:
        shapes.update(check.shape for check in goal_checks(goal, _EPOCH))
    return frozenset(shapes)


def goal_checks(goal: Goal, occurred_at: datetime) -> list[ClaimCheck]:
    checks = []
    if goal.dedup.keys:
        checks.append(_check(canonical(goal.dedup.keys), goal.dedup.window_days, occurred_at))
    if goal.once_per_visit:
        checks.append(_check(ONCE_PER_VISIT, None, occurred_at))
    if goal.once_per_contact:
        checks.append(_check(ONCE_PER_CONTACT, None, occurred_at))
    if isinstance(goal.rule, CallRule) and goal.rule.first_time_caller_days:
        checks.append(_check(CALL_CALLER, goal.rule.first_time_caller_days, occurred_at))
    return checks


def _check(shape: Shape, window_days: int | None, occurred_at: datetime) -> ClaimCheck:
    if window_days is None:
        return ClaimCheck(shape, None, "forever")
    return ClaimCheck(shape, iso(occurred_at - timedelta(days=window_days)), f"{window_days} days")


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
    event: EventBase, occurred_at: datetime, goal: Goal, shapes: frozenset[Shape]
) -> tuple[Claim, ...]:
    """Claims this conversion checks (its goal's rules) and writes if counted.

    A check whose key the event lacks (no visitor, no transaction reference...)
    cannot identify a duplicate, so it is skipped and the conversion counts.
    """
    values = key_values(event, goal)
    checks = {check.shape: check for check in goal_checks(goal, occurred_at)}
    claims = []
    for shape in sorted(shapes | checks.keys()):
        if "goal" in shape and shape not in checks:
            continue  # only this goal's own checks ever read a claim keyed by its id
        shape_values = tuple(values[name] for name in shape)
        if any(value is None for value in shape_values):
            continue
        claims.append(Claim(shape, shape_values, checks.get(shape)))  # type: ignore[arg-type]
    return tuple(claims)


def plan_conversion(
    *,
    account_id: str,
    event: EventBase,
    event_id: str,
    occurred_at: datetime,
    goal: Goal,
    shapes: frozenset[Shape],
    day: str,
    shards: int,
    value: Money | None,
) -> ConversionPlan:
    conversion_id = keys.conversion_id(event_id, goal.goal_id)
    at = iso(occurred_at)
    attributes: dict[str, Any] = {
        "kind": "conversion",
        "account_id": account_id,
        "conversion_id": conversion_id,
        "event_id": event_id,
        "event_type": getattr(event, "type", None),
        "goal_id": goal.goal_id,
        "goal_version": goal.version,
        "goal_name": goal.name,
        "converting": goal.converting,
        "occurred_at": at,
        "day": day,
        "visitor_id": event.visitor_id,
        "visit_id": event.visit_id,
        "contact_id": event.contact_id,
        "attribution": event.attribution.model_dump(exclude_none=True)
        if event.attribution
        else None,
    }
    if event.visitor_id:
        attributes["gsi1pk"] = keys.visitor_trace_pk(account_id, event.visitor_id)
        attributes["gsi1sk"] = keys.trace_sk(at, "G", conversion_id)
    return ConversionPlan(
        account_id=account_id,
        conversion_id=conversion_id,
        goal_id=goal.goal_id,
        event_id=event_id,
        occurred_at=at,
        claims=plan_claims(event, occurred_at, goal, shapes),
        # All conversions of one event share one counters item: one update per event.
        aggregate=AggregateDelta(keys.shard_of(event_id, shards), day, value),
        attributes=attributes,
    )
