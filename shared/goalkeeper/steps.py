"""Steps: conversions that count only after an earlier one. Pure.

Two things are steps: a goal that `requires` another goal (it counts only for a
subject with a counted conversion of the required goal earlier, within `within_days`),
and each step of a funnel after the first (a conversion is on the funnel's step i when
the subject was on step i - 1 earlier, within the funnel's `window_days`).

A *track* is the conversions a later step looks back at: the counted conversions of a
goal that some goal requires (one track per window it is required within), or the
conversions that reached one step of a funnel. Time is cut into periods of the track's
window (W days); one *progress item* per (track, subject, period) keeps the earliest and
the latest conversion on the track in it (`lo`, `hi`), widened by every conversion that
joins the track, in the transaction that decides that conversion. `lo` only moves back
and `hi` only forward.

A conversion at t (order key k: time, then event id) has an earlier conversion on the
track within W days exactly when, in its own period, `lo` is before k (the period starts
less than W before t, so `lo` is within the window), or, in the period before, `hi` is at
or after t - W. No other period can hold one. The decision rests on one item, named by
the deciding transaction's condition: a counted step carries an equality condition on
the end of the item it was judged by (so the conversion it records as its previous step
is the one the item holds when the write commits), a step not met carries a condition
on both items that they hold nothing earlier within the window. A failed condition
returns the item, which teaches the next attempt (goalkeeper.dal.decisions). Items only
ever widen, so a step met stays met: no attempt flips a counted decision back.

The subject is the visitor, or, for an event without one, the contact. An event with
neither can never be on a step.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from goalkeeper import keys
from goalkeeper.models.common import iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GOAL_TRACK = "goal"
FUNNEL_TRACK = "funnel"


@dataclass(frozen=True)
class Track:
    """Conversions a later step looks back at, kept in periods of `window_days`."""

    kind: str  # GOAL_TRACK | FUNNEL_TRACK
    ident: str  # the goal id, or "<funnel id>#S<step>"
    window_days: int

    def bucket(self, at: datetime) -> int:
        return (at - _EPOCH) // timedelta(days=self.window_days)


def goal_track(goal_id: str, within_days: int) -> Track:
    return Track(GOAL_TRACK, goal_id, within_days)


def funnel_track(funnel_id: str, step: int, window_days: int) -> Track:
    return Track(FUNNEL_TRACK, f"{funnel_id}#S{step}", window_days)


@dataclass(frozen=True)
class Mark:
    """One progress item: a track's period for one subject."""

    track: Track
    subject: str
    bucket: int

    def key(self, account_id: str) -> dict[str, str]:
        track = self.track
        return keys.progress(
            account_id, track.kind, track.ident, self.subject, track.window_days, self.bucket
        )


@dataclass(frozen=True)
class Span:
    """What a period's item says, a track's progress item or a de-dup claim
    (goalkeeper.dedup), empty when it does not exist: its earliest and latest
    conversion, each as order key, time and conversion id."""

    lo_key: str | None = None
    lo_at: str | None = None
    lo_conversion: str | None = None
    hi_key: str | None = None
    hi_at: str | None = None
    hi_conversion: str | None = None

    @classmethod
    def of(cls, item: Mapping[str, Any] | None) -> "Span":
        item = item or {}
        return cls(**{name: item.get(name) for name in cls.__dataclass_fields__})

    @property
    def exists(self) -> bool:
        return self.hi_key is not None


def subject_of(visitor_id: str | None, contact_id: str | None) -> str | None:
    """Whose steps these are: the visitor, else the contact (never mixed: prefixed)."""
    if visitor_id:
        return f"V#{visitor_id}"
    if contact_id:
        return f"C#{contact_id}"
    return None


@dataclass(frozen=True)
class Met:
    """The earlier conversion a step rests on: which end of which item holds it."""

    mark: Mark
    end: str  # "lo" | "hi"
    key: str
    at: str
    conversion: str


