"""Accounts and their keys: creation (the account, its keys and the default call
goals, all at once), the account's settings (read, and its attribution set), and
key rotation (issue, list in pages, revoke).

A key is stored twice, never in clear: a lookup item keyed by its SHA-256 (what
authentication reads) and a record under the account (what listing and
revocation read), both carrying a random key id that reveals nothing of the key.
A key sees and manages keys of the roles in MANAGED_ROLES only: a read key read
keys, a write key write keys and the site keys its web pages publish, a site key
none. So no key obtains one that sees more than it does: a write key cannot mint a
read key, and a site key, public by design, cannot mint or revoke anything. The
admin key manages every key of any account (account recovery, when an account's
own keys were lost or abused). An account always keeps at least one active key of
each role it has.
"""

import secrets
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from goalkeeper.auth import (
    KEY_ID_PATTERN,
    Role,
    key_digest,
    key_prefix,
    new_api_key,
    new_key_id,
)
from goalkeeper.dal.accounts import Account, KeyRecord, NewAccountRecord
from goalkeeper.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from goalkeeper.models.accounts import (
    AccountInfo,
    AccountKeys,
    AccountRequest,
    AccountSettingsRequest,
    ApiKeyInfo,
    AttributionSettings,
    KeyRequest,
    NewAccount,
    NewApiKey,
)
from goalkeeper.models.common import iso
from goalkeeper.models.goals import CallRule, Goal, GoalSpec
from goalkeeper.pii import new_account_secret
from goalkeeper.services.goals import new_goal


class AccountRepository(Protocol):
    """What this service needs of the accounts' data access (goalkeeper.dal.accounts)."""

    def create(
        self, new: NewAccountRecord, account_keys: list[KeyRecord], goals: list[Goal]
    ) -> None: ...

    def get(self, account_id: str, consistent: bool = False) -> Account | None: ...

    def set_attribution(self, account_id: str, settings: AttributionSettings) -> Account | None: ...

    def key(self, account_id: str, key_id: str) -> KeyRecord | None: ...

    def keys_of_roles(
        self, account_id: str, roles: Collection[str], limit: int, after_key_id: str | None = None
    ) -> list[KeyRecord]: ...

    def add_key(self, record: KeyRecord, max_active: int) -> None: ...

    def revoke_key(self, record: KeyRecord, revoked_at: str, expires_at: int) -> None: ...


def default_goals() -> tuple[GoalSpec, ...]:
    """The call goals every new account starts with (built on use, not at import)."""
    return (
        GoalSpec(
            name="Call Qualified",
            rule=CallRule(kind="call", connected=True, min_bridged_seconds=60),
        ),
        GoalSpec(
            name="Call Connected",
            rule=CallRule(kind="call", connected=True, max_bridged_seconds=60),
        ),
        GoalSpec(
            name="Call Not Connected",
            converting=False,
            rule=CallRule(kind="call", connected=False),
        ),
    )


ACCOUNT_ROLES = (Role.WRITE, Role.READ, Role.SITE)
MANAGED_ROLES: dict[Role, tuple[Role, ...]] = {
    Role.READ: (Role.READ,),
    Role.WRITE: (Role.WRITE, Role.SITE),
    Role.ADMIN: ACCOUNT_ROLES,
}
# A leaked key can mint keys of its role; this bounds how many.
MAX_ACTIVE_KEYS_PER_ROLE = 10
# How long a revoked key stays listed (to see what was revoked, and when); then
# DynamoDB's TTL deletes its items, so issuing and revoking cannot pile up records.
REVOKED_KEY_RETENTION = timedelta(days=90)


def _new_key(
    account_id: str,
    role: Role,
    now: datetime,
    label: str | None = None,
    allowed_origins: Collection[str] = (),
) -> tuple[str, KeyRecord]:
    """A new key: (the key itself, its record)."""
    key = new_api_key(role)
    record = KeyRecord(
        account_id=account_id,
        key_id=new_key_id(),
        role=role.value,
        digest=key_digest(key),
        prefix=key_prefix(key, role),
        created_at=iso(now),
        label=label,
        allowed_origins=tuple(allowed_origins),
    )
    return key, record


def _info(record: KeyRecord) -> ApiKeyInfo:
    fields = {name: getattr(record, name) for name in ApiKeyInfo.model_fields}
    return ApiKeyInfo.model_validate(fields | {"allowed_origins": _origins(record)})


def _origins(record: KeyRecord) -> list[str] | None:
    return list(record.allowed_origins) if record.allowed_origins else None


def create_account(
    accounts: AccountRepository, request: AccountRequest, now: datetime
) -> NewAccount:
    account_id = f"acc_{secrets.token_hex(8)}"
    account = Account(account_id, request.timezone, request.name, now.isoformat())
    # The secret of the account's keyed hashes of personal data (goalkeeper.pii).
    new = NewAccountRecord(account, pii_key=new_account_secret())
    plain_keys: dict[Role, str] = {}
    records: list[KeyRecord] = []
    for role in ACCOUNT_ROLES:
        plain_keys[role], record = _new_key(account_id, role, now)
        records.append(record)
    # Distinct creation instants keep the library's order as listed above.
    goals = [
        new_goal(spec, now + timedelta(microseconds=position))
        for position, spec in enumerate(default_goals())
    ]
    accounts.create(new, records, goals)
    return NewAccount(
        account_id=account_id,
        name=request.name,
        timezone=request.timezone,
        keys=AccountKeys(
            write=plain_keys[Role.WRITE], read=plain_keys[Role.READ], site=plain_keys[Role.SITE]
        ),
    )


