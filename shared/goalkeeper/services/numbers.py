"""Call tracking as the API serves it: registering numbers, giving a visit a pool
number (dynamic number insertion), resolving a call by the number it dialled, and
the pool report."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from goalkeeper.dal.client import is_key_value
from goalkeeper.dal.numbers import Numbers
from goalkeeper.errors import FieldProblem, InvalidInput, NotFound
from goalkeeper.models.common import iso, to_item
from goalkeeper.models.events import Attribution, Call
from goalkeeper.models.numbers import Assignment, AssignRequest, NumberRequest, TrackingNumber
from goalkeeper.numbers import free_in_lru_order, held_by, live_holds, sizing_advice
from goalkeeper.services.reports import date_range

# The pool report's default period.
REPORT_DEFAULT_DAYS = 7


def _kind_problems(request: NumberRequest) -> list[FieldProblem]:
    if request.kind == "static":
        problems = [
            FieldProblem(name, "only goes with a pool number")
            for name in ("pool", "replaces")
            if getattr(request, name) is not None
        ]
        if request.attribution is None or not request.attribution.model_dump(exclude_none=True):
            problems.insert(0, FieldProblem("attribution", "is required for a static number"))
        return problems
    problems = []
    if request.replaces is None:
        problems.append(FieldProblem("replaces", "is required for a pool number"))
    elif request.replaces == request.number:
        problems.append(
            FieldProblem("replaces", "must be the site's own number, not the pool number itself")
        )
    if request.attribution is not None:
        problems.append(
            FieldProblem(
                "attribution",
                "only goes with a static number (a pool number takes the visit's)",
            )
        )
    return problems


def number_from_item(item: dict[str, Any]) -> TrackingNumber:
    return TrackingNumber(
        number=item["number"],
        kind=item["number_kind"],
        attribution=item.get("attribution"),
        pool=item.get("pool"),
        replaces=item.get("replaces"),
        created_at=item["created_at"],
    )


def register_number(
    numbers: Numbers, account_id: str, request: NumberRequest, now: datetime
) -> TrackingNumber:
    """400 naming each field that does not go with the kind; 409 when the number is
    another account's, already this account's, or its pool has another name."""
    problems = _kind_problems(request)
    if problems:
        raise InvalidInput("the number is invalid", problems)
    pool_name = None
    if request.kind == "pool":
        pool_name = request.pool or request.replaces
    item = to_item(
        {
            "kind": "tracking_number",
            "account_id": account_id,
            "number": request.number,
            "number_kind": request.kind,
            "attribution": request.attribution,
            "pool": pool_name,
            "replaces": request.replaces,
            "created_at": iso(now),
        }
    )
    numbers.register(account_id, item, pool_name)
    return number_from_item(item)


def list_numbers(numbers: Numbers, account_id: str) -> list[TrackingNumber]:
    items = [item for item in numbers.all(account_id) if "deleted_at" not in item]
    return sorted((number_from_item(item) for item in items), key=lambda n: n.number)


def delete_number(numbers: Numbers, account_id: str, number: str, now: datetime) -> None:
    """Stop using a number: it leaves its pool and may be registered again (by any
    account); calls that started before now still resolve by it."""
    item = numbers.get(account_id, number) if is_key_value(number) else None
    if item is None or "deleted_at" in item:
        raise NotFound("no such number")
    numbers.delete(account_id, item, now)


def assign(
    numbers: Numbers,
    account_id: str,
    request: AssignRequest,
    now: datetime,
    hold_seconds: int,
    retention_days: int,
) -> Assignment:
    """The pool number this visit holds (renewed), else the least recently used free
    one, else, the pool being exhausted, the site's own number with pooled false. Each
    number read free is tried in turn: one taken meanwhile by another visit's
    conditional write is passed over. A hold's history is kept as long as events are
    (`retention_days`): calls as old as the oldest stored events still match."""
    day = iso(now)[:10]
    pool = numbers.pool_view(account_id, request.replaces, day)
    if pool is None:
        raise NotFound(
            f"no pool of numbers stands in for {request.replaces}",
            [FieldProblem("replaces", "is no pool's site number (POST /v1/numbers)")],
        )
    until = now + timedelta(seconds=hold_seconds)
    mine = held_by(pool.numbers, request.visit_id, now)
    if mine is not None and numbers.renew(account_id, request.replaces, mine, iso(until), now):
        return Assignment(number=mine.number, held_until=until, pooled=True)
    hold = {
        "visitor_id": request.visitor_id,
        "visit_id": request.visit_id,
        "attribution": to_item(request.attribution) or None,
        "started_at": iso(now),
        "until": iso(until),
        "expires_at": int((until + timedelta(days=retention_days)).timestamp()),
    }
    for candidate in free_in_lru_order(pool.numbers, now):
        if numbers.take(account_id, request.replaces, candidate.number, hold, now):
            holds = live_holds(pool.numbers, now) + 1
            if holds > pool.peak_today:
                numbers.raise_peak(account_id, request.replaces, day, holds)
            return Assignment(number=candidate.number, held_until=until, pooled=True)
    numbers.count_exhausted(account_id, request.replaces, day)
    return Assignment(number=request.replaces, held_until=None, pooled=False)


@dataclass(frozen=True)
class CallTracking:
    """Calls of one account resolved by the numbers they dialled, as ingestion stores
    them (goalkeeper.services.ingest.CallTracking)."""

    numbers: Numbers
    account_id: str

    def resolve(self, call: Call) -> tuple[Call, str | None]:
        """The call with what its tracking number resolved filled in where the call did
        not carry it, and the pool of the number (None: static or unknown), whose day
        counts it. Static: its attribution. Pool: the visit whose hold covered the
        call's start (visitor, visit, attribution). Read from history only, so a call
        reported hours later, or again, resolves the same way."""
        assert call.occurred_at is not None and call.tracking_number is not None
        item = self.numbers.get(self.account_id, call.tracking_number)
        deleted_at = item.get("deleted_at") if item else None
        if item is None or (deleted_at is not None and deleted_at <= iso(call.occurred_at)):
            return call.model_copy(update={"matched_by": "none"}), None
        if item["number_kind"] == "static":
            attribution = call.attribution or Attribution.model_validate(item["attribution"])
            return call.model_copy(
                update={"attribution": attribution, "matched_by": "static"}
            ), None
        replaces: str = item["replaces"]
        hold = self.numbers.hold_at(self.account_id, call.tracking_number, call.occurred_at)
        if hold is None or not hold.covers(call.occurred_at):
            return call.model_copy(update={"matched_by": "none"}), replaces
        filled = {
            "visitor_id": call.visitor_id or hold.visitor_id,
            "visit_id": call.visit_id or hold.visit_id,
            "attribution": call.attribution
            or (Attribution.model_validate(hold.attribution) if hold.attribution else None),
            "matched_by": "pool",
        }
        return call.model_copy(update=filled), replaces

    def count(self, item: dict[str, Any]) -> None:
        """Count a stored call to a pool number (its item names the pool) in the pool's
        day of the call, matched or not: once per event, however often it is sent."""
        pool = item.get("tracking_pool")
        if pool is None:
            return
        matched = item["body"].get("matched_by") == "pool"
        day = item["occurred_at"][:10]
        self.numbers.count_call(
            self.account_id, pool, day, item["event_id"], matched, int(item["expires_at"])
        )


def numbers_report(
    numbers: Numbers, account_id: str, first: date | None, last: date | None, now: datetime
) -> dict[str, Any]:
    """Per pool, over UTC days from `first` to `last` (default: the 7 days to today, a
    week being what sizing a pool looks at): its numbers, the peak of holds at once,
    assignments, those that found it exhausted, calls matched to a visit and not, and
    how many numbers to add. One Query per pool (its day items, numbers and name)."""
    if first is None:  # the week to `last`, or as much of it as the calendar has
        end = last or now.date()
        first = end - timedelta(days=min(REPORT_DEFAULT_DAYS - 1, (end - date.min).days))
    span = date_range(first, last, "UTC", now)
    pools: dict[str, list[str]] = {}
    for tracking in list_numbers(numbers, account_id):
        if tracking.replaces is not None:
            pools.setdefault(tracking.replaces, []).append(tracking.number)
    report = []
    for replaces, pool_numbers in sorted(pools.items()):
        period = numbers.pool_period(
            account_id, replaces, span.start.isoformat(), span.end.isoformat()
        )
        advice = sizing_advice(
            len(pool_numbers), period.peak_holds, period.assignments, period.exhausted
        )
        report.append(
            {
                "pool": period.name or replaces,
                "replaces": replaces,
                "numbers": pool_numbers,
                "peak_holds": period.peak_holds,
                "assignments": period.assignments,
                "exhausted_assignments": period.exhausted,
                "calls_matched": period.calls_matched,
                "calls_unmatched": period.calls_unmatched,
                "advice": {"add_numbers": advice.add, "text": advice.text},
            }
        )
    return {"from": span.start.isoformat(), "to": span.end.isoformat(), "pools": report}
