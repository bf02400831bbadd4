"""GET /v1/exports/google-ads: an account's conversions of Google ad clicks, or their
adjustments, as a Google Ads import file (goalkeeper.ads_export). A range is read day by
day from the day index (gsi3), where only conversions and adjustments carrying a click
id sit: the cost follows those, never the account's other events or conversions."""

from collections.abc import Iterator
from datetime import date, datetime
from itertools import islice
from typing import TypeVar

from goalkeeper.ads_export import (
    ClickAdjustment,
    ClickConversion,
    adjustments_csv,
    conversions_csv,
    google_click,
)
from goalkeeper.dal import Dal
from goalkeeper.errors import FieldProblem, InvalidInput
from goalkeeper.services.goals import list_goals
from goalkeeper.services.reports import date_range

# Google counts a click's conversions for up to 90 days; a file covers at most that.
MAX_RANGE_DAYS = 90
# Rows one file holds at most (a response stays well under Lambda's 6 MB).
MAX_ROWS = 20_000
Row = TypeVar("Row", ClickConversion, ClickAdjustment)


def google_ads_export(
    dal: Dal,
    account_id: str,
    goal_ids: list[str] | None,
    start: date | None,
    end: date | None,
    kind: str,
    now: datetime,
) -> str:
    """The import file of `kind` for the goals (every goal when None) over the range of
    account days: conversions by the day they happened, adjustments by the day made."""
    timezone = dal.accounts.timezone(account_id)
    span = date_range(start, end, timezone, now, max_days=MAX_RANGE_DAYS)
    names = {goal.goal_id: goal.name for goal in list_goals(dal.goals, account_id)}
    unknown = sorted(set(goal_ids or ()) - names.keys())
    if unknown:
        raise InvalidInput(
            "the export names goals this account does not have",
            [FieldProblem("goal_ids", f"unknown goal ids: {', '.join(unknown)}")],
        )
    wanted = set(goal_ids) if goal_ids else set(names)
    if kind == "adjustments":
        adjustments = (
            ClickAdjustment(
                click,
                names[a.goal_id],
                datetime.fromisoformat(a.conversion_at),
                datetime.fromisoformat(a.at),
                a.type,
                a.value,
            )
            for day in span.days()
            for a in dal.ledger.ads_adjustments(account_id, day)
            if a.goal_id in wanted and (click := google_click(a.attribution))
        )
        return adjustments_csv(_bounded(adjustments), timezone)
    conversions = (
        ClickConversion(click, names[c.goal_id], datetime.fromisoformat(c.occurred_at), c.gross)
        for day in span.days()
        for c in dal.ledger.ads_conversions(account_id, day)
        if c.goal_id in wanted and (click := google_click(c.attribution))
    )
    return conversions_csv(_bounded(conversions), timezone)


def _bounded(rows: Iterator[Row]) -> list[Row]:
    """The rows, read no further than one past the most a file holds."""
    bounded = list(islice(rows, MAX_ROWS + 1))
    if len(bounded) > MAX_ROWS:
        raise InvalidInput(
            "the range holds too many rows for one file",
            [FieldProblem("to", f"more than {MAX_ROWS} rows: choose a shorter range")],
        )
    return bounded
