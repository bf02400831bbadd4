"""Crediting a conversion: its event's own attribution when it has one, else the
account's model over the touches of its visitor within the lookback, else over
those of its contact (events naming the contact and no visitor, and every visitor
the contact was identified as). Reads only, Limit 1 each: at most two per scope."""

from datetime import datetime, timedelta
from typing import Protocol

from goalkeeper import keys
from goalkeeper.crediting import (
    AttributionModel,
    AttributionSource,
    Credit,
    Touch,
    credited_attribution,
    credited_touch,
    touch_of,
)
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.models.events import EventBase
from goalkeeper.traffic_sources import own_attribution


class TouchReader(Protocol):
    """What crediting needs of the touches' data access (goalkeeper.dal.touches)."""

    def end(
        self, scope_pk: str, direct: bool, since: datetime, until: datetime, newest: bool
    ) -> Touch | None: ...

    def linked_visitors(self, account_id: str, contact_id: str) -> list[str]: ...


def credit_conversion(
    touches: TouchReader, account_id: str, settings: AttributionSettings, event: EventBase
) -> Credit:
    """What a conversion of `event` (its id and time set) is credited to."""
    own = own_attribution(event)
    if own is not None:
        return Credit(own, AttributionSource.EVENT)
    at: datetime = event.occurred_at  # type: ignore[assignment]
    # A direct entry converting is a touch of its own, even before the index shows it.
    entry = touch_of(event)
    if event.visitor_id:
        scopes = [keys.touches_pk(account_id, "V", event.visitor_id)]
        found = _credited(touches, settings, scopes, at, entry)
        if found is not None:
            return Credit(credited_attribution(found), AttributionSource.VISITOR)
    if event.contact_id:
        visitors = touches.linked_visitors(account_id, event.contact_id)
        scopes = [keys.touches_pk(account_id, "C", event.contact_id)] + [
            keys.touches_pk(account_id, "V", visitor)
            for visitor in visitors
            if visitor != event.visitor_id
        ]
        found = _credited(touches, settings, scopes, at, entry)
        if found is not None:
            return Credit(credited_attribution(found), AttributionSource.CONTACT)
    return Credit.none()


def _credited(
    touches: TouchReader,
    settings: AttributionSettings,
    scopes: list[str],
    at: datetime,
    entry: Touch | None,
) -> Touch | None:
    """The touch the model credits among these scopes' touches: each scope's end of
    each family the model can credit, then the model over those few."""
    since = at - timedelta(days=settings.lookback_days)
    model = settings.model
    newest = model is not AttributionModel.FIRST_TOUCH
    families = (False,) if model is AttributionModel.LAST_NON_DIRECT else (False, True)
    candidates = [
        touches.end(scope, direct, since, at, newest) for scope in scopes for direct in families
    ]
    if model is AttributionModel.LAST_NON_DIRECT and not any(candidates):
        # Only now can a direct entry be credited: the lookback holds nothing else.
        candidates = [touches.end(scope, True, since, at, newest) for scope in scopes]
    found = [touch for touch in candidates if touch is not None]
    return credited_touch(model, settings.lookback_days, at, found + ([entry] if entry else []))
