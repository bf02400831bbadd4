"""Touches: the ways in of a visitor (or a contact), read for crediting conversions,
and which visitors each contact was identified as.

A touch is not an item of its own: an event that records one carries the touch
index's keys (`dal.events.touch_entry`), so it is stored with its event, once. Each
model asks for one end of one family of a scope's touches within the lookback
(Limit 1, newest or oldest first): a read whose cost does not grow with the touches
kept. The touch index is a secondary index, so a touch stored a moment ago may not
show yet (the conversion's own event is never needed from it: its own attribution
comes first).
"""

from datetime import datetime
from typing import Any

from goalkeeper import keys
from goalkeeper.crediting import Touch
from goalkeeper.dal.client import Table
from goalkeeper.dal.events import TOUCH_ATTRIBUTION
from goalkeeper.dal.transactions import Expression
from goalkeeper.models.common import iso
from goalkeeper.models.events import Attribution

# Visitors of one contact read for its touches: one page, so a contact's crediting
# costs at most this many visitors' reads.
MAX_LINKED_VISITORS = 10


def _touch(item: dict[str, Any]) -> Touch:
    _, at, event_id = item["gsi4sk"].split("#", 2)
    attribution = item.get(TOUCH_ATTRIBUTION)
    return Touch(
        datetime.fromisoformat(at),
        event_id,
        Attribution.model_validate(attribution) if attribution is not None else None,
    )


class Touches:
    def __init__(self, table: Table) -> None:
        self._table = table

    def end(
        self,
        scope_pk: str,
        direct: bool,
        since: datetime,
        until: datetime,
        newest: bool,
    ) -> Touch | None:
        """The newest (or oldest) touch of one family of a scope, at times in
        [since, until]; None when there is none."""
        low, high = keys.touch_range(direct, iso(since), iso(until))
        expression = Expression()
        condition = (
            f"{expression.name('gsi4pk')} = {expression.value(scope_pk)} AND "
            f"{expression.name('gsi4sk')} BETWEEN {expression.value(low)} "
            f"AND {expression.value(high)}"
        )
        page = self._table.page(
            1,
            None,
            IndexName=keys.TOUCH_INDEX,
            KeyConditionExpression=condition,
            ScanIndexForward=not newest,
            **expression.request(),
        )
        return _touch(page.items[0]) if page.items else None

    def link_visitors(self, account_id: str, pairs: set[tuple[str, str]]) -> None:
        """Record that each (contact, visitor) was identified together (idempotent)."""
        self._table.put_many(
            [
                keys.contact_visitor(account_id, contact_id, visitor_id)
                | {"kind": "contact_visitor", "visitor_id": visitor_id}
                for contact_id, visitor_id in sorted(pairs)
            ]
        )

    def linked_visitors(self, account_id: str, contact_id: str) -> list[str]:
        """Visitors a contact was identified as (at most MAX_LINKED_VISITORS)."""
        expression = Expression()
        pk = keys.contact_visitors_pk(account_id, contact_id)
        page = self._table.page(
            MAX_LINKED_VISITORS,
            None,
            KeyConditionExpression=f"{expression.name(keys.PK)} = {expression.value(pk)}",
            **expression.request(),
        )
        return [item["visitor_id"] for item in page.items]
