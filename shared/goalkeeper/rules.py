"""The rules engine: which goals an event reaches. Pure: plain data in, decisions out.

Facts the event alone cannot carry (pages in the visit, the contact's tags) come in a
RuleContext; GoalIndex says when a caller has to look them up.
"""

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

import re2

from goalkeeper.models.events import Event, FieldValue
from goalkeeper.models.goals import (
    CallRatingRule,
    CallRule,
    CustomTriggerRule,
    FieldCondition,
    Goal,
    LeadRule,
    PageViewsRule,
    ServiceActivityRule,
    TagsRule,
    TransactionRule,
    UrlRule,
)


@dataclass(frozen=True)
class RuleContext:
    visit_page_count: int | None = None
    contact_tags_before: frozenset[str] | None = None
    contact_tags_after: frozenset[str] | None = None


Matcher = Callable[[Event, RuleContext], bool]
FieldTest = Callable[[Mapping[str, FieldValue]], bool]

# The event types each rule kind can match (transactions may ride on custom triggers).
EVENT_TYPES_BY_KIND: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "call": ("call",),
        "url": ("page_view",),
        "custom_trigger": ("custom_trigger",),
        "call_rating": ("call_rating",),
        "transaction": ("transaction", "custom_trigger"),
        "lead": ("lead",),
        "service_activity": ("service_status",),
        "page_views": ("page_view",),
        "tags": ("tag",),
    }
)


def _rating_key(rating: str) -> str:
    return rating.strip().casefold()


# Event types whose candidates are looked up by an exact key, and how to read it off an event.
_EVENT_KEY: Mapping[str, Callable[[Event], str]] = {
    "custom_trigger": lambda event: event.name,
    "call_rating": lambda event: _rating_key(event.rating),
    "service_status": lambda event: event.topic,
    "page_view": lambda event: event.url.casefold(),
}


def _rule_keys(rule: object) -> list[str] | None:
    """The exact keys a rule is filed under, or None when it must be tried on every event."""
    if isinstance(rule, CustomTriggerRule):
        return [rule.name]
    if isinstance(rule, CallRatingRule):
        return [_rating_key(rule.rating)]
    if isinstance(rule, ServiceActivityRule):
        return list(rule.topics)
    if isinstance(rule, UrlRule) and rule.match == "exact":
        return [rule.pattern.casefold()]
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _same(a: object, b: object) -> bool:
    # True == 1 in Python, but a flag is not a count: booleans only equal booleans.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


_ABSENT = object()


def _field_test(cond: FieldCondition) -> FieldTest:
    name, op, want = cond.field, cond.op, cond.value
    if op == "exists":
        present = want is not False
        return lambda fields: (name in fields) is present
    if op == "ne":
        return lambda fields: not _same(fields.get(name, _ABSENT), want)
    if op == "eq":
        return lambda fields: name in fields and _same(fields[name], want)
    if op == "in":
        options = tuple(want) if isinstance(want, list) else ()
        return lambda fields: name in fields and any(_same(fields[name], o) for o in options)
    if op == "contains":
        if not isinstance(want, str):
            return lambda fields: False
        return lambda fields: isinstance(got := fields.get(name), str) and want in got
    if not _is_number(want):
        return lambda fields: False
    compare = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[op]
    return lambda fields: _is_number(got := fields.get(name)) and compare(got, want)


def _url_matcher(rule: UrlRule) -> Matcher:
    if rule.match == "regex":
        options = re2.Options()
        options.case_sensitive = rule.case_sensitive
        options.log_errors = False
        search = re2.compile(rule.pattern, options).search
        return lambda event, ctx: search(event.url) is not None
    fold = (lambda text: text) if rule.case_sensitive else str.casefold
    pattern = fold(rule.pattern)
    test: Callable[[str], bool] = {
        "exact": lambda url: url == pattern,
        "prefix": lambda url: url.startswith(pattern),
        "contains": lambda url: pattern in url,
    }[rule.match]
    return lambda event, ctx: test(fold(event.url))


def _call_matcher(rule: CallRule) -> Matcher:
    # first_time_caller_days is de-duplication, decided where the call history is.
    connected, low, high = rule.connected, rule.min_bridged_seconds, rule.max_bridged_seconds

    def match(event: Event, ctx: RuleContext) -> bool:
        return (
            (connected is None or event.connected is connected)
            and (low is None or event.bridged_seconds >= low)
            and (high is None or event.bridged_seconds < high)
        )

    return match


def _custom_trigger_matcher(rule: CustomTriggerRule) -> Matcher:
    name, tests = rule.name, tuple(_field_test(c) for c in rule.conditions)
    return lambda event, ctx: event.name == name and all(t(event.fields) for t in tests)


def _transaction_matcher(rule: TransactionRule) -> Matcher:
    low, inclusive, currency = rule.min_value, rule.inclusive, rule.currency

    def match(event: Event, ctx: RuleContext) -> bool:
        sale = event.transaction_facts()
        if sale is None or (currency is not None and sale.currency != currency):
            return False
        if low is None:
            return True
        return sale.value >= low if inclusive else sale.value > low

    return match


def _service_matcher(rule: ServiceActivityRule) -> Matcher:
    statuses = {topic: frozenset(wanted) for topic, wanted in rule.topics.items()}
    return lambda event, ctx: event.status in statuses.get(event.topic, ())


