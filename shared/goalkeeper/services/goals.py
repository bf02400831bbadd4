"""The goal library: create, read, replace and deactivate goals, keeping every version."""

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import TypeAdapter

from goalkeeper.dedup import MAX_SHARED_LAYOUTS, shared_layouts
from goalkeeper.errors import Conflict, FieldProblem, InvalidInput, NotFound
from goalkeeper.models.common import Identifier
from goalkeeper.models.goals import Goal, GoalPage, GoalSpec

_GOAL_ID: TypeAdapter[str] = TypeAdapter(Identifier)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class GoalRepository(Protocol):
    """What this service needs of the goal library's data access (goalkeeper.dal.goals)."""

    def library(self, account_id: str) -> list[Goal]: ...

    def after(self, account_id: str, after_goal_id: str | None, count: int) -> list[Goal]: ...

    def get(self, account_id: str, goal_id: str) -> Goal | None: ...

    def create(self, account_id: str, goal: Goal, max_goals: int) -> None: ...

    def save(self, account_id: str, goal: Goal, previous_version: int) -> None: ...


def new_goal(spec: GoalSpec, now: datetime) -> Goal:
    """Version 1 of a new goal. Its id begins with its creation time (in microseconds,
    fixed width), so the library's key order, which GET /v1/goals pages through, is the
    order goals were created in."""
    micros = (now - _EPOCH) // timedelta(microseconds=1)
    return Goal.from_spec(spec, f"goal_{micros:014x}{secrets.token_hex(6)}", 1, now, now)


def list_goals(goals: GoalRepository, account_id: str) -> list[Goal]:
    """Every goal of the account, in creation order (what evaluation and reports load)."""
    return sorted(goals.library(account_id), key=lambda goal: (goal.created_at, goal.goal_id))


def goals_page(goals: GoalRepository, account_id: str, limit: int, cursor: str | None) -> GoalPage:
    """Up to `limit` goals in goal_id order (creation order, see new_goal), from where
    `cursor` (a page's next_cursor) left off; next_cursor is None on the last page."""
    found = goals.after(account_id, _after(cursor), limit + 1)
    page = found[:limit]
    following = _cursor(page[-1].goal_id) if len(found) > limit else None
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


def _check_layouts(goals: GoalRepository, account_id: str, goal: Goal) -> None:
    """Each distinct de-dup layout (keys without `goal`, and a window) adds a write to
    every counted conversion of the account; refuse the one that would pass the bound."""
    library = [known for known in list_goals(goals, account_id) if known.goal_id != goal.goal_id]
    layouts = shared_layouts([*library, goal])
    if len(layouts) > MAX_SHARED_LAYOUTS and layouts != shared_layouts(library):
        raise Conflict(
            f"the account's goals would use {len(layouts)} distinct de-duplication layouts "
            f"(keys without 'goal', with their window); at most {MAX_SHARED_LAYOUTS}: "
            "reuse the keys and window of an existing goal",
            [FieldProblem("dedup", f"at most {MAX_SHARED_LAYOUTS} distinct layouts")],
        )


# Each window a goal is required within adds a progress write to its counted conversions
# (goalkeeper.steps): at most this many distinct windows per required goal.
MAX_REQUIRED_WINDOWS = 3


def _check_requirement(goals: GoalRepository, account_id: str, goal: Goal) -> None:
    """A required goal must exist, the requirements must not loop back to this goal, and
    a goal may be required within at most MAX_REQUIRED_WINDOWS distinct windows.

    Checked on the library as read (two racing changes could each pass alone): a loop
    would make its goals never count, never miscount, since every step looks back at
    counted conversions only."""
    if goal.requires is None:
        return
    library = {known.goal_id: known for known in list_goals(goals, account_id)}
    library[goal.goal_id] = goal
    required = goal.requires.goal_id
    if required not in library:
        raise InvalidInput(
            f"no goal {required!r} in this account",
            [FieldProblem("requires.goal_id", "names no goal of this account")],
        )
    chain, current = [goal.goal_id], library.get(required)
    while current is not None:
        chain.append(current.goal_id)
        if current.goal_id == goal.goal_id:
            raise InvalidInput(
                "the goals' requirements would form a cycle: " + " -> ".join(chain),
                [FieldProblem("requires.goal_id", "leads back to this goal")],
            )
        if current.requires is None or len(chain) > len(library):
            break
        current = library.get(current.requires.goal_id)
    windows = {
        known.requires.within_days
        for known in library.values()
        if known.requires is not None and known.requires.goal_id == required
    }
    if len(windows) > MAX_REQUIRED_WINDOWS:
        raise InvalidInput(
            f"goal {required!r} would be required within {len(windows)} different windows; "
            f"at most {MAX_REQUIRED_WINDOWS}: reuse the within_days of a goal that requires it",
            [FieldProblem("requires.within_days", f"at most {MAX_REQUIRED_WINDOWS} windows")],
        )


def get_goal(goals: GoalRepository, account_id: str, goal_id: str) -> Goal:
    goal = goals.get(account_id, goal_id)
    if goal is None:
        raise NotFound(f"no goal {goal_id!r} in this account")
    return goal


def create_goal(
    goals: GoalRepository, account_id: str, spec: GoalSpec, now: datetime, max_goals: int
) -> Goal:
    """A new goal, unless the account already holds `max_goals` (GoalLimitReached;
    deactivated goals count: they stay in the library for reports)."""
    goal = new_goal(spec, now)
    _check_layouts(goals, account_id, goal)
    _check_requirement(goals, account_id, goal)
    goals.create(account_id, goal, max_goals)
    return goal


def replace_goal(
    goals: GoalRepository, account_id: str, goal_id: str, spec: GoalSpec, now: datetime
) -> Goal:
    """A change is a new version; conversions keep the version that decided them."""
    current = get_goal(goals, account_id, goal_id)
    goal = Goal.from_spec(spec, goal_id, current.version + 1, current.created_at, now)
    _check_layouts(goals, account_id, goal)
    _check_requirement(goals, account_id, goal)
    goals.save(account_id, goal, previous_version=current.version)
    return goal


def deactivate_goal(goals: GoalRepository, account_id: str, goal_id: str, now: datetime) -> Goal:
    """DELETE keeps the goal and its history for reports; it only stops matching."""
    current = get_goal(goals, account_id, goal_id)
    spec = GoalSpec.model_validate(current.model_dump(include=set(GoalSpec.model_fields)))
    return replace_goal(goals, account_id, goal_id, spec.model_copy(update={"active": False}), now)
