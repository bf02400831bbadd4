"""The one TransactWriteItems that records an event's goal decisions.

Layout (cancellation reasons come back in this order):
  conversions   one Put per goal still to decide, conditioned on not existing
  claims        one Update per de-dup claim the counted conversions write,
                conditioned on every check of it holding
  markers       one Put per counted conversion of a visitor: "this visitor
                converted this goal this day" (the visitors-converted count),
                and one "this visitor was seen this day" (visitors seen), unless
                this warm Lambda already saw the visitor that day
  counters      one Update of the day's counters item (every goal of the
                event), and per counted goal one Update of its attribution
                counters (source, medium, campaign, keyword)
Counters change in the same write that decides, so they always equal a recount
of the conversion items.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from goalkeeper import keys
from goalkeeper.attributes import to_attributes
from goalkeeper.dedup import ClaimWrite, ConversionPlan, Decision, claim_writes

# Markers only need to outlive the day they count, in any time zone.
MARKER_LIFETIME = timedelta(days=3)
ATTRIBUTION_DIMENSIONS = ("source", "medium", "campaign", "keyword")
NONE_LABEL = "(none)"


@dataclass(frozen=True)
class Sighting:
    """An event's visitor, to be counted once among the day's visitors seen."""

    account_id: str
    visitor_id: str
    day: str
    shard: int


@dataclass
class DecisionState:
    """What earlier attempts at one event's decisions have learned."""

    plans: list[ConversionPlan]
    sighting: Sighting | None = None
    decided: dict[str, Decision] = field(default_factory=dict)
    voids: dict[str, Decision] = field(default_factory=dict)
    visitor_already_counted: set[str] = field(default_factory=set)

    @property
    def pending(self) -> list[ConversionPlan]:
        return [plan for plan in self.plans if plan.goal_id not in self.decided]

    @property
    def done(self) -> bool:
        return not self.pending and self.sighting is None

    def attempt(self) -> "DecisionAttempt":
        pending = self.pending
        counted = [plan for plan in pending if plan.goal_id not in self.voids]
        markers = [
            plan
            for plan in counted
            if plan.visitor_id and plan.goal_id not in self.visitor_already_counted
        ]
        return DecisionAttempt(self, pending, claim_writes(counted), markers)

    def results(self) -> list[Decision]:
        return [self.decided[plan.goal_id] for plan in self.plans]


@dataclass
class DecisionAttempt:
    state: DecisionState
    pending: list[ConversionPlan]
    writes: list[ClaimWrite]
    markers: list[ConversionPlan]

    def items(self, table: str) -> list[dict[str, Any]]:
        voids = self.state.voids
        items = [
            {"Put": _conversion_put(table, plan, voids.get(plan.goal_id))} for plan in self.pending
        ]
        items += [{"Update": _claim_update(table, write)} for write in self.writes]
        items += [
            {"Put": _marker_put(table, _converted_marker(plan), plan.aggregate.day)}
            for plan in self.markers
        ]
        sighting = self.state.sighting
        if sighting is not None:
            seen = keys.seen_visitor(sighting.account_id, sighting.day, sighting.visitor_id)
            items.append({"Put": _marker_put(table, seen, sighting.day)})
        if self.pending or sighting is not None:
            items.append(
                {"Update": _daily_totals_update(table, self.pending, voids, self.markers, sighting)}
            )
        items += [
            {"Update": _attribution_update(table, plan)}
            for plan in self.pending
            if plan.goal_id not in voids
        ]
        return items

    def succeeded(self) -> None:
        for plan in self.pending:
            self.state.decided[plan.goal_id] = self.state.voids.get(plan.goal_id) or plan.counted()
        self.state.sighting = None

    def learn(self, reasons: list[tuple[str, dict[str, Any]]]) -> bool:
        """Record what a cancellation revealed; False when it revealed nothing."""
        state, learned = self.state, False
        conversions = reasons[: len(self.pending)]
        claims = reasons[len(self.pending) : len(self.pending) + len(self.writes)]
        markers = reasons[len(self.pending) + len(self.writes) :][: len(self.markers)]
        for plan, (code, item) in zip(self.pending, conversions, strict=False):
            if code == "ConditionalCheckFailed":
                state.decided[plan.goal_id] = plan.already_decided(item)
                learned = True
        for write, (code, item) in zip(self.writes, claims, strict=False):
            if code != "ConditionalCheckFailed":
                continue
            for plan, check in write.checks:
                if plan.goal_id not in state.decided and check.blocked_by(item, plan.event_id):
                    state.voids.setdefault(plan.goal_id, plan.void(check, item))
                    learned = True
        for plan, (code, _) in zip(self.markers, markers, strict=False):
            if code == "ConditionalCheckFailed":
                state.visitor_already_counted.add(plan.goal_id)
                learned = True
        if state.sighting is not None:
            position = len(self.pending) + len(self.writes) + len(self.markers)
            if position < len(reasons) and reasons[position][0] == "ConditionalCheckFailed":
                state.sighting = None  # an earlier event already counted this visitor today
                learned = True
        return learned


