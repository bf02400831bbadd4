"""Accounts (tenants), their settings and their keys (/v1/accounts, /v1/account, /v1/keys)."""

from typing import Literal
from zoneinfo import available_timezones

from pydantic import Field, field_validator

from goalkeeper.crediting import DEFAULT_LOOKBACK_DAYS, MAX_LOOKBACK_DAYS, AttributionModel
from goalkeeper.models.common import ShortText, StrictModel


class AccountRequest(StrictModel):
    name: ShortText | None = None
    timezone: str = Field(default="UTC", description="IANA time zone that report days use")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        if zone != "UTC" and zone not in available_timezones():
            raise ValueError(f"{zone!r} is not an IANA time zone such as Europe/London")
        return zone


class AccountKeys(StrictModel):
    write: str
    read: str


class NewAccount(StrictModel):
    account_id: str
    name: str | None = None
    timezone: str
    keys: AccountKeys


class AttributionSettings(StrictModel):
    """How a conversion without attribution of its own is credited (goalkeeper.crediting)."""

    model: AttributionModel = AttributionModel.LAST_NON_DIRECT
    lookback_days: int = Field(
        default=DEFAULT_LOOKBACK_DAYS,
        ge=1,
        le=MAX_LOOKBACK_DAYS,
        description="How many days before a conversion its touches are looked at",
    )


class AccountSettingsRequest(StrictModel):
    """PUT /v1/account."""

    attribution: AttributionSettings


class AccountInfo(StrictModel):
    """GET /v1/account: the account and its settings."""

    account_id: str
    name: str | None = None
    timezone: str
    created_at: str | None = None
    attribution: AttributionSettings


AccountRole = Literal["write", "read"]


class KeyRequest(StrictModel):
    """POST /v1/keys. A key issues keys of its own role only, so `role` may be left out."""

    role: AccountRole | None = None
    label: ShortText | None = Field(
        default=None, description="A name to recognise the key by, e.g. 'shop web site'"
    )


class ApiKeyInfo(StrictModel):
    """What anyone may see of a key: never the key itself, nor its digest."""

    key_id: str
    role: AccountRole
    prefix: str = Field(description="The key's first characters, to recognise it")
    label: str | None = None
    created_at: str
    revoked_at: str | None = None


class NewApiKey(ApiKeyInfo):
    key: str = Field(description="The key itself, shown this once")
