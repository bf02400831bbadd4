"""Call tracking, the pure part: which pool number a visit gets, whether a hold covers
a call, and how big a pool should be. Data access is goalkeeper.dal.numbers; the
service that joins them is goalkeeper.services.numbers."""

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class NumberState:
    """A pool number as its current-hold item has it. `held_until` None: never held;
    a past `held_until` is also when it was last released (the LRU order)."""

    number: str
    created_at: datetime
    visit_id: str | None = None
    held_until: datetime | None = None
    hold_started: datetime | None = None
    retired: bool = False

    def live(self, now: datetime) -> bool:
        return self.held_until is not None and self.held_until > now

    @property
    def last_used(self) -> datetime:
        return self.held_until or self.created_at


def held_by(states: list[NumberState], visit_id: str, now: datetime) -> NumberState | None:
    """The number this visit holds now, if any (one at most: a visit renews its own). A
    deleted number is not renewed: its hold runs out and the visit gets another."""
    return next(
        (
            state
            for state in states
            if state.visit_id == visit_id and state.live(now) and not state.retired
        ),
        None,
    )


def free_in_lru_order(states: list[NumberState], now: datetime) -> list[NumberState]:
    """The numbers no live visit holds, least recently used first (ties by number, so
    every assigner tries them in the same order): a number just released rests longest
    before it is shown again, and a late call to it is less likely to meet a new visit."""
    free = [state for state in states if not state.retired and not state.live(now)]
    return sorted(free, key=lambda state: (state.last_used, state.number))


def live_holds(states: list[NumberState], now: datetime) -> int:
    return sum(1 for state in states if state.live(now))


@dataclass(frozen=True)
class Hold:
    """One visit's hold of a pool number: from `started_at` to `until` (renewals move it)."""

    number: str
    started_at: datetime
    until: datetime
    visitor_id: str
    visit_id: str
    attribution: dict[str, str] | None

    def covers(self, at: datetime) -> bool:
        return self.started_at <= at <= self.until


@dataclass(frozen=True)
class Advice:
    add: int
    text: str


def sizing_advice(numbers: int, peak: int, assignments: int, exhausted: int) -> Advice:
    """How many numbers to add to a pool, from a period's figures. A pool of `numbers`
    served `assignments` visits while `exhausted` found every number held: at the same
    turnover, serving them too takes numbers * exhausted / assignments more (rounded up,
    at least one). With no exhaustion, a pool whose peak used every number gets one
    more as a margin."""
    asked = assignments + exhausted
    if asked == 0:
        return Advice(0, "no visit asked for a number in this period")
    if exhausted == 0:
        if peak >= numbers:
            return Advice(
                1, f"add 1 number: all {numbers} were held at once at the peak, with no margin"
            )
        return Advice(0, f"enough numbers: at most {peak} of {numbers} were held at once")
    add = max(1, math.ceil(numbers * exhausted / assignments)) if assignments else max(1, numbers)
    share = exhausted / asked
    percent = f"{share:.0%}" if share >= 0.01 else "under 1%"
    plural = "number" if add == 1 else "numbers"
    return Advice(
        add, f"add {add} {plural}: {percent} of visits saw your own number in this period"
    )
