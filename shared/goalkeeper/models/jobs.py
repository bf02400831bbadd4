"""Background jobs: a goal's backfill (POST /v1/goals/{goal_id}/backfill), a funnel's
(POST /v1/funnels/{funnel_id}/backfill); GET /v1/jobs/{job_id}."""

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from goalkeeper.models.common import StrictModel

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day_text(value: object) -> str:
    # pydantic would also read a number (seconds since 1970) or a midnight timestamp as a
    # date; a range is written as days, so anything else is refused.
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_day_text)]


class BackfillRequest(StrictModel):
    """Days in the account's time zone, both included; `to` defaults to today."""

    start: Day = Field(alias="from")
    end: Day | None = Field(default=None, alias="to")


JobStatus = Literal["queued", "running", "done", "failed"]


class Job(StrictModel):
    job_id: str
    kind: Literal["backfill", "funnel_backfill"]
    # A job shows what it works on: a goal's backfill its goal and the goal's version, a
    # funnel's backfill its funnel (goalkeeper.services.backfill.job_view).
    goal_id: str | None = None
    goal_version: int | None = None
    funnel_id: str | None = None
    status: JobStatus
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    processed: int = Field(description="events of the range read and decided so far")
    total: int | None = Field(description="events in the range; null while they are counted")
    counted: int = Field(
        description="events read whose conversion of the goal counts; a funnel's backfill: "
        "counted conversions read that are on a step of the funnel"
    )
    void: int = Field(
        description="events read whose conversion of the goal is void; a funnel's backfill: "
        "counted conversions read of the funnel's goals that are on no step (the previous "
        "step not reached within the window)"
    )
    created_at: str
    updated_at: str
    error: str | None = None