def _tags_matcher(rule: TagsRule) -> Matcher:
    tags, need_all = frozenset(rule.tags), rule.match == "all"

    def holds(have: frozenset[str]) -> bool:
        return tags <= have if need_all else not tags.isdisjoint(have)

    def match(event: Event, ctx: RuleContext) -> bool:
        before, after = ctx.contact_tags_before, ctx.contact_tags_after
        if before is None or after is None:
            return False
        return holds(after) and not holds(before)

    return match


def _compile(rule: object) -> Matcher:
    """One matcher per rule; it assumes the event is of a type the rule's kind can match."""
    if isinstance(rule, CallRule):
        return _call_matcher(rule)
    if isinstance(rule, UrlRule):
        return _url_matcher(rule)
    if isinstance(rule, CustomTriggerRule):
        return _custom_trigger_matcher(rule)
    if isinstance(rule, CallRatingRule):
        rating = _rating_key(rule.rating)
        return lambda event, ctx: _rating_key(event.rating) == rating
    if isinstance(rule, TransactionRule):
        return _transaction_matcher(rule)
    if isinstance(rule, LeadRule):
        return lambda event, ctx: True
    if isinstance(rule, ServiceActivityRule):
        return _service_matcher(rule)
    if isinstance(rule, PageViewsRule):
        pages = rule.min_pages
        return lambda event, ctx: (
            event.visit_id is not None
            and ctx.visit_page_count is not None
            and ctx.visit_page_count >= pages
        )
    if isinstance(rule, TagsRule):
        return _tags_matcher(rule)
    raise TypeError(f"unknown rule {type(rule).__name__}")


def goal_matches(goal: Goal, event: Event, ctx: RuleContext = RuleContext()) -> bool:
    """Whether the goal's rule matches the event; `active` is the index's concern, not this.

    Compiles the rule on every call: for one-off checks. Use GoalIndex for a stream.
    """
    if event.type not in EVENT_TYPES_BY_KIND[goal.rule.kind]:
        return False
    return _compile(goal.rule)(event, ctx)


@dataclass(frozen=True)
class _Entry:
    rank: int  # position in (created_at, goal_id) order, so results are deterministic
    goal: Goal
    match: Matcher


class GoalIndex:
    """A goal library compiled for matching: built once per library version, then read-only."""

    def __init__(
        self,
        goals: Mapping[str, Goal],
        keyed: Mapping[tuple[str, str], tuple[_Entry, ...]],
        general: Mapping[str, tuple[_Entry, ...]],
        tag_names: frozenset[str],
        counts_pages: bool,
    ) -> None:
        self.goals = goals
        self._keyed = keyed
        self._general = general
        self._tag_names = tag_names
        self._counts_pages = counts_pages

    @classmethod
    def build(cls, goals: Sequence[Goal]) -> "GoalIndex":
        by_id: dict[str, Goal] = {}
        for goal in goals:
            if goal.goal_id in by_id:
                raise ValueError(f"goal {goal.goal_id!r} appears twice")
            by_id[goal.goal_id] = goal
        active = sorted((g for g in goals if g.active), key=lambda g: (g.created_at, g.goal_id))
        keyed: dict[tuple[str, str], list[_Entry]] = {}
        general: dict[str, list[_Entry]] = {}
        tag_names: set[str] = set()
        for rank, goal in enumerate(active):
            entry = _Entry(rank, goal, _compile(goal.rule))
            keys = _rule_keys(goal.rule)
            for event_type in EVENT_TYPES_BY_KIND[goal.rule.kind]:
                if keys is None:
                    general.setdefault(event_type, []).append(entry)
                else:
                    for key in keys:
                        keyed.setdefault((event_type, key), []).append(entry)
            if isinstance(goal.rule, TagsRule):
                tag_names.update(goal.rule.tags)
        return cls(
            MappingProxyType(by_id),
            {key: tuple(entries) for key, entries in keyed.items()},
            {event_type: tuple(entries) for event_type, entries in general.items()},
            frozenset(tag_names),
            any(isinstance(goal.rule, PageViewsRule) for goal in active),
        )

    def _entries(self, event: Event) -> Sequence[_Entry]:
        key_of = _EVENT_KEY.get(event.type)
        keyed = self._keyed.get((event.type, key_of(event)), ()) if key_of else ()
        general = self._general.get(event.type, ())
        # A custom trigger reaches the general list only through transaction rules,
        # which cannot match a trigger that carries no money.
        if event.type == "custom_trigger" and event.transaction is None:
            general = ()
        if keyed and general:
            return sorted((*keyed, *general), key=lambda entry: entry.rank)
        return keyed or general

    def candidates(self, event: Event) -> Sequence[Goal]:
        return [entry.goal for entry in self._entries(event)]

    def needs_visit_pages(self, event: Event) -> bool:
        # page_views rules have no key, so any active one is a candidate for every page view.
        return self._counts_pages and event.type == "page_view" and event.visit_id is not None

    def needs_contact_tags(self, event: Event) -> bool:
        # Only an added tag can turn a tags rule from false to true, so a change that adds
        # none of the tags any rule names cannot convert and needs no lookup.
        return event.type == "tag" and not self._tag_names.isdisjoint(event.added)

    def matching_goals(self, event: Event, ctx: RuleContext = RuleContext()) -> list[Goal]:
        return [entry.goal for entry in self._entries(event) if entry.match(event, ctx)]
