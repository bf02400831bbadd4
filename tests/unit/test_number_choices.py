"""Call tracking's pure choices (goalkeeper.numbers): which pool number a visit gets,
whether a hold covers a call, and the sizing advice of the pool report."""

from datetime import UTC, datetime, timedelta

import pytest

from goalkeeper.numbers import (
    Hold,
    NumberState,
    free_in_lru_order,
    held_by,
    live_holds,
    sizing_advice,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def state(number: str, created: float = 600, **hold: object) -> NumberState:
    return NumberState(number=number, created_at=ago(created), **hold)  # type: ignore[arg-type]


def test_free_numbers_come_least_recently_used_first() -> None:
    states = [
        state("+4420000003", held_until=ago(1), visit_id="a"),  # released a minute ago
        state("+4420000002", created=5),  # never held, registered 5 minutes ago
        state("+4420000001", held_until=ago(30), visit_id="b"),  # released 30 minutes ago
        state("+4420000004", held_until=ago(-5), visit_id="c"),  # held for 5 more minutes
        state("+4420000005", created=900, retired=True),  # deleted
    ]
    assert [s.number for s in free_in_lru_order(states, NOW)] == [
        "+4420000001",
        "+4420000002",
        "+4420000003",
    ]
    assert live_holds(states, NOW) == 1


def test_ties_are_broken_by_number_so_every_assigner_tries_the_same_order() -> None:
    states = [state("+4420000002"), state("+4420000001")]
    assert [s.number for s in free_in_lru_order(states, NOW)] == ["+4420000001", "+4420000002"]


def test_a_hold_ending_now_is_over() -> None:
    ending = state("+4420000001", held_until=NOW, visit_id="a")
    assert not ending.live(NOW)
    assert free_in_lru_order([ending], NOW) == [ending]
    assert held_by([ending], "a", NOW) is None


def test_a_visit_finds_its_own_live_hold_only() -> None:
    states = [
        state("+4420000001", held_until=ago(-5), visit_id="a"),
        state("+4420000002", held_until=ago(-5), visit_id="b"),
    ]
    assert held_by(states, "b", NOW) == states[1]
    assert held_by(states, "c", NOW) is None
    deleted = state("+4420000003", held_until=ago(-5), visit_id="c", retired=True)
    assert held_by([*states, deleted], "c", NOW) is None  # not renewed: the visit moves on


def test_a_hold_covers_its_start_to_its_end_both_included() -> None:
    hold = Hold("+4420000001", ago(10), ago(0), "v", "s", None)
    assert hold.covers(ago(10)) and hold.covers(ago(5)) and hold.covers(NOW)
    assert not hold.covers(ago(10.01)) and not hold.covers(ago(-0.01))


@pytest.mark.parametrize(
    ("numbers", "peak", "assignments", "exhausted", "add", "text"),
    [
        (8, 0, 0, 0, 0, "no visit asked for a number in this period"),
        (8, 5, 400, 0, 0, "enough numbers: at most 5 of 8 were held at once"),
        (8, 8, 400, 0, 1, "add 1 number: all 8 were held at once at the peak, with no margin"),
        # 8 numbers served 930 visits, 70 found none (7%): 8 * 70 / 930 = 0.6 -> 1.
        (8, 8, 930, 70, 1, "add 1 number: 7% of visits saw your own number in this period"),
        # 10 numbers, 300 served, 86 turned away: 10 * 86 / 300 = 2.9 -> 3.
        (10, 10, 300, 86, 3, "add 3 numbers: 22% of visits saw your own number in this period"),
        (10, 10, 2000, 1, 1, "add 1 number: under 1% of visits saw your own number in this period"),
        (2, 2, 0, 5, 2, "add 2 numbers: 100% of visits saw your own number in this period"),
    ],
)
def test_the_sizing_advice(
    numbers: int, peak: int, assignments: int, exhausted: int, add: int, text: str
) -> None:
    advice = sizing_advice(numbers, peak, assignments, exhausted)
    assert (advice.add, advice.text) == (add, text)
