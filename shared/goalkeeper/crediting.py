"""Which earlier touch a conversion is credited to, when its event carries no
attribution of its own: the account's model over the touches within its lookback."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from goalkeeper.models.events import Attribution, EventBase
from goalkeeper.traffic_sources import is_direct_entry, own_attribution


class AttributionModel(StrEnum):
    LAST_NON_DIRECT = "last_non_direct"
    LAST_TOUCH = "last_touch"
    FIRST_TOUCH = "first_touch"


class AttributionSource(StrEnum):
    """How a conversion's attribution was found."""

    EVENT = "event"
    VISITOR = "visitor"
    CONTACT = "contact"
    NONE = "none"


DEFAULT_LOOKBACK_DAYS = 30
MAX_LOOKBACK_DAYS = 90
# What a direct visit is reported as, in Google Analytics' words, which marketers know.
DIRECT = Attribution(source="(direct)", medium="(none)")


@dataclass(frozen=True, order=True)
class Touch:
    """A visit's way in. Ordered by time, then event id, so ties are decided the same
    way whatever order the touches were stored or read in."""

    occurred_at: datetime
    event_id: str
    attribution: Attribution | None = field(compare=False)  # None: a direct visit

    @property
    def direct(self) -> bool:
        return self.attribution is None


@dataclass(frozen=True)
class Credit:
    """What a conversion is credited to, and how that was found."""

    attribution: Attribution | None
    source: AttributionSource

    @classmethod
    def none(cls) -> "Credit":
        return cls(None, AttributionSource.NONE)


def touch_of(event: EventBase) -> Touch | None:
    """The touch an event (with its id and time set) records: a way in with its
    attribution, a direct entry, or none."""
    assert event.event_id is not None and event.occurred_at is not None
    attribution = own_attribution(event)
    if attribution is None and not is_direct_entry(event):
        return None
    return Touch(event.occurred_at, event.event_id, attribution)


def credited_touch(
    model: AttributionModel, lookback_days: int, converted_at: datetime, touches: Iterable[Touch]
) -> Touch | None:
    """The touch `model` credits among those in [converted_at - lookback, converted_at].
    Under last_non_direct a direct entry is credited only when the lookback holds
    nothing else: the visitor did come back on their own."""
    since = converted_at - timedelta(days=lookback_days)
    eligible = sorted(touch for touch in touches if since <= touch.occurred_at <= converted_at)
    if model is AttributionModel.LAST_NON_DIRECT:
        eligible = [touch for touch in eligible if not touch.direct] or eligible[-1:]
    if not eligible:
        return None
    return eligible[0] if model is AttributionModel.FIRST_TOUCH else eligible[-1]


def credited_attribution(touch: Touch | None) -> Attribution | None:
    if touch is None:
        return None
    return touch.attribution or DIRECT
