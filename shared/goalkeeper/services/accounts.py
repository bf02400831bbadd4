"""Creating accounts: the account, its keys and the default call goals, all at once."""

import secrets
from datetime import datetime, timedelta

from goalkeeper import keys
from goalkeeper.auth import Role, key_digest, new_api_key
from goalkeeper.models.accounts import AccountKeys, AccountRequest, NewAccount
from goalkeeper.models.goals import CallRule, GoalSpec
from goalkeeper.services.goals import new_goal_items
from goalkeeper.storage import Store

DEFAULT_GOALS = (
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


def create_account(store: Store, request: AccountRequest, now: datetime) -> NewAccount:
    account_id = f"acc_{secrets.token_hex(8)}"
    plain_keys = {role: new_api_key(role) for role in (Role.WRITE, Role.READ)}
    items = [
        keys.account(account_id)
        | {
            "kind": "account",
            "account_id": account_id,
            "name": request.name,
            "timezone": request.timezone,
            "created_at": now.isoformat(),
        }
    ]
    items += [
        keys.api_key(key_digest(key))
        | {
            "kind": "api_key",
            "account_id": account_id,
            "role": role.value,
            "created_at": now.isoformat(),
        }
        for role, key in plain_keys.items()
    ]
    for position, spec in enumerate(DEFAULT_GOALS):
        # Distinct creation instants keep the library's order as listed above.
        items += new_goal_items(account_id, spec, now + timedelta(microseconds=position))
    store.create_items(items)
    return NewAccount(
        account_id=account_id,
        name=request.name,
        timezone=request.timezone,
        keys=AccountKeys(write=plain_keys[Role.WRITE], read=plain_keys[Role.READ]),
    )
