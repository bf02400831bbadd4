"""The one place where an API key becomes (account, role).

Keys are random, shown once, and stored only as SHA-256 digests; a request's key
is hashed and looked up by digest, so the plaintext never touches the table.
Every route declares the roles it accepts with `require(...)`.

A site key is the one meant to be published in web pages: it may only send events
(and ask for a tracking number), may name the origins allowed to use it, and is the
only key that may travel in a URL (`?key=`), because beacons cannot set headers.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from goalkeeper.dal.accounts import Accounts
from goalkeeper.errors import Forbidden, Unauthenticated
from goalkeeper.settings import get_settings

API_KEY_HEADER = "x-api-key"


class Role(StrEnum):
    ADMIN = "admin"
    WRITE = "write"
    READ = "read"
    SITE = "site"


@dataclass(frozen=True)
class Principal:
    role: Role
    account_id: str | None  # None only for the admin
    # A site key's allowed origins (scheme://host[:port]); empty: any origin.
    allowed_origins: tuple[str, ...] = ()


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(role: Role) -> str:
    """192 random bits, prefixed so a leaked key's kind is recognisable."""
    return f"gk_{role.value}_{secrets.token_urlsafe(24)}"


KEY_ID_PATTERN = re.compile(r"key_[0-9a-f]{16}")


def new_key_id() -> str:
    """A key's public name: random, so it says nothing about the key or its digest."""
    return f"key_{secrets.token_hex(8)}"


KEY_PREFIX_RANDOM_CHARS = 4


def key_prefix(key: str, role: Role) -> str:
    """The role marker and the first 4 random characters (24 of 192 bits): enough to
    recognise a key in a list, far too little to guess it."""
    return key[: len(f"gk_{role.value}_") + KEY_PREFIX_RANDOM_CHARS]


KeyLookup = Callable[[str], Principal | None]

QUERY_KEY_PARAMETER = "key"
SITE_KEY_PREFIX = f"gk_{Role.SITE.value}_"


def authenticate(
    presented: str | None, lookup: KeyLookup, in_query: str | None = None
) -> Principal:
    """The principal of the request's key: the x-api-key header's, or a site key sent
    as ?key= (`in_query`). Any other key in a URL is refused (and not even looked up
    unless it looks like a site key): URLs end up in logs and browser histories, so
    such a key is to be revoked, not used."""
    if presented and in_query:
        raise Unauthenticated(
            f"send the key once: in the {API_KEY_HEADER} header or as ?{QUERY_KEY_PARAMETER}="
        )
    return (
        _authenticate_site_key(in_query, lookup) if in_query else _authenticate(presented, lookup)
    )


def _authenticate_site_key(presented: str, lookup: KeyLookup) -> Principal:
    refusal = Unauthenticated(
        f"only a site key ({SITE_KEY_PREFIX}...) may be sent as ?{QUERY_KEY_PARAMETER}=; "
        f"send other keys in the {API_KEY_HEADER} header (and revoke one that was in a URL)"
    )
    if not presented.startswith(SITE_KEY_PREFIX):
        raise refusal
    principal = _authenticate(presented, lookup)
    if principal.role is not Role.SITE:
        raise refusal
    return principal


def _authenticate(presented: str | None, lookup: KeyLookup) -> Principal:
    if not presented:
        raise Unauthenticated(f"missing {API_KEY_HEADER} header")
    digest = key_digest(presented)
    admin_digest = get_settings().admin_key_sha256
    if admin_digest and hmac.compare_digest(digest, admin_digest):
        return Principal(Role.ADMIN, None)
    principal = lookup(digest)
    if principal is None:
        raise Unauthenticated("unknown or revoked API key")
    return principal


def stored_key_lookup(accounts: Accounts) -> KeyLookup:
    def lookup(digest: str) -> Principal | None:
        owner = accounts.key_owner(digest)
        if owner is None or owner.revoked:
            return None
        return Principal(Role(owner.role), owner.account_id, owner.allowed_origins)

    return lookup


def check_origin(principal: Principal, origin: str | None) -> None:
    """A site key with allowed origins serves pages of those origins only, so a request
    naming no Origin (a server, curl) is refused too rather than let through for saying
    less. Browsers write Origin themselves; any other client can write any origin, so
    this stops other web sites using the key, not a determined script."""
    if not principal.allowed_origins:
        return
    if origin is None:
        raise Forbidden(
            "this site key accepts requests from its allowed origins only, "
            "and this request names no Origin"
        )
    if origin.lower() not in principal.allowed_origins:
        raise Forbidden(f"this site key does not accept requests from origin {origin!r}")


def require(*roles: Role) -> Callable[[APIGatewayRestResolver, NextMiddleware], Response[Any]]:
    """Route middleware: refuse keys of other roles (the key was resolved on entry)."""

    def middleware(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        principal = current_principal(app)
        if principal.role not in roles:
            allowed = " or ".join(role.value for role in roles)
            held = principal.role.value
            raise Forbidden(f"this route needs {_article(allowed)} key, not {_article(held)} key")
        return next_middleware(app)

    return middleware


def _article(words: str) -> str:
    """'an admin', 'a write or read'."""
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}"


def current_principal(app: APIGatewayRestResolver) -> Principal:
    return app.context["principal"]


def current_account(app: APIGatewayRestResolver) -> str:
    """The account every data access of this request is scoped to: the key's, never the body's."""
    account_id = current_principal(app).account_id
    if account_id is None:
        raise Forbidden("this route needs an account key")
    return account_id


def basic_auth_user(authorization: str | None) -> str | None:
    """The user of an HTTP Basic `Authorization` header: where Segment's and RudderStack's
    libraries send their write key (the password is empty). None when there is none."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None
