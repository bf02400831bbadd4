"""Accounts and their keys: creation (the account, its keys and the default call
goals, all at once), the account's settings (read, and its attribution set), and
key rotation (issue, list in pages, revoke).

A key is stored twice, never in clear: a lookup item keyed by its SHA-256 (what
authentication reads) and a record under the account (what listing and
revocation read), both carrying a random key id that reveals nothing of the key.
A key sees and manages the keys of its own role only, so no key can obtain a key
of another role (a write key, which web pages carry in clear, cannot mint a read
key). An account always keeps at least one active key of each role.
"""

import secrets
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

    def keys_of_role(
        self, account_id: str, role: str, limit: int, after_key_id: str | None = None
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


ACCOUNT_ROLES = (Role.WRITE, Role.READ)
# A leaked key can mint keys of its role; this bounds how many.
MAX_ACTIVE_KEYS_PER_ROLE = 10
# How long a revoked key stays listed (to see what was revoked, and when); then
# DynamoDB's TTL deletes its items, so issuing and revoking cannot pile up records.
REVOKED_KEY_RETENTION = timedelta(days=90)


def _new_key(
    account_id: str, role: Role, now: datetime, label: str | None = None
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
    )
    return key, record


def _info(record: KeyRecord) -> ApiKeyInfo:
    return ApiKeyInfo.model_validate(
        {name: getattr(record, name) for name in ApiKeyInfo.model_fields}
    )


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
        keys=AccountKeys(write=plain_keys[Role.WRITE], read=plain_keys[Role.READ]),
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


def _own_role(caller: Role, requested: str | None) -> Role:
    if caller not in ACCOUNT_ROLES:
        raise Forbidden("keys are managed with an account's own keys")
    if requested is not None and requested != caller.value:
        raise Forbidden(f"a {caller.value} key issues and revokes {caller.value} keys only")
    return caller


def issue_key(
    accounts: AccountRepository, account_id: str, caller: Role, request: KeyRequest, now: datetime
) -> NewApiKey:
    """A new key of the caller's role; every existing key stays valid until revoked.
    KeyLimitReached when the role already has MAX_ACTIVE_KEYS_PER_ROLE active keys."""
    role = _own_role(caller, request.role)
    key, record = _new_key(account_id, role, now, request.label)
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
    """One page of the caller's role's keys, in key id order; the cursor is the last
    key id of the page before (ids are ours, so anything else is refused)."""
    role = _own_role(caller, None)
    if cursor is not None and not KEY_ID_PATTERN.fullmatch(cursor):
        raise InvalidInput(
            "the cursor is not valid",
            [FieldProblem("cursor", "must be the next_cursor of the previous page")],
        )
    records = accounts.keys_of_role(account_id, role.value, limit + 1, cursor)
    page = [_info(record) for record in records[:limit]]
    return KeyPage(page, page[-1].key_id if len(records) > limit else None)


def revoke_key(
    accounts: AccountRepository, account_id: str, caller: Role, key_id: str, now: datetime
) -> ApiKeyInfo:
    """Refuse the key from now on (authentication reads it strongly consistently).
    Revoking a revoked key changes nothing; the last active key of a role stays
    (LastActiveKey)."""
    role = _own_role(caller, None)
    record = accounts.key(account_id, key_id)
    if record is None or record.role != role.value:
        raise NotFound(f"no {role.value} key {key_id!r} in this account")
    if record.revoked_at:
        return _info(record)
    expires_at = int((now + REVOKED_KEY_RETENTION).timestamp())
    accounts.revoke_key(record, iso(now), expires_at)
    return _info(accounts.key(account_id, key_id) or record)
