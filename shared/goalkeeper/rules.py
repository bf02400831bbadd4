"""The rules engine: which goals an event reaches. Pure: plain data in, decisions out.

Facts the event alone cannot carry (pages in the visit, the contact's tags) come in a
RuleContext; GoalIndex says when a caller has to look them up.
"""

import operator
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from types import MappingProxyType
from typing import Any

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
    url_regex,
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
        search = url_regex(rule.pattern, rule.case_sensitive).search
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
    found_is_match: bool  # the index's lookup decides this rule: no need to run `match`


def _decided_by_lookup(rule: object) -> bool:
    """Whether finding the rule in the index (with a context) already means it matches."""
    if isinstance(rule, UrlRule):
        # Folded keys and searches are exact without case; re2 sets run the rule's regex.
        return rule.match == "regex" or not rule.case_sensitive
    if isinstance(rule, CallRule):
        return rule.max_bridged_seconds is None
    if isinstance(rule, TransactionRule):
        return rule.inclusive or rule.min_value is None
    return isinstance(rule, CallRatingRule | LeadRule | PageViewsRule)


# A finder narrows the goals of one lookup kind to those that may match an event; the
# entry's matcher confirms. ctx is None when the caller has not looked up the context
# yet: then the rules decided by context (page_views, tags) are all candidates.
Finder = Callable[[Event, RuleContext | None], Sequence[_Entry]]

_BY_RANK = operator.attrgetter("rank")
# re2.Set picks out every pattern occurring in a text in one pass. Chunks keep each set's
# program small, so its DFA always has room for its states (re2 has no NFA fallback for
# sets and would report no match). A chunk re2 cannot compile as one set (its programs
# together are too large) is searched pattern by pattern: slower, and just as exact.
_SET_CHUNK = 64
_SET_MAX_MEM = 64 << 20
_SCAN_LIMIT = 24


def _lookup_kind(rule: object) -> str:
    """How the index finds a rule's goals for an event."""
    if _rule_keys(rule) is not None:
        return "keyed"
    if isinstance(rule, UrlRule):
        return rule.match  # prefix, contains or regex
    if isinstance(rule, CallRule | TransactionRule | PageViewsRule | TagsRule):
        return rule.kind
    return "every"


def _group(pairs: Sequence[tuple[object, _Entry]]) -> dict[object, list[_Entry]]:
    """Entries by key, each list in rank order (pairs come in rank order)."""
    groups: dict[object, list[_Entry]] = {}
    for key, entry in pairs:
        groups.setdefault(key, []).append(entry)
    return groups


def _in_rank_order(pieces: Sequence[Sequence[_Entry]]) -> Sequence[_Entry]:
    """One rank-ordered sequence out of rank-ordered pieces (usually at most one non-empty)."""
    pieces = [piece for piece in pieces if piece]
    if len(pieces) < 2:
        return pieces[0] if pieces else ()
    return sorted(chain.from_iterable(pieces), key=_BY_RANK)


class _Thresholds:
    """Entries filed by bucket and a lower bound: those whose bound is at most a value.

    For each distinct bound the answer is kept ready, in rank order (memory: distinct
    bounds x entries per bucket, fine for the hundreds of rules of one kind an account has).
    """

    def __init__(self, items: Sequence[tuple[object, object, _Entry]]) -> None:
        self._buckets: dict[object, tuple[list[Any], list[tuple[_Entry, ...]]]] = {}
        by_bucket: dict[object, list[tuple[object, _Entry]]] = {}
        for bucket, bound, entry in items:
            by_bucket.setdefault(bucket, []).append((bound, entry))
        for bucket, pairs in by_bucket.items():
            bounds = sorted({bound for bound, _ in pairs})
            self._buckets[bucket] = (
                bounds,
                [tuple(e for b, e in pairs if b <= bound) for bound in bounds],
            )

    def upto(self, buckets: Sequence[object], value: object) -> Sequence[_Entry]:
        pieces = []
        for bucket in buckets:
            if bucket in self._buckets:
                bounds, answers = self._buckets[bucket]
                at = bisect_right(bounds, value)
                if at:
                    pieces.append(answers[at - 1])
        return _in_rank_order(pieces)


def _bound(low: int | Decimal | None) -> int | Decimal:
    return Decimal("-Infinity") if low is None else low


