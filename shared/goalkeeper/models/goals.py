"""The goal library: rules, de-duplication and values (GET|POST /v1/goals...)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import re2
from pydantic import Field, ValidationInfo, field_validator, model_validator

from goalkeeper.models.common import Amount, Currency, Identifier, ShortText, StrictModel
from goalkeeper.models.events import CallOutcome, FieldValue, TagName


class CallRule(StrictModel):
    kind: Literal["call"]
    connected: bool | None = None
    min_bridged_seconds: int | None = Field(default=None, ge=0, le=86400)
    max_bridged_seconds: int | None = Field(
        default=None, ge=1, le=86400, description="Exclusive upper bound: bridged < max."
    )
    first_time_caller_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Target calls: only when the caller had no counted call conversion "
        "within this many days (the sales cycle).",
    )
    outcomes: list[CallOutcome] | None = Field(
        default=None,
        min_length=1,
        max_length=5,
        description="Only calls that ended so (a call sent without an outcome is answered "
        "when connected, of no known outcome otherwise).",
    )

    @model_validator(mode="after")
    def _ordered_bounds(self) -> "CallRule":
        low, high = self.min_bridged_seconds, self.max_bridged_seconds
        if low is not None and high is not None and low >= high:
            raise ValueError("min_bridged_seconds must be less than max_bridged_seconds")
        return self

    @field_validator("outcomes")
    @classmethod
    def _outcomes_can_match(
        cls, outcomes: list[CallOutcome] | None, info: ValidationInfo
    ) -> list[CallOutcome] | None:
        """A rule no call can meet is refused, rather than saved to count nothing."""
        if outcomes is None:
            return None
        if len(set(outcomes)) != len(outcomes):
            raise ValueError("lists an outcome twice")
        answered = "answered" in outcomes
        if info.data.get("connected") is True and not answered:
            raise ValueError("must include answered: connected is true")
        if info.data.get("connected") is False and outcomes == ["answered"]:
            raise ValueError("cannot be only answered: connected is false")
        if (info.data.get("min_bridged_seconds") or 0) > 0 and not answered:
            raise ValueError("must include answered: only answered calls have bridged seconds")
        return outcomes


def url_regex(pattern: str, case_sensitive: bool) -> Any:
    """A URL rule's pattern compiled by RE2: the one way both the check at save time and
    the rules engine compile it, so a saved goal always compiles where it is matched."""
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.log_errors = False
    return re2.compile(pattern, options)


def _regex_problem(error: re2.error) -> str:
    detail = error.args[0] if error.args else error
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    if "too large" in str(detail):
        return (
            "pattern is too large: RE2 cannot compile it within its memory limit (a case-"
            "insensitive pattern takes more; shorten long repetitions such as \\pL{400})"
        )
    return (
        f"pattern is not a valid RE2 regular expression: {detail} "
        "(RE2 does not support backreferences or lookarounds)"
    )


class UrlRule(StrictModel):
    kind: Literal["url"]
    match: Literal["exact", "prefix", "contains", "regex"]
    # Before `pattern`: a regex is checked in its case mode (folding can enlarge it).
    case_sensitive: bool = False
    pattern: Annotated[str, Field(min_length=1, max_length=1024)]

    @field_validator("pattern")
    @classmethod
    def _regex_compiles(cls, pattern: str, info: ValidationInfo) -> str:
        # Checked at save time so the rules engine never meets a pattern it cannot compile.
        if info.data.get("match") != "regex":
            return pattern
        try:
            url_regex(pattern, info.data.get("case_sensitive", False))
        except re2.error as exc:
            raise ValueError(_regex_problem(exc)) from None
        return pattern


ConditionOp = Literal["eq", "ne", "gt", "gte", "lt", "lte", "contains", "in", "exists"]


class FieldCondition(StrictModel):
    field: Annotated[str, Field(min_length=1, max_length=128)]
    op: ConditionOp
    value: FieldValue | list[FieldValue] = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> "FieldCondition":
        if self.op == "in" and not isinstance(self.value, list):
            raise ValueError("op 'in' needs a list value")
        if self.op != "in" and isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        if self.op in ("gt", "gte", "lt", "lte") and not isinstance(self.value, int | Decimal):
            raise ValueError(f"op {self.op!r} needs a number value")
        return self


class CustomTriggerRule(StrictModel):
    kind: Literal["custom_trigger"]
    name: ShortText
    conditions: list[FieldCondition] = Field(default_factory=list, max_length=20)


class CallRatingRule(StrictModel):
    kind: Literal["call_rating"]
    rating: ShortText


class TransactionRule(StrictModel):
    kind: Literal["transaction"]
    min_value: Amount | None = Field(
        default=None,
        description="Without currency, the threshold applies to the amount in whatever "
        "currency the sale was made (as in the products our users come from).",
    )
    inclusive: bool = Field(default=True, description="true: at least min_value; false: more than")
    currency: Currency | None = None


class LeadRule(StrictModel):
    kind: Literal["lead"]


class ServiceActivityRule(StrictModel):
    kind: Literal["service_activity"]
    topics: dict[ShortText, list[ShortText]] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _statuses_given(self) -> "ServiceActivityRule":
        for topic, statuses in self.topics.items():
            if not statuses:
                raise ValueError(f"topic {topic!r} needs at least one status")
        return self


class PageViewsRule(StrictModel):
    kind: Literal["page_views"]
    min_pages: int = Field(ge=1, le=10000)


class TagsRule(StrictModel):
    kind: Literal["tags"]
    tags: list[TagName] = Field(min_length=1, max_length=50)
    match: Literal["any", "all"] = "all"


Rule = Annotated[
    CallRule
    | UrlRule
    | CustomTriggerRule
    | CallRatingRule
    | TransactionRule
    | LeadRule
    | ServiceActivityRule
    | PageViewsRule
    | TagsRule,
    Field(discriminator="kind"),
]

DedupKey = Literal["visitor", "goal", "transaction_ref", "visit", "caller"]


class Dedup(StrictModel):
    keys: list[DedupKey] = Field(max_length=5)
    window_days: int | None = Field(default=None, ge=1, le=3650, description="null: forever")

    @model_validator(mode="after")
    def _distinct_keys(self) -> "Dedup":
        if len(set(self.keys)) != len(self.keys):
            raise ValueError("keys must not repeat")
        return self


class NoValue(StrictModel):
    type: Literal["none"]


class FixedValue(StrictModel):
    type: Literal["fixed"]
    amount: Amount
    currency: Currency


class PercentOfTransaction(StrictModel):
    type: Literal["percent_of_transaction"]
    percent: Annotated[Decimal, Field(gt=0, le=1000, decimal_places=4)]


GoalValue = Annotated[NoValue | FixedValue | PercentOfTransaction, Field(discriminator="type")]


def default_dedup(rule: CallRule | object) -> Dedup:
    """What a goal created without `dedup` gets (documented in the README).

    Calls: every call counts (use first_time_caller_days for target calls).
    Sales: one per visitor per goal per transaction reference.
    Page views: one per visit per goal (the rule is about a visit reaching N pages).
    Everything else: one per visitor per goal.
    """
    if isinstance(rule, CallRule):
        return Dedup(keys=[])
    if isinstance(rule, TransactionRule):
        return Dedup(keys=["visitor", "goal", "transaction_ref"])
    if isinstance(rule, PageViewsRule):
        return Dedup(keys=["visit", "goal"])
    return Dedup(keys=["visitor", "goal"])


class Requirement(StrictModel):
    """A prerequisite: the goal counts only for a visitor (or, for an event without a
    visitor, a contact) with a counted conversion of `goal_id` earlier, within
    `within_days` before it; otherwise its conversion is void, "prerequisite not met"."""

    goal_id: Identifier
    within_days: int = Field(ge=1, le=3650)


class GoalSpec(StrictModel):
    """What a user writes to create or replace a goal."""

    name: ShortText
    converting: bool = True
    rule: Rule
    dedup: Dedup | None = None
    once_per_visit: bool = False
    once_per_contact: bool = False
    value: GoalValue = Field(default_factory=lambda: NoValue(type="none"))
    active: bool = True
    requires: Requirement | None = None


class Goal(GoalSpec):
    goal_id: Identifier
    version: int
    dedup: Dedup
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_spec(
        cls, spec: GoalSpec, goal_id: str, version: int, created_at: datetime, now: datetime
    ) -> "Goal":
        data = spec.model_dump()
        data["dedup"] = spec.dedup or default_dedup(spec.rule)
        return cls(goal_id=goal_id, version=version, created_at=created_at, updated_at=now, **data)


class GoalPage(StrictModel):
    """A page of GET /v1/goals; next_cursor asks for the next one (null: the last page)."""

    goals: list[Goal]
    next_cursor: str | None


class DryRunRequest(StrictModel):
    """POST /v1/goals/dry-run: a goal as POST /v1/goals takes it, and the days to try it on
    (in the account's time zone, as the reports take them)."""

    goal: GoalSpec
    start: date | None = Field(default=None, alias="from", description="first day, YYYY-MM-DD")
    end: date | None = Field(
        default=None, alias="to", description="last day, YYYY-MM-DD (default: today)"
    )
