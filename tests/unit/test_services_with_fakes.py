"""Service logic over in-memory repositories (tests/support/fakes.py): no table, no moto. The
typed outcomes of data access (GoalLimitReached, LastActiveKey, ...) reach the client
through the one error registry with the statuses and messages the API has always had."""

from datetime import UTC, datetime, timedelta

import pytest

from goalkeeper.auth import Role
from goalkeeper.crediting import AttributionModel
from goalkeeper.errors import (
    Conflict,
    Forbidden,
    GoalLimitReached,
    InvalidInput,
    KeyLimitReached,
    LastActiveKey,
    NotFound,
)
from goalkeeper.http import status_for
from goalkeeper.models.accounts import AccountRequest, AccountSettingsRequest, KeyRequest
from goalkeeper.models.goals import GoalSpec
from goalkeeper.services import accounts, goals
from support.fakes import FakeAccounts, FakeGoals

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
LEAD = GoalSpec.model_validate({"name": "Lead", "rule": {"kind": "lead"}})


# -- the goal library ------------------------------------------------------------


def test_goals_are_listed_and_paged_in_creation_order() -> None:
    library = FakeGoals()
    created = [
        goals.create_goal(library, "acc_1", LEAD, NOW + timedelta(seconds=n), max_goals=10)
        for n in range(5)
    ]
    assert [g.goal_id for g in goals.list_goals(library, "acc_1")] == [g.goal_id for g in created]
    seen, cursor = [], None
    while True:
        page = goals.goals_page(library, "acc_1", 2, cursor)
        seen += [g.goal_id for g in page.goals]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [g.goal_id for g in created]


def test_a_goal_past_the_limit_is_refused_with_the_409_it_always_had() -> None:
    library = FakeGoals()
    goals.create_goal(library, "acc_1", LEAD, NOW, max_goals=1)
    with pytest.raises(GoalLimitReached) as refused:
        goals.create_goal(library, "acc_1", LEAD, NOW, max_goals=1)
    assert status_for(refused.value) == 409 and refused.value.code == "conflict"
    assert refused.value.message == (
        "this account already has 1 goals, the most an account may hold (deactivated "
        "goals count too); replace one with PUT /v1/goals/{goal_id} instead"
    )


def test_a_replacement_is_a_new_version_and_a_deactivation_keeps_the_goal() -> None:
    library = FakeGoals()
    goal = goals.create_goal(library, "acc_1", LEAD, NOW, max_goals=10)
    renamed = LEAD.model_copy(update={"name": "Lead, renamed"})
    replaced = goals.replace_goal(library, "acc_1", goal.goal_id, renamed, NOW)
    deactivated = goals.deactivate_goal(library, "acc_1", goal.goal_id, NOW)
    assert (replaced.version, replaced.name) == (2, "Lead, renamed")
    assert (deactivated.version, deactivated.active) == (3, False)
    assert [version for *_, version in library.versions] == [1, 2, 3]


def test_a_missing_goal_is_not_found() -> None:
    with pytest.raises(NotFound):
        goals.get_goal(FakeGoals(), "acc_1", "goal_missing")


def test_a_goal_of_an_unknown_account_is_not_created() -> None:
    with pytest.raises(NotFound):
        goals.create_goal(FakeGoals(accounts=set()), "acc_1", LEAD, NOW, max_goals=10)


def test_a_lost_update_is_refused() -> None:
    library = FakeGoals()
    goal = goals.create_goal(library, "acc_1", LEAD, NOW, max_goals=10)
    goals.replace_goal(library, "acc_1", goal.goal_id, LEAD, NOW)
    with pytest.raises(Conflict):
        library.save("acc_1", goal, previous_version=goal.version)


# -- accounts and keys ----------------------------------------------------------


def _account(store: FakeAccounts) -> str:
    return accounts.create_account(store, AccountRequest(name="Shop"), NOW).account_id


def test_a_new_account_has_a_key_of_each_role_and_the_default_goals_in_order() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    assert sorted(r.role for r in store.keys.values()) == ["read", "site", "write"]
    assert [g.name for g in store.goals[account_id]] == [
        "Call Qualified",
        "Call Connected",
        "Call Not Connected",
    ]
    assert [g.goal_id for g in store.goals[account_id]] == sorted(
        g.goal_id for g in store.goals[account_id]
    )
    assert all(r.digest and not r.revoked_at for r in store.keys.values())


def test_attribution_settings_start_as_the_defaults_and_read_back_as_set() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    fresh = accounts.get_account(store, account_id)
    assert (fresh.name, fresh.timezone, fresh.created_at) == ("Shop", "UTC", NOW.isoformat())
    assert fresh.attribution.model is AttributionModel.LAST_NON_DIRECT
    assert fresh.attribution.lookback_days == 30
    request = AccountSettingsRequest.model_validate(
        {"attribution": {"model": "first_touch", "lookback_days": 7}}
    )
    changed = accounts.set_account_settings(store, account_id, request)
    assert changed == accounts.get_account(store, account_id)
    assert changed == fresh.model_copy(update={"attribution": request.attribution})


