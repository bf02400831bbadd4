"""Accounts (tenants), their settings and their keys (/v1/accounts, /v1/account, /v1/keys)."""

from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

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
    site: str = Field(description="Publishable: may only send events, from web pages too")


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


AccountRole = Literal["write", "read", "site"]
MAX_ALLOWED_ORIGINS = 20
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(text: str) -> str:
    """An origin as browsers write it in the Origin header: scheme://host[:port], in
    lower case, without the default port (a trailing '/' is forgiven)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{text!r} is not an origin such as https://shop.example") from error
    if (
        parts.scheme.lower() not in _DEFAULT_PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"{text!r} is not an origin such as https://shop.example "
            "(scheme and host, a port if not the default; no path)"
        )
    scheme = parts.scheme.lower()
    shown_port = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{parts.hostname.lower()}{shown_port}"


Origin = Annotated[str, Field(max_length=256), AfterValidator(_origin)]


class KeyRequest(StrictModel):
    """POST /v1/keys. A read key issues read keys; a write key write keys (the default)
    and site keys; the admin key any role, and must name it."""

    role: AccountRole | None = None
    label: ShortText | None = Field(
        default=None, description="A name to recognise the key by, e.g. 'shop web site'"
    )
    allowed_origins: list[Origin] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ALLOWED_ORIGINS,
        description="A site key's only: the origins (https://shop.example) whose pages "
        "may use it; any other Origin, or none, is refused. Leave out for any origin.",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _site_keys_only(cls, origins: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if origins is not None and info.data.get("role") != "site":
            raise ValueError("only a site key (role 'site') has allowed origins")
        return None if origins is None else list(dict.fromkeys(origins))


class ApiKeyInfo(StrictModel):
    """What anyone may see of a key: never the key itself, nor its digest."""

    key_id: str
    role: AccountRole
    prefix: str = Field(description="The key's first characters, to recognise it")
    label: str | None = None
    created_at: str
    revoked_at: str | None = None
    allowed_origins: list[str] | None = Field(
        default=None, description="A site key's allowed origins; null: any origin"
    )


class NewApiKey(ApiKeyInfo):
    key: str = Field(description="The key itself, shown this once")