@dataclass(frozen=True)
class StepCheck:
    """Is there a conversion on `track` earlier than (at, order_key), within the window,
    for `subject`? (subject None: never.)"""

    track: Track
    subject: str | None
    at: datetime
    order_key: str

    @property
    def own(self) -> Mark | None:
        if self.subject is None:
            return None
        return Mark(self.track, self.subject, self.track.bucket(self.at))

    @property
    def before(self) -> Mark | None:
        own = self.own
        return None if own is None else Mark(own.track, own.subject, own.bucket - 1)

    def marks(self) -> tuple[Mark, ...]:
        own, before = self.own, self.before
        return () if own is None or before is None else (own, before)

    @property
    def lower(self) -> str:
        """The earliest time an earlier conversion may have to be within the window."""
        return iso(self.at - timedelta(days=self.track.window_days))

    def judge(self, known: Mapping[Mark, Span]) -> Met | None:
        """The earlier conversion the items show (None: none within the window).

        Preferred, in order: the own period's latest when it is earlier (then it is the
        latest earlier conversion of all), the own period's earliest when it is earlier,
        the previous period's latest when it is within the window.
        """
        own, before = self.own, self.before
        if own is None or before is None:
            return None
        span = known.get(own, Span())
        if span.hi_key is not None and span.hi_key < self.order_key:
            return Met(own, "hi", span.hi_key, span.hi_at or "", span.hi_conversion or "")
        if span.lo_key is not None and span.lo_key < self.order_key:
            return Met(own, "lo", span.lo_key, span.lo_at or "", span.lo_conversion or "")
        span = known.get(before, Span())
        if span.hi_at is not None and span.hi_at >= self.lower:
            return Met(before, "hi", span.hi_key or "", span.hi_at, span.hi_conversion or "")
        return None

    def seconds_since(self, met: Met) -> int:
        return int((self.at - datetime.fromisoformat(met.at)) // timedelta(seconds=1))


@dataclass(frozen=True)
class FunnelStep:
    """A goal's place in a funnel: the conversion is on step `step` when `after` (the
    previous step's track; None on the first step) is met; then it joins `mark` (this
    step's track; None on the last step, which no step looks back at)."""

    funnel_id: str
    step: int  # 1-based
    after: StepCheck | None
    mark: Mark | None


@dataclass(frozen=True)
class FunnelShape:
    """A funnel as evaluation needs it."""

    funnel_id: str
    steps: tuple[str, ...]  # goal ids
    window_days: int


@dataclass(frozen=True)
class Links:
    """Which tracks an account's goals write and look back at: the windows each goal is
    required within (by goals that require it), and each goal's places in funnels."""

    required: Mapping[str, frozenset[int]]
    funnels: Mapping[str, tuple[tuple[FunnelShape, int], ...]]

    @classmethod
    def build(
        cls, requirements: Iterable[tuple[str, int]], funnels: Iterable[FunnelShape]
    ) -> "Links":
        """`requirements`: (required goal id, within days) of every goal that requires one."""
        required: dict[str, set[int]] = {}
        for goal_id, within_days in requirements:
            required.setdefault(goal_id, set()).add(within_days)
        places: dict[str, list[tuple[FunnelShape, int]]] = {}
        for funnel in funnels:
            for index, goal_id in enumerate(funnel.steps, start=1):
                places.setdefault(goal_id, []).append((funnel, index))
        return cls(
            {goal_id: frozenset(windows) for goal_id, windows in required.items()},
            {goal_id: tuple(found) for goal_id, found in places.items()},
        )

    @classmethod
    def none(cls) -> "Links":
        return cls({}, {})

    def plan(
        self, goal_id: str, subject: str | None, at: datetime, order_key: str
    ) -> tuple[tuple[Mark, ...], tuple[FunnelStep, ...]]:
        """(the goal tracks a counted conversion of `goal_id` joins, its funnel steps)."""
        if subject is None:
            return (), ()
        writes = tuple(
            Mark(track, subject, track.bucket(at))
            for track in (goal_track(goal_id, w) for w in sorted(self.required.get(goal_id, ())))
        )
        steps = []
        for funnel, step in self.funnels.get(goal_id, ()):
            window = funnel.window_days
            after = None
            if step > 1:
                after = StepCheck(
                    funnel_track(funnel.funnel_id, step - 1, window), subject, at, order_key
                )
            mark = None
            if step < len(funnel.steps):
                track = funnel_track(funnel.funnel_id, step, window)
                mark = Mark(track, subject, track.bucket(at))
            steps.append(FunnelStep(funnel.funnel_id, step, after, mark))
        return writes, tuple(steps)


# --- seconds to convert, kept as a histogram ----------------------------------------
# Bucket 0 holds 0 seconds; bucket b >= 1 holds the whole seconds s with
# 2^((b-1)/4) <= s < 2^(b/4): a quarter of an octave, so any value in a bucket is within
# 19% of any other, and the bucket's representative (its geometric middle, clamped to
# the whole seconds it holds) within 9.1% of every value in it, plus half a second for
# the rounding to whole seconds. Up to 7 seconds each bucket holds at most one whole
# second: exact. 3650 days is bucket 113.


def seconds_bucket(seconds: int) -> int:
    """1 + floor(4 log2 s), in integers: the bit length of s^4."""
    return 0 if seconds < 1 else (seconds**4).bit_length()


def bucket_bounds(bucket: int) -> tuple[int, int]:
    """The least and the greatest whole seconds a bucket holds."""
    if bucket <= 0:
        return 0, 0
    low = _ceil_root(2 ** (bucket - 1))
    high = _ceil_root(2**bucket) - 1
    return low, high


def _ceil_root(power: int) -> int:
    """The least whole s with s^4 >= power."""
    s = max(1, round(power**0.25))
    while s**4 < power:
        s += 1
    while s > 1 and (s - 1) ** 4 >= power:
        s -= 1
    return s


def bucket_value(bucket: int) -> int:
    low, high = bucket_bounds(bucket)
    if bucket <= 0:
        return 0
    middle = round(2 ** ((bucket - 0.5) / 4))
    return min(max(middle, low), high)


def median_bucket(histogram: Mapping[int, int]) -> int | None:
    """The bucket holding the lower median of the counts (None: no counts)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = (total + 1) // 2
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket
    return None  # unreachable: the counts add up to total
