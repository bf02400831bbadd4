"""The value ledger: adjustments of a counted conversion's value after the fact (a refund,
a later sale value), POST /v1/conversions/{conversion_id}/adjustments."""

from decimal import Decimal
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from goalkeeper.models.common import Amount, Currency, Identifier, ShortText, StrictModel

RETRACT = "retract"
RESTATE = "restate"


class AdjustmentRequest(StrictModel):
    """A retraction takes the conversion's value out of the reports (a refund); a
    restatement replaces it (a later or corrected value). `adjustment_id` makes the
    request idempotent: sent again with the same body, the stored adjustment is the answer."""

    adjustment_id: Identifier
    type: Literal["retract", "restate"]
    value: Amount | None = Field(default=None, validate_default=True)
    currency: Currency | None = Field(default=None, validate_default=True)
    reason: ShortText

    @field_validator("value")
    @classmethod
    def _value_for_restatements(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        kind = info.data.get("type")
        if kind == RESTATE and value is None:
            raise ValueError("is required for a restatement")
        if kind == RETRACT and value is not None:
            raise ValueError("a retraction takes no value")
        return value

    @field_validator("currency")
    @classmethod
    def _currency_for_restatements(cls, currency: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") == RETRACT and currency is not None:
            raise ValueError("a retraction takes no currency")
        return currency
