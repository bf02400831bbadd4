"""Google Ads offline conversion import files, pure: rows in the layout of Google's
templates for "conversions from clicks" and for conversion adjustments (Google Ads Help,
"Import conversions from ad clicks into Google Ads" and "How to adjust your conversions").

Both start with a `Parameters:TimeZone=` line (the account's time zone); every time also
carries its offset (`yyyy-MM-dd HH:mm:ss+hhmm`), which Google reads first. Conversions
are exported with the value they were counted with; what happened to it later goes in
the adjustments file (RESTATE with the new value, RETRACT with none), which Google wants
uploaded apart from the conversions.
"""

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from goalkeeper.models.common import money_text
from goalkeeper.models.ledger import RETRACT
from goalkeeper.values import Money

CONVERSION_HEADERS = (
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Conversion Value",
    "Conversion Currency",
)
ADJUSTMENT_HEADERS = (
    "Google Click ID",
    "Conversion Name",
    "Conversion Time",
    "Adjustment Time",
    "Adjustment Type",
    "Adjusted Value",
    "Adjusted Value Currency",
)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S%z"
# The file's words for the adjustment types (the Google Ads API says RETRACTION and
# RESTATEMENT; an upload file with those words is refused).
ADJUSTMENT_TYPES = {"retract": "RETRACT", "restate": "RESTATE"}
# Click ids of Google's ads: a conversion credited to another source is not Google's.
GOOGLE_SOURCE = "google"


def google_click(attribution: dict[str, str] | None) -> str | None:
    """The conversion's Google click id (gclid, or gbraid / wbraid), if it has one."""
    attribution = attribution or {}
    if (attribution.get("source") or "").lower() != GOOGLE_SOURCE:
        return None
    return attribution.get("click_id")


@dataclass(frozen=True)
class ClickConversion:
    click_id: str
    name: str
    at: datetime
    value: Money | None


@dataclass(frozen=True)
class ClickAdjustment:
    click_id: str
    name: str
    conversion_at: datetime
    at: datetime
    kind: str  # "retract" | "restate"
    value: Money | None


def zone_time(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).strftime(TIME_FORMAT)


def _money_cells(value: Money | None) -> list[str]:
    return [money_text(value.amount), value.currency] if value is not None else ["", ""]


def conversions_csv(conversions: Iterable[ClickConversion], timezone: str) -> str:
    rows = (
        [c.click_id, c.name, zone_time(c.at, timezone), *_money_cells(c.value)] for c in conversions
    )
    return _csv(CONVERSION_HEADERS, rows, timezone)


def adjustments_csv(adjustments: Iterable[ClickAdjustment], timezone: str) -> str:
    rows = (
        [
            a.click_id,
            a.name,
            zone_time(a.conversion_at, timezone),
            zone_time(a.at, timezone),
            ADJUSTMENT_TYPES[a.kind],
            *_money_cells(None if a.kind == RETRACT else a.value),
        ]
        for a in adjustments
    )
    return _csv(ADJUSTMENT_HEADERS, rows, timezone)


def _csv(headers: Sequence[str], rows: Iterable[list[str]], timezone: str) -> str:
    out = io.StringIO()
    out.write(f"Parameters:TimeZone={timezone}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()