def _conversion_put(table: str, plan: ConversionPlan, void: Decision | None) -> dict[str, Any]:
    return {
        "TableName": table,
        "Item": to_attributes(plan.conversion_item("void" if void else "counted", void)),
        "ConditionExpression": "attribute_not_exists(pk)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def _claim_update(table: str, write: ClaimWrite) -> dict[str, Any]:
    plan = write.recorded
    values = {
        ":conversion": plan.conversion_id,
        ":goal": plan.goal_id,
        ":event": plan.event_id,
        ":at": plan.occurred_at,
        ":kind": "claim",
    }
    update: dict[str, Any] = {
        "TableName": table,
        "Key": to_attributes(keys.claim(plan.account_id, write.shape, write.values)),
        "UpdateExpression": "SET conversion_id = :conversion, goal_id = :goal, "
        "event_id = :event, last_at = :at, kind = :kind",
    }
    if write.checks:
        # A claim left by this same event never blocks it (see ClaimCheck.blocked_by).
        condition = "attribute_not_exists(pk) OR event_id = :event"
        if write.cutoff is not None:
            condition += " OR last_at < :cutoff"
            values[":cutoff"] = write.cutoff
        update["ConditionExpression"] = condition
        update["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    update["ExpressionAttributeValues"] = to_attributes(values)
    return update


def _marker_put(table: str, key: dict[str, str], day: str) -> dict[str, Any]:
    """A put that succeeds once per key: it makes a daily count count a visitor once."""
    expires = date.fromisoformat(day) + MARKER_LIFETIME
    item = key | {"kind": "visitor_marker", "expires_at": _epoch(expires)}
    return {
        "TableName": table,
        "Item": to_attributes(item),
        "ConditionExpression": "attribute_not_exists(pk)",
    }


def _converted_marker(plan: ConversionPlan) -> dict[str, str]:
    day = plan.aggregate.day
    return keys.converted_visitor(plan.account_id, plan.goal_id, day, plan.visitor_id or "")


def _epoch(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86400


def goal_attribute(goal_id: str, counter: str) -> str:
    """Name of one goal's counter inside a day's totals item."""
    return f"g#{goal_id}#{counter}"


def _daily_totals_update(
    table: str,
    pending: list[ConversionPlan],
    voids: dict[str, Decision],
    markers: list[ConversionPlan],
    sighting: Sighting | None,
) -> dict[str, Any]:
    account_id, shard, day = (
        (pending[0].account_id, pending[0].aggregate.shard, pending[0].aggregate.day)
        if pending
        else (sighting.account_id, sighting.shard, sighting.day)  # type: ignore[union-attr]
    )
    names: dict[str, str] = {}
    values: dict[str, Any] = {":one": 1, ":day": day, ":kind": "daily_totals"}
    adds, sets = [], ["#day = :day", "kind = :kind"]
    if sighting is not None:
        adds.append("visitors_seen :one")
    for number, plan in enumerate(pending):
        counted = plan.goal_id not in voids
        counters = ["counted" if counted else "void"]
        if plan in markers:
            counters.append("visitors_converted")
        for counter in counters:
            names[f"#c{number}{counter[0]}"] = goal_attribute(plan.goal_id, counter)
            adds.append(f"#c{number}{counter[0]} :one")
        money = plan.aggregate.value
        if counted and money is not None:
            names[f"#v{number}"] = goal_attribute(plan.goal_id, f"value#{money.currency}")
            values[f":v{number}"] = money.amount
            adds.append(f"#v{number} :v{number}")
        names[f"#m{number}"] = goal_attribute(plan.goal_id, "last_match_at")
        values[f":m{number}"] = plan.occurred_at
        sets.append(f"#m{number} = :m{number}")
    key = keys.daily_totals(account_id, shard, day)
    return {
        "TableName": table,
        "Key": to_attributes(key),
        "UpdateExpression": f"ADD {', '.join(adds)} SET {', '.join(sets)}",
        "ExpressionAttributeNames": names | {"#day": "day"},
        "ExpressionAttributeValues": to_attributes(values),
    }


def attribution_labels(attribution: dict[str, Any] | None) -> dict[str, str]:
    attribution = attribution or {}
    return {name: attribution.get(name) or NONE_LABEL for name in ATTRIBUTION_DIMENSIONS}


def _attribution_update(table: str, plan: ConversionPlan) -> dict[str, Any]:
    delta = plan.aggregate
    labels = attribution_labels(plan.attributes.get("attribution"))
    names = {f"#{name}": name for name in labels} | {"#day": "day"}
    values: dict[str, Any] = {f":{name}": label for name, label in labels.items()}
    values |= {":one": 1, ":goal": plan.goal_id, ":day": delta.day, ":kind": "attribution"}
    adds = ["counted :one"]
    if delta.value is not None:
        names["#value"] = f"value#{delta.value.currency}"
        values[":value"] = delta.value.amount
        adds.append("#value :value")
    sets = ", ".join(f"#{name} = :{name}" for name in labels)
    key = keys.attribution(
        plan.account_id, delta.shard, delta.day, plan.goal_id, tuple(labels.values())
    )
    return {
        "TableName": table,
        "Key": to_attributes(key),
        "UpdateExpression": f"ADD {', '.join(adds)} "
        f"SET goal_id = :goal, #day = :day, kind = :kind, {sets}",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_attributes(values),
    }


def sightings_items(table: str, sightings: list[Sighting]) -> list[dict[str, Any]]:
    """Visitors seen by events that reached no goal, counted once per day in one write:
    one marker per visitor-day, then one counter update per totals item touched."""
    items = [
        {"Put": _marker_put(table, keys.seen_visitor(s.account_id, s.day, s.visitor_id), s.day)}
        for s in sightings
    ]
    per_item: dict[tuple[str, int, str], int] = {}
    for sighting in sightings:
        cell = (sighting.account_id, sighting.shard, sighting.day)
        per_item[cell] = per_item.get(cell, 0) + 1
    for (account_id, shard, day), count in per_item.items():
        items.append(
            {
                "Update": {
                    "TableName": table,
                    "Key": to_attributes(keys.daily_totals(account_id, shard, day)),
                    "UpdateExpression": "ADD visitors_seen :count SET #day = :day, kind = :kind",
                    "ExpressionAttributeNames": {"#day": "day"},
                    "ExpressionAttributeValues": to_attributes(
                        {":count": count, ":day": day, ":kind": "daily_totals"}
                    ),
                }
            }
        )
    return items
