"""The rules engine: which goals an event reaches. Pure: plain data in, decisions out.

Facts the event alone cannot carry (pages in the visit, the contact's tags) come in a
RuleContext; GoalIndex says when a caller has to look them up.

Each rule kind's matcher and finder is typed with the event class it reads (a URL
rule's with PageView, a call rule's with Call). They are picked by the event's `type`,
the one step a type checker cannot follow: where that happens (the index's finders by
event type, goal_matches) they are held as taking any event.
"""

import operator
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from types import MappingProxyType
from typing import Any, Generic, TypeGuard, TypeVar, assert_never

import re2

from goalkeeper.models.events import (
    Call,
    CallRating,
    CustomTrigger,
    Event,
    EventBase,
    FieldValue,
    PageView,
    ServiceStatus,
)
from goalkeeper.models.goals import (
    CallRatingRule,
    CallRule,
    CustomTriggerRule,
    FieldCondition,
    Goal,
    LeadRule,
    PageViewsRule,
    Rule,
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


E = TypeVar("E")  # the event class a matcher or a finder reads
E_contra = TypeVar("E_contra", contravariant=True)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Matcher = Callable[[E, RuleContext], bool]
FieldTest = Callable[[Mapping[str, FieldValue]], bool]
Number = int | Decimal

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


# The exact keys that events are looked up by, for the rules filed under such keys.
def _folded_url(event: PageView) -> str:
    return event.url.casefold()


def _trigger_name(event: CustomTrigger) -> str:
    return event.name


def _event_rating(event: CallRating) -> str:
    return _rating_key(event.rating)


def _event_topic(event: ServiceStatus) -> str:
    return event.topic


def _is_number(value: object) -> TypeGuard[Number]:
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


def _url_matcher(rule: UrlRule) -> Matcher[PageView]:
    if rule.match == "regex":
        search = url_regex(rule.pattern, rule.case_sensitive).search
        return lambda event, ctx: search(event.url) is not None
    fold: Callable[[str], str] = (lambda text: text) if rule.case_sensitive else str.casefold
    pattern = fold(rule.pattern)
    test: Callable[[str], bool] = {
        "exact": lambda url: url == pattern,
        "prefix": lambda url: url.startswith(pattern),
        "contains": lambda url: pattern in url,
    }[rule.match]
    return lambda event, ctx: test(fold(event.url))


def _call_matcher(rule: CallRule) -> Matcher[Call]:
    # first_time_caller_days is de-duplication, decided where the call history is.
    connected, low, high = rule.connected, rule.min_bridged_seconds, rule.max_bridged_seconds
    outcomes = None if rule.outcomes is None else frozenset(rule.outcomes)

    def match(event: Call, ctx: RuleContext) -> bool:
        return (
            (connected is None or event.connected is connected)
            and (low is None or event.bridged_seconds >= low)
            and (high is None or event.bridged_seconds < high)
            and (outcomes is None or event.known_outcome() in outcomes)
        )

    return match


def _custom_trigger_matcher(rule: CustomTriggerRule) -> Matcher[CustomTrigger]:
    name, tests = rule.name, tuple(_field_test(c) for c in rule.conditions)
    return lambda event, ctx: event.name == name and all(t(event.fields) for t in tests)


def _call_rating_matcher(rule: CallRatingRule) -> Matcher[CallRating]:
    rating = _rating_key(rule.rating)
    return lambda event, ctx: _rating_key(event.rating) == rating


def _transaction_matcher(rule: TransactionRule) -> Matcher[EventBase]:
    low, inclusive, currency = rule.min_value, rule.inclusive, rule.currency

    def match(event: EventBase, ctx: RuleContext) -> bool:
        sale = event.transaction_facts()
        if sale is None or (currency is not None and sale.currency != currency):
            return False
        if low is None:
            return True
        return sale.value >= low if inclusive else sale.value > low

    return match


def _lead_matcher(rule: LeadRule) -> Matcher[object]:
    return lambda event, ctx: True


def _service_matcher(rule: ServiceActivityRule) -> Matcher[ServiceStatus]:
    statuses = {topic: frozenset(wanted) for topic, wanted in rule.topics.items()}
    return lambda event, ctx: event.status in statuses.get(event.topic, ())


def _page_views_matcher(rule: PageViewsRule) -> Matcher[EventBase]:
    pages = rule.min_pages
    return lambda event, ctx: (
        event.visit_id is not None
        and ctx.visit_page_count is not None
        and ctx.visit_page_count >= pages
    )


def _tags_matcher(rule: TagsRule) -> Matcher[object]:
    tags, need_all = frozenset(rule.tags), rule.match == "all"

    def holds(have: frozenset[str]) -> bool:
        return tags <= have if need_all else not tags.isdisjoint(have)

    def match(event: object, ctx: RuleContext) -> bool:
        before, after = ctx.contact_tags_before, ctx.contact_tags_after
        if before is None or after is None:
            return False
        return holds(after) and not holds(before)

    return match


def _compile(rule: Rule) -> Matcher[Any]:
    """One matcher per rule. It takes the events of the types the rule's kind can match
    (EVENT_TYPES_BY_KIND), so which class it reads is known with the rule, not before."""
    if isinstance(rule, CallRule):
        return _call_matcher(rule)
    if isinstance(rule, UrlRule):
        return _url_matcher(rule)
    if isinstance(rule, CustomTriggerRule):
        return _custom_trigger_matcher(rule)
    if isinstance(rule, CallRatingRule):
        return _call_rating_matcher(rule)
    if isinstance(rule, TransactionRule):
        return _transaction_matcher(rule)
    if isinstance(rule, LeadRule):
        return _lead_matcher(rule)
    if isinstance(rule, ServiceActivityRule):
        return _service_matcher(rule)
    if isinstance(rule, PageViewsRule):
        return _page_views_matcher(rule)
    if isinstance(rule, TagsRule):
        return _tags_matcher(rule)
    assert_never(rule)


def goal_matches(goal: Goal, event: Event, ctx: RuleContext = RuleContext()) -> bool:
    """Whether the goal's rule matches the event; `active` is the index's concern, not this.

    Compiles the rule on every call: for one-off checks. Use GoalIndex for a stream.
    """
    if event.type not in EVENT_TYPES_BY_KIND[goal.rule.kind]:
        return False
    return _compile(goal.rule)(event, ctx)


@dataclass(frozen=True)
class _Entry(Generic[E_contra]):
    rank: int  # position in (created_at, goal_id) order, so results are deterministic
    goal: Goal
    match: Matcher[E_contra]
    found_is_match: bool  # the index's lookup decides this rule: no need to run `match`


def _decided_by_lookup(rule: Rule) -> bool:
    """Whether finding the rule in the index (with a context) already means it matches."""
    if isinstance(rule, UrlRule):
        # Folded keys and searches are exact without case; re2 sets run the rule's regex.
        return rule.match == "regex" or not rule.case_sensitive
    if isinstance(rule, CallRule):
        return rule.max_bridged_seconds is None and rule.outcomes is None
    if isinstance(rule, TransactionRule):
        return rule.inclusive or rule.min_value is None
    return isinstance(rule, CallRatingRule | LeadRule | PageViewsRule)


# A finder narrows the goals of one lookup kind to those that may match an event; the
# entry's matcher confirms. ctx is None when the caller has not looked up the context
# yet: then the rules decided by context (page_views, tags) are all candidates.
Finder = Callable[[E, RuleContext | None], Sequence[_Entry[E]]]

_BY_RANK = operator.attrgetter("rank")
# re2.Set picks out every pattern occurring in a text in one pass. Chunks keep each set's
# program small, so its DFA always has room for its states (re2 has no NFA fallback for
# sets and would report no match). A chunk re2 cannot compile as one set (its programs
# together are too large) is searched pattern by pattern: slower, and just as exact.
_SET_CHUNK = 64
_SET_MAX_MEM = 64 << 20
_SCAN_LIMIT = 24


def _group(pairs: Iterable[tuple[K, V]]) -> dict[K, list[V]]:
    """Values by key, each list in the order of the pairs (rank order, for entries)."""
    groups: dict[K, list[V]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return groups


def _in_rank_order(pieces: Sequence[Sequence[_Entry[E]]]) -> Sequence[_Entry[E]]:
    """One rank-ordered sequence out of rank-ordered pieces (usually at most one non-empty)."""
    pieces = [piece for piece in pieces if piece]
    if len(pieces) < 2:
        return pieces[0] if pieces else ()
    return sorted(chain.from_iterable(pieces), key=_BY_RANK)


class _Thresholds(Generic[E]):
    """Entries filed by bucket and a lower bound: those whose bound is at most a value.

    For each distinct bound the answer is kept ready, in rank order (memory: distinct
    bounds x entries per bucket, fine for the hundreds of rules of one kind an account has).
    """

    def __init__(self, items: Sequence[tuple[Hashable, Number, _Entry[E]]]) -> None:
        self._buckets: dict[Hashable, tuple[list[Number], list[tuple[_Entry[E], ...]]]] = {}
        by_bucket: dict[Hashable, list[tuple[Number, _Entry[E]]]] = {}
        for bucket, bound, entry in items:
            by_bucket.setdefault(bucket, []).append((bound, entry))
        for bucket, pairs in by_bucket.items():
            bounds = sorted({bound for bound, _ in pairs})
            self._buckets[bucket] = (
                bounds,
                [tuple(e for b, e in pairs if b <= bound) for bound in bounds],
            )

    def upto(self, buckets: Sequence[Hashable], value: Number) -> Sequence[_Entry[E]]:
        pieces: list[Sequence[_Entry[E]]] = []
        for bucket in buckets:
            if bucket in self._buckets:
                bounds, answers = self._buckets[bucket]
                at = bisect_right(bounds, value)
                if at:
                    pieces.append(answers[at - 1])
        return _in_rank_order(pieces)


def _bound(low: Number | None) -> Number:
    return Decimal("-Infinity") if low is None else low


# Each finder takes the rules it looks up with their entries, in rank order.
UrlRules = Sequence[tuple[UrlRule, _Entry[PageView]]]


def _keyed_finder(key_of: Callable[[E], str], keyed: Sequence[tuple[str, _Entry[E]]]) -> Finder[E]:
    by_key = _group(keyed)
    return lambda event, ctx: by_key.get(key_of(event), ())


def _prefix_finder(urls: UrlRules) -> Finder[PageView]:
    # Filed by the case-folded prefix: folding is per character, so a case-sensitive
    # prefix of the URL is also a prefix of the folded URL. One lookup per prefix length.
    by_prefix = _group([(rule.pattern.casefold(), e) for rule, e in urls])
    lengths = sorted({len(prefix) for prefix in by_prefix})

    def find(event: PageView, ctx: RuleContext | None) -> Sequence[_Entry[PageView]]:
        url = event.url.casefold()
        return _in_rank_order(
            [hit for n in lengths if n <= len(url) and (hit := by_prefix.get(url[:n]))]
        )

    return find


def _search_sets(
    patterns: Mapping[str, list[_Entry[E]]], case_sensitive: bool
) -> Callable[[str], list[Sequence[_Entry[E]]]]:
    """A search for the entries whose pattern occurs in a text (pieces in rank order)."""
    sets: list[tuple[Any, list[list[_Entry[E]]]]] = []
    alone: list[tuple[Callable[[str], Any], list[_Entry[E]]]] = []
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

    def search(text: str) -> list[Sequence[_Entry[E]]]:
        found: list[Sequence[_Entry[E]]] = [entries for occurs, entries in alone if occurs(text)]
        for searcher, entries in sets:
            found += [entries[number] for number in searcher.Match(text) or ()]
        return found

    return search


def _contains_finder(urls: UrlRules) -> Finder[PageView]:
    # Folded pattern in folded URL is necessary for both case modes (see prefixes). A few
    # patterns are quicker to try one by one than a call into re2.
    folded = _group([(rule.pattern.casefold(), e) for rule, e in urls])
    if len(folded) <= _SCAN_LIMIT:
        pairs = list(folded.items())

        def scan(event: PageView, ctx: RuleContext | None) -> Sequence[_Entry[PageView]]:
            url = event.url.casefold()
            return _in_rank_order([found for pattern, found in pairs if pattern in url])

        return scan
    escaped = {re2.escape(pattern): found for pattern, found in folded.items()}
    search = _search_sets(escaped, case_sensitive=True)
    return lambda event, ctx: _in_rank_order(search(event.url.casefold()))


def _regex_finder(urls: UrlRules) -> Finder[PageView]:
    modes = _group([(rule.case_sensitive, (rule.pattern, e)) for rule, e in urls])
    searches = [
        _search_sets(_group(patterns), case_sensitive) for case_sensitive, patterns in modes.items()
    ]
    return lambda event, ctx: _in_rank_order(
        [piece for search in searches for piece in search(event.url)]
    )


def _call_finder(calls: Sequence[tuple[CallRule, _Entry[Call]]]) -> Finder[Call]:
    # The upper bound is left to the matcher.
    index = _Thresholds(
        [(rule.connected, _bound(rule.min_bridged_seconds), e) for rule, e in calls]
    )
    return lambda event, ctx: index.upto((None, event.connected), event.bridged_seconds)


def _transaction_finder(
    sales: Sequence[tuple[TransactionRule, _Entry[EventBase]]],
) -> Finder[EventBase]:
    # Exclusive bounds equal to the value are left to the matcher.
    index = _Thresholds([(rule.currency, _bound(rule.min_value), e) for rule, e in sales])

    def find(event: EventBase, ctx: RuleContext | None) -> Sequence[_Entry[EventBase]]:
        sale = event.transaction_facts()
        return () if sale is None else index.upto((None, sale.currency), sale.value)

    return find


def _every_finder(entries: Sequence[_Entry[E]]) -> Finder[E]:
    every = tuple(entries)
    return lambda event, ctx: every


def _page_views_finder(
    page_views: Sequence[tuple[PageViewsRule, _Entry[EventBase]]],
) -> Finder[EventBase]:
    index = _Thresholds([(None, rule.min_pages, e) for rule, e in page_views])
    every = tuple(e for _, e in page_views)

    def find(event: EventBase, ctx: RuleContext | None) -> Sequence[_Entry[EventBase]]:
        if ctx is None:
            return every
        if event.visit_id is None or ctx.visit_page_count is None:
            return ()
        return index.upto((None,), ctx.visit_page_count)

    return find


def _tags_finder(tag_rules: Sequence[tuple[TagsRule, _Entry[object]]]) -> Finder[object]:
    # A tags rule turns true only if one of its tags is in `after` but not in `before`.
    by_tag = _group([(tag, e) for rule, e in tag_rules for tag in rule.tags])
    every = tuple(e for _, e in tag_rules)

    def find(event: object, ctx: RuleContext | None) -> Sequence[_Entry[object]]:
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


class _Filing:
    """The active goals' entries, filed by how the index looks their rules up, each list
    in rank order and typed with the rule and the event class its finder reads."""

    def __init__(self) -> None:
        self.exact_urls: list[tuple[str, _Entry[PageView]]] = []
        self.url_prefixes: list[tuple[UrlRule, _Entry[PageView]]] = []
        self.urls_containing: list[tuple[UrlRule, _Entry[PageView]]] = []
        self.url_regexes: list[tuple[UrlRule, _Entry[PageView]]] = []
        self.trigger_names: list[tuple[str, _Entry[CustomTrigger]]] = []
        self.ratings: list[tuple[str, _Entry[CallRating]]] = []
        self.topics: list[tuple[str, _Entry[ServiceStatus]]] = []
        self.calls: list[tuple[CallRule, _Entry[Call]]] = []
        self.sales: list[tuple[TransactionRule, _Entry[EventBase]]] = []
        self.leads: list[_Entry[object]] = []
        self.page_views: list[tuple[PageViewsRule, _Entry[EventBase]]] = []
        self.tags: list[tuple[TagsRule, _Entry[object]]] = []

    def add(self, rank: int, goal: Goal) -> None:
        rule, found = goal.rule, _decided_by_lookup(goal.rule)
        if isinstance(rule, UrlRule):
            page = _Entry(rank, goal, _url_matcher(rule), found)
            if rule.match == "exact":
                self.exact_urls.append((rule.pattern.casefold(), page))
            elif rule.match == "prefix":
                self.url_prefixes.append((rule, page))
            elif rule.match == "contains":
                self.urls_containing.append((rule, page))
            else:
                self.url_regexes.append((rule, page))
        elif isinstance(rule, CustomTriggerRule):
            trigger = _Entry(rank, goal, _custom_trigger_matcher(rule), found)
            self.trigger_names.append((rule.name, trigger))
        elif isinstance(rule, CallRatingRule):
            rating = _Entry(rank, goal, _call_rating_matcher(rule), found)
            self.ratings.append((_rating_key(rule.rating), rating))
        elif isinstance(rule, ServiceActivityRule):
            service = _Entry(rank, goal, _service_matcher(rule), found)
            self.topics += [(topic, service) for topic in rule.topics]
        elif isinstance(rule, CallRule):
            self.calls.append((rule, _Entry(rank, goal, _call_matcher(rule), found)))
        elif isinstance(rule, TransactionRule):
            self.sales.append((rule, _Entry(rank, goal, _transaction_matcher(rule), found)))
        elif isinstance(rule, LeadRule):
            self.leads.append(_Entry(rank, goal, _lead_matcher(rule), found))
        elif isinstance(rule, PageViewsRule):
            self.page_views.append((rule, _Entry(rank, goal, _page_views_matcher(rule), found)))
        elif isinstance(rule, TagsRule):
            self.tags.append((rule, _Entry(rank, goal, _tags_matcher(rule), found)))
        else:
            assert_never(rule)

    def finders(self) -> dict[str, tuple[Finder[Any], ...]]:
        """Each event type's finders: one per lookup that has rules, under the event types
        its rule kind can match."""
        by_type: dict[str, list[Finder[Any]]] = {}

        def file(kind: str, finder: Finder[Any]) -> None:
            for event_type in EVENT_TYPES_BY_KIND[kind]:
                by_type.setdefault(event_type, []).append(finder)

        if self.exact_urls:
            file("url", _keyed_finder(_folded_url, self.exact_urls))
        if self.url_prefixes:
            file("url", _prefix_finder(self.url_prefixes))
        if self.urls_containing:
            file("url", _contains_finder(self.urls_containing))
        if self.url_regexes:
            file("url", _regex_finder(self.url_regexes))
        if self.trigger_names:
            file("custom_trigger", _keyed_finder(_trigger_name, self.trigger_names))
        if self.ratings:
            file("call_rating", _keyed_finder(_event_rating, self.ratings))
        if self.topics:
            file("service_activity", _keyed_finder(_event_topic, self.topics))
        if self.calls:
            file("call", _call_finder(self.calls))
        if self.sales:
            file("transaction", _transaction_finder(self.sales))
        if self.leads:
            file("lead", _every_finder(self.leads))
        if self.page_views:
            file("page_views", _page_views_finder(self.page_views))
        if self.tags:
            file("tags", _tags_finder(self.tags))
        return {event_type: tuple(found) for event_type, found in by_type.items()}


class GoalIndex:
    """A goal library compiled for matching: built once per library version, then read-only."""

    def __init__(
        self,
        goals: Mapping[str, Goal],
        finders: Mapping[str, tuple[Finder[Any], ...]],
        tag_names: frozenset[str],
        counts_pages: bool,
    ) -> None:
        self.goals = goals
        # By event type; a finder filed under a type takes that type's events, whose class
        # only the event's `type` tells: held here as taking any event.
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
        filing = _Filing()
        for rank, goal in enumerate(active):
            filing.add(rank, goal)
        tag_names = {tag for g in active if isinstance(g.rule, TagsRule) for tag in g.rule.tags}
        return cls(
            MappingProxyType(by_id),
            filing.finders(),
            frozenset(tag_names),
            any(isinstance(goal.rule, PageViewsRule) for goal in active),
        )

    def _entries(self, event: Event, ctx: RuleContext | None) -> Sequence[_Entry[Event]]:
        # The finders filed under the event's type take it, and so do the entries they find.
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
