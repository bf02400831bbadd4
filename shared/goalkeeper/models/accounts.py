"""Accounts (tenants) and their keys (POST /v1/accounts, /v1/keys)."""

from typing import Literal
from zoneinfo import available_timezones

from pydantic import Field, field_validator

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
