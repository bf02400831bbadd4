"""Field types shared by the API models: identifiers, money, currencies, times."""

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from goalkeeper.currencies import ISO_4217_CODES

# Ids become part of DynamoDB keys, so '#' (the key separator) and whitespace are refused.
Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@|/+=~-]+$")
]


def _no_slash(visitor_id: str) -> str:
    # A visitor id is a segment of its trace's URL (/v1/visitors/{visitor_id}/trace):
    # a '/' would split it, and an encoded %2F is decoded before routing (the local
    # gateway does; API Gateway's handling of it is nothing to build on).
    if "/" in visitor_id:
        raise ValueError("may contain letters, digits and ._:@|+=~- only (no '/')")
    return visitor_id


VisitorId = Annotated[Identifier, AfterValidator(_no_slash)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2048)]


def _currency(code: str) -> str:
    if code not in ISO_4217_CODES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


Currency = Annotated[str, StringConstraints(min_length=3, max_length=3), AfterValidator(_currency)]

# Money is decimal end to end: JSON numbers are parsed as Decimal, strings accepted too.
Amount = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000000"), max_digits=18, decimal_places=6, allow_inf_nan=False),
]

# "+44 (0)20 …": the bracketed 0 is the national trunk prefix, never dialled from abroad.
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")
_E164_JUNK = re.compile(r"[\s().\-/]")
# ASCII digits only: "\d" would also take full-width or Arabic-Indic digits, and one
# number written in two scripts would become two callers (two keyed hashes).
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _e164(number: str) -> str:
    compact = _E164_JUNK.sub("", _TRUNK_ZERO.sub("", number))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if not _E164.fullmatch(compact):
        raise ValueError(
            "must be an international phone number written with the digits 0-9, e.g. +442071234567"
        )
    return compact


PhoneNumber = Annotated[str, StringConstraints(max_length=32), AfterValidator(_e164)]

# What phone systems put where a caller withheld their number: words, and Twilio's
# placeholders, which spell a word on a keypad (+266696687 "ANONYMOUS", +7378742833
# "RESTRICTED", +86282452253 "UNAVAILABLE", +2562533 "BLOCKED", +8656696 "UNKNOWN"). The
# placeholders look like numbers: taken for one, every withheld call would be one caller.
WITHHELD_CALLERS = frozenset(
    {"anonymous", "restricted", "unknown", "private", "blocked", "unavailable", "withheld"}
    | {"+266696687", "+7378742833", "+86282452253", "+2562533", "+8656696"}
)


def _withheld_as_absent(number: object) -> object:
    if isinstance(number, str) and number.strip().lower() in WITHHELD_CALLERS | {""}:
        return None
    return number


# A caller's number as a phone system reports it: a withheld one is a call without a caller.
CallerNumber = Annotated[PhoneNumber | None, BeforeValidator(_withheld_as_absent)]
# A number as stored: normalised when it was sent, and not held to later checks.
AcceptedPhoneNumber = Annotated[str, StringConstraints(max_length=32)]


class StrictModel(BaseModel):
    """Unknown fields are refused everywhere, naming the field (one documented rule)."""

    # defer_build: schemas are built on first use, not at import (Lambda cold start).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    """Fixed-width UTC timestamps, so string order is time order in sort keys."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def money_text(amount: Decimal) -> str:
    return (
        f"{amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount.normalize():f}"
    )


def to_item(data: Any) -> Any:
    """Plain data for DynamoDB: datetimes become fixed-width ISO text, decimals stay exact."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="python", exclude_none=True)
    if isinstance(data, dict):
        return {key: to_item(value) for key, value in data.items() if value is not None}
    if isinstance(data, list | tuple):
        return [to_item(value) for value in data]
    if isinstance(data, datetime):
        return iso(data)
    return data


def local_day(at: datetime, timezone: str) -> str:
    return at.astimezone(ZoneInfo(timezone)).date().isoformat()
