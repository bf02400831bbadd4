"""The attribution models over a visitor's touches (pure)."""

from datetime import UTC, datetime, timedelta

import pytest

from goalkeeper.crediting import (
    DIRECT,
    AttributionModel,
    Touch,
    credited_attribution,
    credited_touch,
)
from goalkeeper.models.events import Attribution

CONVERTED = datetime(2026, 11, 20, 12, tzinfo=UTC)
PAID = Attribution(source="google", medium="cpc", campaign="winter", keyword="boots")
SOCIAL = Attribution(source="facebook", medium="social")


def touch(days_before: float, attribution: Attribution | None, event_id: str = "") -> Touch:
    return Touch(
        CONVERTED - timedelta(days=days_before), event_id or f"e{days_before}", attribution
    )


JOURNEY = [touch(40, SOCIAL), touch(10, PAID), touch(2, None), touch(-1, SOCIAL)]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # A direct visit never replaces a paid touch; the touch after the sale is not its cause.
        (AttributionModel.LAST_NON_DIRECT, PAID),
        (AttributionModel.LAST_TOUCH, DIRECT),
        # The social touch 40 days back is outside the 30-day lookback.
        (AttributionModel.FIRST_TOUCH, PAID),
    ],
)
def test_each_model_credits_its_touch_within_the_lookback(model, expected):
    assert credited_attribution(credited_touch(model, 30, CONVERTED, JOURNEY)) == expected


def test_a_longer_lookback_reaches_older_touches():
    first = credited_touch(AttributionModel.FIRST_TOUCH, 90, CONVERTED, JOURNEY)
    assert credited_attribution(first) == SOCIAL


def test_the_answer_does_not_depend_on_the_order_touches_are_read_in():
    for model in AttributionModel:
        credited = {
            credited_touch(model, 30, CONVERTED, order)
            for order in (JOURNEY, list(reversed(JOURNEY)), JOURNEY[2:] + JOURNEY[:2])
        }
        assert len(credited) == 1


def test_touches_at_the_same_instant_are_decided_by_event_id():
    tied = [touch(1, SOCIAL, "b"), touch(1, PAID, "a")]
    last = credited_touch(AttributionModel.LAST_TOUCH, 30, CONVERTED, tied)
    assert last is not None and last.event_id == "b"


def test_only_direct_entries_credit_direct_and_no_touch_credits_nothing():
    assert credited_touch(AttributionModel.LAST_NON_DIRECT, 30, CONVERTED, []) is None
    only_direct = [touch(1, None), touch(3, None)]
    last = credited_touch(AttributionModel.LAST_NON_DIRECT, 30, CONVERTED, only_direct)
    assert last == only_direct[0]
    assert credited_attribution(last) == DIRECT
    assert credited_attribution(None) is None


def test_the_lookback_bounds_are_inclusive():
    edge = [touch(30, PAID)]
    assert credited_touch(AttributionModel.LAST_TOUCH, 30, CONVERTED, edge) == edge[0]
    assert credited_touch(AttributionModel.LAST_TOUCH, 29, CONVERTED, edge) is None
