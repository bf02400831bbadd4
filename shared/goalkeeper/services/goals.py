"""The goal library: create, read, replace and deactivate goals, keeping every version."""

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from goalkeeper import keys
from goalkeeper.dedup import MAX_SHARED_LAYOUTS, shared_layouts
from goalkeeper.errors import Conflict, FieldProblem, InvalidInput, NotFound
from goalkeeper.models.common import Identifier, to_item
from goalkeeper.models.goals import Goal, GoalPage, GoalSpec
from goalkeeper.storage import Store

_GOAL_ID: TypeAdapter[str] = TypeAdapter(Identifier)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _new_goal(spec: GoalSpec, now: datetime) -> Goal:
    """Version 1 of a new goal. Its id begins with its creation time (in microseconds,
    fixed width), so the library's key order, which GET /v1/goals pages through, is the
    order goals were created in."""
    micros = (now - _EPOCH) // timedelta(microseconds=1)
    return Goal.from_spec(spec, f"goal_{micros:014x}{secrets.token_hex(6)}", 1, now, now)


def _items(account_id: str, goal: Goal) -> tuple[dict[str, Any], dict[str, Any]]:
    body = to_item(goal)
    current = keys.goal(account_id, goal.goal_id) | {
        "kind": "goal",
        "account_id": account_id,
        "goal_id": goal.goal_id,
        "version": goal.version,
        "goal": body,
    }
    history = keys.goal_version(account_id, goal.goal_id, goal.version) | {
        "kind": "goal_version",
        "account_id": account_id,
        "goal": body,
    }
    return current, history


def new_goal_items(account_id: str, spec: GoalSpec, now: datetime) -> list[dict[str, Any]]:
    return list(_items(account_id, _new_goal(spec, now)))


def goal_from_item(item: dict[str, Any]) -> Goal:
    return Goal.model_validate(item["goal"])


def list_goals(store: Store, account_id: str) -> list[Goal]:
    """Every goal of the account, in creation order (what evaluation and reports load)."""
    goals = [goal_from_item(item) for item in store.list_goal_items(account_id)]
    return sorted(goals, key=lambda goal: (goal.created_at, goal.goal_id))


def goals_page(store: Store, account_id: str, limit: int, cursor: str | None) -> GoalPage:
    """Up to `limit` goals in goal_id order (creation order, see _new_goal), from where
    `cursor` (a page's next_cursor) left off; next_cursor is None on the last page."""
    items = store.goal_items_after(account_id, _after(cursor), limit + 1)
    page = [goal_from_item(item) for item in items[:limit]]
    following = _cursor(page[-1].goal_id) if len(items) > limit else None
    return GoalPage(goals=page, next_cursor=following)


def _cursor(goal_id: str) -> str:
    return base64.urlsafe_b64encode(goal_id.encode()).decode()


def _after(cursor: str | None) -> str | None:
    """The goal id a cursor starts after. A cursor only names a position in the caller's
    own library (keys are built from the account), so a forged one reveals nothing."""
    if cursor is None:
        return None
    try:
        return _GOAL_ID.validate_python(
            base64.b64decode(cursor, altchars=b"-_", validate=True).decode()
        )
    except ValueError as error:  # not base64, not UTF-8, or not a goal id
        raise InvalidInput(
            "the cursor is not valid",
            [FieldProblem("cursor", "is not a next_cursor of this listing")],
        ) from error


def _check_layouts(store: Store, account_id: str, goal: Goal) -> None:
    """Each distinct de-dup layout (keys without `goal`, and a window) adds a write to
    every counted conversion of the account; refuse the one that would pass the bound."""
    library = [known for known in list_goals(store, account_id) if known.goal_id != goal.goal_id]
    layouts = shared_layouts([*library, goal])
    if len(layouts) > MAX_SHARED_LAYOUTS and layouts != shared_layouts(library):
        raise Conflict(
            f"the account's goals would use {len(layouts)} distinct de-duplication layouts "
            f"(keys without 'goal', with their window); at most {MAX_SHARED_LAYOUTS}: "
            "reuse the keys and window of an existing goal",
            [FieldProblem("dedup", f"at most {MAX_SHARED_LAYOUTS} distinct layouts")],
        )


def get_goal(store: Store, account_id: str, goal_id: str) -> Goal:
    item = store.get_goal_item(account_id, goal_id)
    if item is None:
        raise NotFound(f"no goal {goal_id!r} in this account")
    return goal_from_item(item)


def create_goal(
    store: Store, account_id: str, spec: GoalSpec, now: datetime, max_goals: int
) -> Goal:
    """A new goal, unless the account already holds `max_goals` (deactivated goals
    count: they stay in the library for reports)."""
    goal = _new_goal(spec, now)
    _check_layouts(store, account_id, goal)
    if not store.create_goal(account_id, *_items(account_id, goal), max_goals=max_goals):
        raise Conflict(
            f"this account already has {max_goals} goals, the most an account may hold "
            "(deactivated goals count too); replace one with PUT /v1/goals/{goal_id} instead"
        )
    return goal


def replace_goal(
    store: Store, account_id: str, goal_id: str, spec: GoalSpec, now: datetime
) -> Goal:
    """A change is a new version; conversions keep the version that decided them."""
    current = get_goal(store, account_id, goal_id)
    goal = Goal.from_spec(spec, goal_id, current.version + 1, current.created_at, now)
    _check_layouts(store, account_id, goal)
    store.save_goal(*_items(account_id, goal), previous_version=current.version)
    return goal


def deactivate_goal(store: Store, account_id: str, goal_id: str, now: datetime) -> Goal:
    """DELETE keeps the goal and its history for reports; it only stops matching."""
    current = get_goal(store, account_id, goal_id)
    spec = GoalSpec.model_validate(current.model_dump(include=set(GoalSpec.model_fields)))
    return replace_goal(store, account_id, goal_id, spec.model_copy(update={"active": False}), now)