def _account_info(account: Account | None) -> AccountInfo:
    if account is None:
        # The key was found, so its account was too: only a deleted account gets here.
        raise NotFound("no such account")
    return AccountInfo(
        account_id=account.account_id,
        name=account.name,
        timezone=account.timezone,
        created_at=account.created_at,
        attribution=account.attribution,
    )


def get_account(accounts: AccountRepository, account_id: str) -> AccountInfo:
    # Strongly consistent: settings just changed must read back as changed.
    return _account_info(accounts.get(account_id, consistent=True))


def set_account_settings(
    accounts: AccountRepository, account_id: str, request: AccountSettingsRequest
) -> AccountInfo:
    """Replace the account's attribution settings. Conversions are credited under the
    settings at the moment they are decided, so this changes only those decided after
    it; a backfill recomputes past ones."""
    return _account_info(accounts.set_attribution(account_id, request.attribution))


def _managed_by(caller: Role) -> tuple[Role, ...]:
    if caller not in MANAGED_ROLES:
        raise Forbidden(f"{_article(caller)} key manages no keys")
    return MANAGED_ROLES[caller]


def _article(role: Role) -> str:
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


def _names(roles: tuple[Role, ...], conjunction: str) -> str:
    return f" {conjunction} ".join(role.value for role in roles)


def _account_of_admin(accounts: AccountRepository, account_id: str, caller: Role) -> None:
    """The admin names the account in the path: it must exist. An account key's
    account exists since the key does."""
    if caller is Role.ADMIN and accounts.get(account_id) is None:
        raise NotFound(f"no account {account_id!r}")


def _role_to_issue(caller: Role, requested: str | None) -> Role:
    managed = _managed_by(caller)
    if requested is None:
        if caller is Role.ADMIN:
            raise InvalidInput(
                "the request is invalid",
                [FieldProblem("role", "is required when the admin key issues a key")],
            )
        return caller
    role = Role(requested)
    if role not in managed:
        raise Forbidden(
            f"{_article(caller)} key issues and revokes {_names(managed, 'and')} keys only"
        )
    return role


def issue_key(
    accounts: AccountRepository, account_id: str, caller: Role, request: KeyRequest, now: datetime
) -> NewApiKey:
    """A new key of the requested role (an account key's own by default); every
    existing key stays valid until revoked. KeyLimitReached when the role already has
    MAX_ACTIVE_KEYS_PER_ROLE active keys."""
    role = _role_to_issue(caller, request.role)
    _account_of_admin(accounts, account_id, caller)
    key, record = _new_key(account_id, role, now, request.label, request.allowed_origins or ())
    accounts.add_key(record, MAX_ACTIVE_KEYS_PER_ROLE)
    return NewApiKey(key=key, **_info(record).model_dump())


class KeyPage(NamedTuple):
    keys: list[ApiKeyInfo]
    next_cursor: str | None


def list_keys(
    accounts: AccountRepository,
    account_id: str,
    caller: Role,
    limit: int,
    cursor: str | None = None,
) -> KeyPage:
    """One page of the keys the caller manages, in key id order; the cursor is the
    last key id of the page before (ids are ours, so anything else is refused)."""
    managed = _managed_by(caller)
    if cursor is not None and not KEY_ID_PATTERN.fullmatch(cursor):
        raise InvalidInput(
            "the cursor is not valid",
            [FieldProblem("cursor", "must be the next_cursor of the previous page")],
        )
    _account_of_admin(accounts, account_id, caller)
    roles = [role.value for role in managed]
    records = accounts.keys_of_roles(account_id, roles, limit + 1, cursor)
    page = [_info(record) for record in records[:limit]]
    return KeyPage(page, page[-1].key_id if len(records) > limit else None)


def revoke_key(
    accounts: AccountRepository, account_id: str, caller: Role, key_id: str, now: datetime
) -> ApiKeyInfo:
    """Refuse the key from now on (authentication reads it strongly consistently).
    Revoking a revoked key changes nothing; the last active key of a role stays
    (LastActiveKey)."""
    managed = _managed_by(caller)
    _account_of_admin(accounts, account_id, caller)
    record = accounts.key(account_id, key_id)
    if record is None or Role(record.role) not in managed:
        raise NotFound(f"no {_names(managed, 'or')} key {key_id!r} in this account")
    if record.revoked_at:
        return _info(record)
    expires_at = int((now + REVOKED_KEY_RETENTION).timestamp())
    accounts.revoke_key(record, iso(now), expires_at)
    return _info(accounts.key(account_id, key_id) or record)
