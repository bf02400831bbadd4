"""Funnels: an ordered list of goals, each step counted for a visitor who reached the
previous step within the funnel's window (POST|GET|DELETE /v1/funnels)."""

from datetime import datetime

from pydantic import Field, field_validator

from goalkeeper.models.common import Identifier, ShortText, StrictModel

MIN_STEPS, MAX_STEPS = 2, 8


class FunnelSpec(StrictModel):
    """What a user writes to create a funnel."""

    name: ShortText
    steps: list[Identifier] = Field(min_length=MIN_STEPS, max_length=MAX_STEPS)
    window_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="each step counts when the previous step was reached at most this "
        "many days before it",
    )

    @field_validator("steps")
    @classmethod
    def _distinct_steps(cls, steps: list[str]) -> list[str]:
        if len(set(steps)) != len(steps):
            raise ValueError("a goal may be only one step of a funnel")
        return steps


class Funnel(FunnelSpec):
    funnel_id: Identifier
    created_at: datetime
    active: bool = True
