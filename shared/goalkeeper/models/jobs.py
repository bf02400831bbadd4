"""Background jobs: a goal backfill (POST /v1/goals/{goal_id}/backfill, GET /v1/jobs/{job_id})."""

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
    kind: Literal["backfill"]
    goal_id: str
    goal_version: int
    status: JobStatus
    start: date = Field(alias="from")
    end: date = Field(alias="to")
    processed: int = Field(description="events of the range read and decided so far")
    total: int | None = Field(description="events in the range; null while they are counted")
    counted: int = Field(description="events read whose conversion of the goal counts")
    void: int = Field(description="events read whose conversion of the goal is void")
    created_at: str
    updated_at: str
    error: str | None = None
