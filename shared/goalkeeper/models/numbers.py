"""Call tracking numbers (POST/GET/DELETE /v1/numbers), dynamic number insertion
(POST /v1/numbers/assign) and the pool report (GET /v1/reports/numbers)."""

from datetime import datetime
from typing import Literal

from goalkeeper.models.common import Identifier, PhoneNumber, ShortText, StrictModel, VisitorId
from goalkeeper.models.events import Attribution


class NumberRequest(StrictModel):
    """A static number carries fixed attribution (the offline campaign it is printed
    on); a pool number stands in for the site's own number (`replaces`) during one
    visit at a time. `pool` names the pool in reports (default: the number it replaces).
    Which fields go with which kind is checked by the service (goalkeeper.services.numbers),
    so each problem names its field."""

    number: PhoneNumber
    kind: Literal["static", "pool"]
    attribution: Attribution | None = None
    pool: ShortText | None = None
    replaces: PhoneNumber | None = None


class TrackingNumber(StrictModel):
    number: str
    kind: Literal["static", "pool"]
    attribution: Attribution | None = None
    pool: str | None = None
    replaces: str | None = None
    created_at: str


class AssignRequest(StrictModel):
    visitor_id: VisitorId
    visit_id: Identifier
    attribution: Attribution | None = None
    replaces: PhoneNumber


class Assignment(StrictModel):
    """`pooled` false: the pool was exhausted, and `number` is the site's own one."""

    number: str
    held_until: datetime | None
    pooled: bool