def _keyed_finder(event_type: str, entries: Sequence[_Entry]) -> Finder:
    by_key = _group([(key, e) for e in entries for key in _rule_keys(e.goal.rule) or ()])
    key_of = _EVENT_KEY[event_type]
    return lambda event, ctx: by_key.get(key_of(event), ())


def _prefix_finder(entries: Sequence[_Entry]) -> Finder:
    # Filed by the case-folded prefix: folding is per character, so a case-sensitive
    # prefix of the URL is also a prefix of the folded URL. One lookup per prefix length.
    by_prefix = _group([(e.goal.rule.pattern.casefold(), e) for e in entries])
    lengths = sorted({len(prefix) for prefix in by_prefix})

    def find(event: Event, ctx: RuleContext | None) -> Sequence[_Entry]:
        url = event.url.casefold()
        return _in_rank_order(
            [hit for n in lengths if n <= len(url) and (hit := by_prefix.get(url[:n]))]
        )

    return find


def _search_sets(
    patterns: Mapping[str, list[_Entry]], case_sensitive: bool
) -> Callable[[str], list[Sequence[_Entry]]]:
    """A search for the entries whose pattern occurs in a text (pieces in rank order)."""
    sets: list[tuple[Any, list[list[_Entry]]]] = []
    alone: list[tuple[Callable[[str], Any], list[_Entry]]] = []
    items = list(patterns.items())
    for start in range(0, len(items), _SET_CHUNK):
        chunk = items[start : start + _SET_CHUNK]
        options = re2.Options()
        options.case_sensitive = case_sensitive
        options.log_errors = False
        options.max_mem = _SET_MAX_MEM
        searcher = re2.Set.SearchSet(options)
        try:
            for pattern, _ in chunk:
                searcher.Add(pattern)
            searcher.Compile()
        except re2.error:
            alone += [(url_regex(pattern, case_sensitive).search, e) for pattern, e in chunk]
        else:
            sets.append((searcher, [entries for _, entries in chunk]))

    def search(text: str) -> list[Sequence[_Entry]]:
        found: list[Sequence[_Entry]] = [entries for occurs, entries in alone if occurs(text)]
        for searcher, entries in sets:
            found += [entries[number] for number in searcher.Match(text) or ()]
        return found

    return search


def _contains_finder(entries: Sequence[_Entry]) -> Finder:
    # Folded pattern in folded URL is necessary for both case modes (see prefixes). A few
    # patterns are quicker to try one by one than a call into re2.
    folded = _group([(e.goal.rule.pattern.casefold(), e) for e in entries])
    if len(folded) <= _SCAN_LIMIT:
        pairs = list(folded.items())

        def scan(event: Event, ctx: RuleContext | None) -> Sequence[_Entry]:
            url = event.url.casefold()
            return _in_rank_order([found for pattern, found in pairs if pattern in url])

        return scan
    escaped = {re2.escape(pattern): found for pattern, found in folded.items()}
    search = _search_sets(escaped, case_sensitive=True)
    return lambda event, ctx: _in_rank_order(search(event.url.casefold()))


def _regex_finder(entries: Sequence[_Entry]) -> Finder:
    modes = _group([(e.goal.rule.case_sensitive, e) for e in entries])
    searches = [
        _search_sets(_group([(e.goal.rule.pattern, e) for e in group]), case_sensitive)
        for case_sensitive, group in modes.items()
    ]
    return lambda event, ctx: _in_rank_order(
        [piece for search in searches for piece in search(event.url)]
    )


def _call_finder(entries: Sequence[_Entry]) -> Finder:
    # The upper bound is left to the matcher.
    index = _Thresholds(
        [(e.goal.rule.connected, _bound(e.goal.rule.min_bridged_seconds), e) for e in entries]
    )
    return lambda event, ctx: index.upto((None, event.connected), event.bridged_seconds)


def _transaction_finder(entries: Sequence[_Entry]) -> Finder:
    # Exclusive bounds equal to the value are left to the matcher.
    index = _Thresholds([(e.goal.rule.currency, _bound(e.goal.rule.min_value), e) for e in entries])

    def find(event: Event, ctx: RuleContext | None) -> Sequence[_Entry]:
        sale = event.transaction_facts()
        return () if sale is None else index.upto((None, sale.currency), sale.value)

    return find


