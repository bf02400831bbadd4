"""Accounts and their API keys.

A key is stored twice, never in clear: a lookup item keyed by its SHA-256 (what
authentication reads) and a record under the account (what listing and revocation
read). The account item counts each role's active keys, so the last one of a role
is never revoked and no role holds more than its limit; both are conditions of the
same write that adds or revokes the key.

The account item's `attribution` map holds its attribution settings; an account
that never set them has none, and gets the defaults.
"""

import itertools
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from goalkeeper import keys
from goalkeeper.attributes import to_attributes
from goalkeeper.dal.client import ConditionFailed, Table
from goalkeeper.dal.goals import ATTRIBUTION, attribution_settings, goal_items
from goalkeeper.dal.transactions import Expression, TransactionCancelled
from goalkeeper.errors import KeyLimitReached, LastActiveKey
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.models.goals import Goal


# The account item's map of attribution settings: {"model", "lookback_days"}.
# Evaluation reads it too (through attribution_settings), so its shape is fixed.
@dataclass(frozen=True)
class Account:
    account_id: str
    timezone: str = "UTC"
    name: str | None = None
    created_at: str | None = None
    attribution: AttributionSettings = field(default_factory=AttributionSettings)


def _account(account_id: str, item: dict[str, Any]) -> Account:
    return Account(
        account_id=account_id,
        timezone=item.get("timezone", "UTC"),
        name=item.get("name"),
        created_at=item.get("created_at"),
        attribution=attribution_settings(item),
    )


@dataclass(frozen=True)
class NewAccountRecord:
    """A new account: its item, with the secret of its keyed hashes of personal data."""

    account: Account
    pii_key: str


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: by digest (authentication) and under its account."""

    account_id: str
    key_id: str
    role: str
    digest: str
    prefix: str
    created_at: str
    label: str | None = None
    revoked_at: str | None = None
    allowed_origins: tuple[str, ...] = ()  # a site key's; empty: any origin


def _active(role: str) -> str:
    """The account item's count of the role's active keys."""
    return f"active_keys_{role}"


def _account_item(new: NewAccountRecord, keys_held: list[KeyRecord]) -> dict[str, Any]:
    account = new.account
    return (
        keys.account(account.account_id)
        | {
            "kind": "account",
            "account_id": account.account_id,
            "name": account.name,
            "timezone": account.timezone,
            "created_at": account.created_at,
            "pii_key": new.pii_key,
        }
        | {_active(role): count for role, count in Counter(k.role for k in keys_held).items()}
    )


def _key_items(record: KeyRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the lookup item, the account's record) of a key."""
    common: dict[str, Any] = {
        "account_id": record.account_id,
        "key_id": record.key_id,
        "role": record.role,
    }
    if record.allowed_origins:  # authentication reads them from the lookup item
        common["allowed_origins"] = list(record.allowed_origins)
    lookup = (
        keys.api_key(record.digest)
        | common
        | {"kind": "api_key", "created_at": record.created_at}
        | ({"revoked_at": record.revoked_at} if record.revoked_at else {})
    )
    stored = (
        keys.account_key(record.account_id, record.key_id)
        | common
        | {
            "kind": "api_key_record",
            "prefix": record.prefix,
            "label": record.label,
            "created_at": record.created_at,
            "digest": record.digest,  # to revoke the lookup item; never leaves the table
        }
    )
    return lookup, stored


def _key_record(item: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        account_id=item["account_id"],
        key_id=item["key_id"],
        role=item["role"],
        digest=item["digest"],
        prefix=item["prefix"],
        created_at=item["created_at"],
        label=item.get("label"),
        revoked_at=item.get("revoked_at"),
        allowed_origins=tuple(item.get("allowed_origins", ())),
    )


@dataclass(frozen=True)
class KeyOwner:
    """What a key's lookup item says: whose key it is, of which role, whether revoked,
    and (a site key's) the origins allowed to use it."""

    account_id: str
    role: str
    revoked: bool
    allowed_origins: tuple[str, ...] = ()


