"""In-memory stand-ins for the data access doors the services declare as Protocols
(services.goals.GoalRepository, services.accounts.AccountRepository): the same
outcomes, typed errors included, with no table behind them, so service logic is
tested without moto."""

from collections.abc import Collection
from dataclasses import replace

from goalkeeper.dal.accounts import Account, KeyRecord, NewAccountRecord
from goalkeeper.errors import Conflict, GoalLimitReached, KeyLimitReached, LastActiveKey, NotFound
from goalkeeper.models.accounts import AttributionSettings
from goalkeeper.models.goals import Goal


class FakeGoals:
    def __init__(self, accounts: set[str] | None = None) -> None:
        self.accounts = accounts if accounts is not None else {"acc_1"}
        self.goals: dict[str, dict[str, Goal]] = {}
        self.versions: list[tuple[str, str, int]] = []

    def library(self, account_id: str) -> list[Goal]:
        held = self.goals.get(account_id, {})
        return [held[goal_id] for goal_id in sorted(held)]

    def after(self, account_id: str, after_goal_id: str | None, count: int) -> list[Goal]:
        goals = self.library(account_id)
        return [g for g in goals if after_goal_id is None or g.goal_id > after_goal_id][:count]

    def get(self, account_id: str, goal_id: str) -> Goal | None:
        return self.goals.get(account_id, {}).get(goal_id)

    def create(self, account_id: str, goal: Goal, max_goals: int) -> None:
        if account_id not in self.accounts:
            raise NotFound("no such account")
        held = self.goals.setdefault(account_id, {})
        if len(held) >= max_goals:
            raise GoalLimitReached(max_goals)
        held[goal.goal_id] = goal
        self.versions.append((account_id, goal.goal_id, goal.version))

    def save(self, account_id: str, goal: Goal, previous_version: int) -> None:
        current = self.get(account_id, goal.goal_id)
        if current is None or current.version != previous_version:
            raise Conflict("the goal was changed by another request; read it and retry")
        self.goals[account_id][goal.goal_id] = goal
        self.versions.append((account_id, goal.goal_id, goal.version))


class FakeAccounts:
    def __init__(self) -> None:
        self.accounts: dict[str, NewAccountRecord] = {}
        self.keys: dict[tuple[str, str], KeyRecord] = {}
        self.goals: dict[str, list[Goal]] = {}
        self.revocations: list[str] = []

    def _active(self, account_id: str, role: str) -> int:
        return sum(
            1
            for record in self.keys.values()
            if record.account_id == account_id and record.role == role and not record.revoked_at
        )

    def create(
        self, new: NewAccountRecord, account_keys: list[KeyRecord], goals: list[Goal]
    ) -> None:
        account_id = new.account.account_id
        self.accounts[account_id] = new
        for record in account_keys:
            self.keys[(account_id, record.key_id)] = record
        self.goals[account_id] = list(goals)

    def get(self, account_id: str, consistent: bool = False) -> Account | None:
        new = self.accounts.get(account_id)
        return new.account if new else None

    def set_attribution(self, account_id: str, settings: AttributionSettings) -> Account | None:
        new = self.accounts.get(account_id)
        if new is None:
            return None
        self.accounts[account_id] = replace(new, account=replace(new.account, attribution=settings))
        return self.accounts[account_id].account

    def key(self, account_id: str, key_id: str) -> KeyRecord | None:
        return self.keys.get((account_id, key_id))

    def keys_of_roles(
        self, account_id: str, roles: Collection[str], limit: int, after_key_id: str | None = None
    ) -> list[KeyRecord]:
        held = sorted(
            (r for r in self.keys.values() if r.account_id == account_id and r.role in roles),
            key=lambda r: r.key_id,
        )
        return [r for r in held if after_key_id is None or r.key_id > after_key_id][:limit]

    def add_key(self, record: KeyRecord, max_active: int) -> None:
        if self._active(record.account_id, record.role) >= max_active:
            raise KeyLimitReached(record.role, max_active)
        self.keys[(record.account_id, record.key_id)] = record

    def revoke_key(self, record: KeyRecord, revoked_at: str, expires_at: int) -> None:
        stored = self.keys[(record.account_id, record.key_id)]
        if stored.revoked_at:
            return
        if self._active(record.account_id, record.role) <= 1:
            raise LastActiveKey(record.role)
        self.keys[(record.account_id, record.key_id)] = replace(stored, revoked_at=revoked_at)
        self.revocations.append(record.key_id)