def _page_views_finder(entries: Sequence[_Entry]) -> Finder:
    index = _Thresholds([(None, e.goal.rule.min_pages, e) for e in entries])
    every = tuple(entries)

    def find(event: Event, ctx: RuleContext | None) -> Sequence[_Entry]:
        if ctx is None:
            return every
        if event.visit_id is None or ctx.visit_page_count is None:
            return ()
        return index.upto((None,), ctx.visit_page_count)

    return find


def _tags_finder(entries: Sequence[_Entry]) -> Finder:
    # A tags rule turns true only if one of its tags is in `after` but not in `before`.
    by_tag = _group([(tag, e) for e in entries for tag in e.goal.rule.tags])
    every = tuple(entries)

    def find(event: Event, ctx: RuleContext | None) -> Sequence[_Entry]:
        if ctx is None:
            return every
        before, after = ctx.contact_tags_before, ctx.contact_tags_after
        if before is None or after is None:
            return ()
        new = after - before
        tags = new if len(new) < len(by_tag) else [tag for tag in by_tag if tag in new]
        found = {e.rank: e for tag in tags for e in by_tag.get(tag, ())}
        return sorted(found.values(), key=_BY_RANK)

    return find


_FINDERS: Mapping[str, Callable[[Sequence[_Entry]], Finder]] = {
    "prefix": _prefix_finder,
    "contains": _contains_finder,
    "regex": _regex_finder,
    "call": _call_finder,
    "transaction": _transaction_finder,
    "page_views": _page_views_finder,
    "tags": _tags_finder,
    "every": lambda entries: lambda event, ctx, every=tuple(entries): every,
}


def _finder(event_type: str, lookup: str, entries: Sequence[_Entry]) -> Finder:
    if lookup == "keyed":
        return _keyed_finder(event_type, entries)
    return _FINDERS[lookup](entries)


class GoalIndex:
    """A goal library compiled for matching: built once per library version, then read-only."""

    def __init__(
        self,
        goals: Mapping[str, Goal],
        finders: Mapping[str, tuple[Finder, ...]],
        tag_names: frozenset[str],
        counts_pages: bool,
    ) -> None:
        self.goals = goals
        self._finders = finders
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
        entries = [
            _Entry(rank, goal, _compile(goal.rule), _decided_by_lookup(goal.rule))
            for rank, goal in enumerate(active)
        ]
        groups = _group(
            [
                ((event_type, _lookup_kind(e.goal.rule)), e)
                for e in entries
                for event_type in EVENT_TYPES_BY_KIND[e.goal.rule.kind]
            ]
        )
        finders: dict[str, list[Finder]] = {}
        for (event_type, lookup), group in groups.items():
            finders.setdefault(event_type, []).append(_finder(event_type, lookup, group))
        tag_names = {tag for g in active if isinstance(g.rule, TagsRule) for tag in g.rule.tags}
        return cls(
            MappingProxyType(by_id),
            {event_type: tuple(found) for event_type, found in finders.items()},
            frozenset(tag_names),
            any(isinstance(goal.rule, PageViewsRule) for goal in active),
        )

    def _entries(self, event: Event, ctx: RuleContext | None) -> Sequence[_Entry]:
        finders = self._finders.get(event.type, ())
        if len(finders) == 1:
            return finders[0](event, ctx)
        return _in_rank_order([find(event, ctx) for find in finders])

    def candidates(self, event: Event) -> Sequence[Goal]:
        """A superset of the goals that may match, from the event alone."""
        return [entry.goal for entry in self._entries(event, None)]

    def needs_visit_pages(self, event: Event) -> bool:
        # page_views rules have no key, so any active one is a candidate for every page view.
        return self._counts_pages and event.type == "page_view" and event.visit_id is not None

    def needs_contact_tags(self, event: Event) -> bool:
        # A change touching none of the tags any rule names changes no rule's truth, now
        # or (replayed among events that arrive later) at any later change.
        return event.type == "tag" and not (
            self._tag_names.isdisjoint(event.added) and self._tag_names.isdisjoint(event.removed)
        )

    def matching_goals(self, event: Event, ctx: RuleContext = RuleContext()) -> list[Goal]:
        return [
            entry.goal
            for entry in self._entries(event, ctx)
            if entry.found_is_match or entry.match(event, ctx)
        ]