class Accounts:
    def __init__(self, table: Table) -> None:
        self._table = table

    def create(
        self, new: NewAccountRecord, account_keys: list[KeyRecord], goals: list[Goal]
    ) -> None:
        """The account, its keys and its first goals, all-or-nothing."""
        account_id = new.account.account_id
        transaction = self._table.transaction()
        transaction.create("account", _account_item(new, account_keys))
        for record in account_keys:
            lookup, stored = _key_items(record)
            transaction.create(("lookup", record.key_id), lookup)
            transaction.create(("key", record.key_id), stored)
        for goal in goals:
            current, version = goal_items(account_id, goal)
            transaction.create(("goal", goal.goal_id), current)
            transaction.create(("version", goal.goal_id), version)
        self._table.commit(transaction)

    def get(self, account_id: str, consistent: bool = False) -> Account | None:
        item = self._table.get(keys.account(account_id), consistent=consistent)
        return None if item is None else _account(account_id, item)

    def set_attribution(self, account_id: str, settings: AttributionSettings) -> Account | None:
        """Replace the account's attribution settings in one conditional write, and
        return the account as written (None: no such account)."""
        expression = Expression()
        stored = {"model": settings.model.value, "lookback_days": settings.lookback_days}
        update = f"SET {expression.name(ATTRIBUTION)} = {expression.value(stored)}"
        written = self._update_existing(account_id, update, expression, "ALL_NEW")
        return None if written is None else _account(account_id, written)

    def timezone(self, account_id: str) -> str:
        """The account's time zone (UTC when unset, or for no such account)."""
        account = self.get(account_id)
        return account.timezone if account else "UTC"

    def pii_key(self, account_id: str, candidate: str) -> str | None:
        """The account's secret for keyed hashes of personal data (None: no such account).

        Accounts get one at creation; an older account gets `candidate`, set at most
        once (if_not_exists), so concurrent first uses agree on one secret.
        """
        expression = Expression()
        pii_key = expression.name("pii_key")
        item = self._table.get(
            keys.account(account_id),
            consistent=True,
            ProjectionExpression=f"{expression.name(keys.PK)}, {pii_key}",
            **expression.request(),
        )
        if item is None:
            return None
        if "pii_key" in item:
            return str(item["pii_key"])
        expression = Expression()
        pii_key = expression.name("pii_key")
        update = f"SET {pii_key} = if_not_exists({pii_key}, {expression.value(candidate)})"
        written = self._update_existing(account_id, update, expression, "UPDATED_NEW")
        return None if written is None else str(written["pii_key"])

    def _update_existing(
        self, account_id: str, update: str, expression: Expression, returned: str
    ) -> dict[str, Any] | None:
        """One UpdateItem of the account item, only if the account exists: the attributes
        `returned` names, or None when there is no such account."""
        try:
            return self._table.update(
                keys.account(account_id),
                update,
                condition=f"attribute_exists({expression.name(keys.PK)})",
                returned=returned,
                **expression.request(),
            )
        except ConditionFailed:
            return None

    # -- keys ------------------------------------------------------------------

    def key_owner(self, digest: str) -> KeyOwner | None:
        """Whose key this digest is. Strongly consistent: a key revoked a moment ago
        must already be refused."""
        item = self._table.get(keys.api_key(digest), consistent=True)
        if item is None:
            return None
        return KeyOwner(
            item["account_id"],
            item["role"],
            bool(item.get("revoked_at")),
            tuple(item.get("allowed_origins", ())),
        )

    def key(self, account_id: str, key_id: str) -> KeyRecord | None:
        item = self._table.get(keys.account_key(account_id, key_id), consistent=True)
        return _key_record(item) if item else None

    def keys_of_roles(
        self,
        account_id: str,
        roles: Collection[str],
        limit: int,
        after_key_id: str | None = None,
    ) -> list[KeyRecord]:
        """Up to `limit` of the account's keys of the given roles, in key id order,
        starting after `after_key_id`. Every role's records share one partition, so
        DynamoDB's filter may leave a page short: pages are read until `limit` are found."""
        expression = Expression()
        named_roles = ", ".join(expression.value(role) for role in sorted(roles))
        query: dict[str, Any] = {
            "KeyConditionExpression": (
                f"{expression.name(keys.PK)} = {expression.value(keys.account_keys_pk(account_id))}"
            ),
            "FilterExpression": f"{expression.name('role')} IN ({named_roles})",
            "ConsistentRead": True,
            "Limit": limit,
            **expression.request(),
        }
        if after_key_id is not None:
            query["ExclusiveStartKey"] = to_attributes(keys.account_key(account_id, after_key_id))
        items = itertools.islice(self._table.query(**query), limit)
        return [_key_record(item) for item in items]

    def add_key(self, record: KeyRecord, max_active: int) -> None:
        """Store a new key (its lookup item and its account record) and count it as
        active, all at once; KeyLimitReached when the account already has `max_active`
        of that role."""
        transaction = self._table.transaction()
        lookup, stored = _key_items(record)
        transaction.create("lookup", lookup)
        transaction.create("record", stored)
        expression = Expression()
        active, pk = expression.name(_active(record.role)), expression.name(keys.PK)
        transaction.update(
            "account",
            keys.account(record.account_id),
            f"ADD {active} {expression.value(1)}",
            expression,
            f"attribute_exists({pk}) AND "
            f"(attribute_not_exists({active}) OR {active} < {expression.value(max_active)})",
        )
        try:
            self._table.commit(transaction)
        except TransactionCancelled as cancelled:
            if cancelled.reasons["account"].failed_condition:
                raise KeyLimitReached(record.role, max_active) from cancelled
            raise

    def revoke_key(self, record: KeyRecord, revoked_at: str, expires_at: int) -> None:
        """Revoke a key at once: its lookup item and its record, never the last active
        key of its role (LastActiveKey); DynamoDB's TTL deletes both after `expires_at`
        (epoch seconds). A key already revoked stays as it was."""
        transaction = self._table.transaction()
        for tag, key in (
            ("record", keys.account_key(record.account_id, record.key_id)),
            ("lookup", keys.api_key(record.digest)),
        ):
            expression = Expression()
            at = expression.name("revoked_at")
            update = (
                f"SET {at} = {expression.value(revoked_at)}, "
                f"{expression.name('expires_at')} = {expression.value(expires_at)}"
            )
            condition = f"attribute_exists({expression.name(keys.PK)}) AND " + (
                f"attribute_not_exists({at})"
                if tag == "record"
                else f"{expression.name('account_id')} = {expression.value(record.account_id)}"
            )
            transaction.update(tag, key, update, expression, condition)
        expression = Expression()
        active = expression.name(_active(record.role))
        transaction.update(
            "account",
            keys.account(record.account_id),
            f"ADD {active} {expression.value(-1)}",
            expression,
            f"{active} > {expression.value(1)}",
        )
        try:
            self._table.commit(transaction)
        except TransactionCancelled as cancelled:
            if cancelled.reasons["record"].failed_condition:
                return  # already revoked (by a request racing this one)
            if cancelled.reasons["account"].failed_condition:
                raise LastActiveKey(record.role) from cancelled
            raise
