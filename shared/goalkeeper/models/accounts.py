"""Accounts (tenants) and their keys (POST /v1/accounts)."""

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