def test_settings_of_no_such_account_are_not_found() -> None:
    request = AccountSettingsRequest.model_validate({"attribution": {}})
    with pytest.raises(NotFound) as missing:
        accounts.set_account_settings(FakeAccounts(), "acc_gone", request)
    assert status_for(missing.value) == 404
    with pytest.raises(NotFound):
        accounts.get_account(FakeAccounts(), "acc_gone")


def test_the_last_active_key_of_a_role_is_not_revoked() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    (only,) = accounts.list_keys(store, account_id, Role.READ, 10).keys
    with pytest.raises(LastActiveKey) as refused:
        accounts.revoke_key(store, account_id, Role.READ, only.key_id, NOW)
    assert status_for(refused.value) == 409 and refused.value.code == "conflict"
    assert refused.value.message == (
        "this is the account's last active read key; issue a new one first"
    )
    assert store.revocations == []


def test_a_revoked_key_is_answered_as_it_is_without_another_write() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    second = accounts.issue_key(store, account_id, Role.WRITE, KeyRequest(label="second"), NOW)
    first = accounts.revoke_key(store, account_id, Role.WRITE, second.key_id, NOW)
    again = accounts.revoke_key(
        store, account_id, Role.WRITE, second.key_id, NOW + timedelta(hours=1)
    )
    assert first.revoked_at == again.revoked_at == "2026-11-30T12:00:00.000000Z"
    assert store.revocations == [second.key_id]


def test_a_key_sees_only_the_keys_its_role_manages() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    (read,) = accounts.list_keys(store, account_id, Role.READ, 10).keys
    with pytest.raises(NotFound):
        accounts.revoke_key(store, account_id, Role.WRITE, read.key_id, NOW)
    with pytest.raises(Forbidden):
        accounts.issue_key(store, account_id, Role.WRITE, KeyRequest(role="read"), NOW)
    listed = accounts.list_keys(store, account_id, Role.WRITE, 10).keys
    assert sorted(k.role for k in listed) == ["site", "write"]
    site = next(k for k in listed if k.role == "site")
    with pytest.raises(NotFound):
        accounts.revoke_key(store, account_id, Role.READ, site.key_id, NOW)
    with pytest.raises(Forbidden, match="a site key manages no keys"):
        accounts.list_keys(store, account_id, Role.SITE, 10)
    with pytest.raises(Forbidden):
        accounts.issue_key(store, account_id, Role.SITE, KeyRequest(role="site"), NOW)


def test_the_admin_manages_every_role_of_an_existing_account_naming_the_role() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    listed = accounts.list_keys(store, account_id, Role.ADMIN, 10).keys
    assert sorted(k.role for k in listed) == ["read", "site", "write"]
    issued = accounts.issue_key(store, account_id, Role.ADMIN, KeyRequest(role="read"), NOW)
    assert issued.role == "read"
    with pytest.raises(InvalidInput) as unnamed:
        accounts.issue_key(store, account_id, Role.ADMIN, KeyRequest(), NOW)
    assert unnamed.value.fields[0].field == "role"
    for attempt in (
        lambda: accounts.list_keys(store, "acc_missing", Role.ADMIN, 10),
        lambda: accounts.issue_key(store, "acc_missing", Role.ADMIN, KeyRequest(role="write"), NOW),
        lambda: accounts.revoke_key(store, "acc_missing", Role.ADMIN, issued.key_id, NOW),
    ):
        with pytest.raises(NotFound, match="no account 'acc_missing'"):
            attempt()


def test_keys_past_the_limit_are_refused_with_the_409_they_always_had() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    for _ in range(accounts.MAX_ACTIVE_KEYS_PER_ROLE - 1):
        accounts.issue_key(store, account_id, Role.READ, KeyRequest(), NOW)
    with pytest.raises(KeyLimitReached) as refused:
        accounts.issue_key(store, account_id, Role.READ, KeyRequest(), NOW)
    assert status_for(refused.value) == 409
    assert refused.value.message == (
        f"this account already has {accounts.MAX_ACTIVE_KEYS_PER_ROLE} active read keys; "
        "revoke one first"
    )


def test_keys_are_listed_in_pages() -> None:
    store = FakeAccounts()
    account_id = _account(store)
    for _ in range(4):
        accounts.issue_key(store, account_id, Role.READ, KeyRequest(), NOW)
    first = accounts.list_keys(store, account_id, Role.READ, 3)
    rest = accounts.list_keys(store, account_id, Role.READ, 3, first.next_cursor)
    assert len(first.keys) == 3 and len(rest.keys) == 2 and rest.next_cursor is None
    listed = [k.key_id for k in first.keys + rest.keys]
    assert listed == sorted(listed)
