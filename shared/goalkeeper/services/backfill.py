"""Retroactive goals: decide one goal for the stored events of a past range.

A backfill is a job item in the table. It reads the account's events day by day in
time order (the day index), and decides the goal for each with the transaction live
evaluation uses (`Decisions.decide_event`): conversion ids are digests of (event, goal),
so an event already decided for the goal (by live evaluation, a racing delivery, an
earlier run of the same page, or an earlier backfill) keeps its decision, and the
counters, attribution, trace and health items are written by that same transaction.
Only this goal is matched, but claims are planned over the layouts of the whole
library, so a backfilled conversion is seen by the later decisions of other goals.
No decision of another goal is changed, and no visitor is counted among the visitors
seen again (its event already was).

The job works in pages. A page first counts the range's events (so `total` is known
before deciding starts), then decides up to `page_events` of them; after each page
the job item records its position (a UTC day and the last position read in it) and
its counts, on condition that no other write reached the job first (`step`). Each
such write is a stream record that triggers the next run, and a run that dies before
its checkpoint is run again from the previous one: re-deciding a page changes
nothing, so a resumed job ends as a clean one would.

The paging, the checkpoints and the lock are every job's (`JobRun`); what a page of
events does is the kind's: deciding a goal (`GoalJobRun`) or filling a funnel
(goalkeeper.services.funnel_backfill).
"""

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from goalkeeper import keys
from goalkeeper.dal import Dal
from goalkeeper.dal.jobs import JobState
from goalkeeper.dedup import library_layouts
from goalkeeper.errors import Conflict, FieldProblem, InvalidInput, JobMovedOn, NotFound
from goalkeeper.history import stored_event
from goalkeeper.models.common import iso, utc_now
from goalkeeper.models.jobs import BackfillRequest, Job
from goalkeeper.rules import GoalIndex
from goalkeeper.services.evaluation import (
    UNKNOWN_ACCOUNT,
    GoalLibrary,
    conversion_plans,
    credit,
    library_links,
    occurrences,
)
from goalkeeper.services.goals import get_goal, list_goals

JOB_KIND = "backfill"
ACTIVE = ("queued", "running")
# A page walks at most this many days, so a range of mostly empty days still advances
# in few pages (each page is one checkpoint write).
DAYS_PER_PAGE = 31
# A run takes no new page once less time than this is left before the function's
# timeout; its last checkpoint has already triggered the next run.
STOP_BEFORE_TIMEOUT_SECONDS = 60.0
# Attempts at one page that fail with an error other than an outage, before the job fails.
MAX_PAGE_ATTEMPTS = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHANGED_GOAL = (
    "the goal was replaced or deactivated while the backfill ran; the decisions made "
    "so far stand: start a new backfill to decide the rest with the goal as it is now"
)


def _new_job_id(now: datetime) -> str:
    micros = (now - _EPOCH) // timedelta(microseconds=1)
    return f"job_{micros:014x}{secrets.token_hex(6)}"


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


def _range_problems(
    first: date, last: date, today: date, retention_days: int
) -> list[FieldProblem]:
    problems = []
    oldest = today - timedelta(days=retention_days)
    if first < oldest:
        problems.append(
            FieldProblem(
                "from",
                f"events are kept {retention_days} days: must be {oldest} or later",
            )
        )
    if first > today:
        problems.append(FieldProblem("from", f"must not be after today ({today})"))
    elif last < first:
        problems.append(FieldProblem("to", "must not be before 'from'"))
    if last > today:
        problems.append(FieldProblem("to", f"must not be after today ({today})"))
    return problems


def start_backfill(
    dal: Dal,
    account_id: str,
    goal_id: str,
    request: BackfillRequest,
    now: datetime,
    retention_days: int,
) -> dict[str, Any]:
    """A queued job deciding an active goal for the events of [from, to] (days in the
    account's time zone); refused while another backfill of the goal has not ended
    (JobRunning)."""
    goal = get_goal(dal.goals, account_id, goal_id)
    if not goal.active:
        raise Conflict(
            f"goal {goal_id!r} is deactivated; reactivate it (PUT with active: true) to "
            "backfill it",
            [FieldProblem("goal_id", "is deactivated")],
        )
    return queue_job(
        dal,
        account_id,
        request,
        now,
        retention_days,
        job_type=JOB_KIND,
        goal_id=goal_id,
        goal_version=goal.version,
    )


def queue_job(
    dal: Dal,
    account_id: str,
    request: BackfillRequest,
    now: datetime,
    retention_days: int,
    **target: Any,
) -> dict[str, Any]:
    """A queued job over the events of [from, to] (days in the account's time zone),
    `target` (its job_type, and what it works on) as given; InvalidInput naming a bad
    range, JobRunning while another job holds the target."""
    zone = ZoneInfo(dal.accounts.timezone(account_id))
    today = now.astimezone(zone).date()
    first, last = request.start, request.end or today
    problems = _range_problems(first, last, today, retention_days)
    if problems:
        raise InvalidInput("the backfill range is invalid", problems)
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    at = iso(now)
    job = JobState(
        account_id=account_id,
        job_id=_new_job_id(now),
        status="queued",
        first=first.isoformat(),
        last=last.isoformat(),
        start_sk=iso(start),
        end_sk=iso(end),
        first_day=start.astimezone(UTC).date().isoformat(),
        last_day=(end - timedelta(microseconds=1)).astimezone(UTC).date().isoformat(),
        phase="count",
        day=start.astimezone(UTC).date().isoformat(),
        after=iso(start),
        created_at=at,
        updated_at=at,
        **target,
    )
    dal.jobs.start(job)
    return job_view(job)


def job_view(job: JobState) -> dict[str, Any]:
    view = Job.model_validate(
        {
            "job_id": job.job_id,
            "kind": job.job_type,
            "goal_id": job.goal_id,
            "goal_version": job.goal_version,
            "funnel_id": job.funnel_id,
            "status": job.status,
            "from": job.first,
            "to": job.last,
            "processed": job.processed,
            "total": None if job.phase == "count" else job.total,
            "counted": job.counted,
            "void": job.void,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "error": job.error,
        }
    )
    # A job shows what it works on: a goal (at a version) or a funnel.
    other = {"goal_id", "goal_version"} if job.funnel_id is not None else {"funnel_id"}
    return view.model_dump(mode="json", by_alias=True, exclude=other)


def get_job(dal: Dal, account_id: str, job_id: str) -> dict[str, Any]:
    job = dal.jobs.get(account_id, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r} in this account")
    return job_view(job)


class JobRun:
    """One run of a job: its next pages, from the position of its latest checkpoint.
    Each kind of job says what deciding a page of events is (`_prepare`,
    `_decide_events`)."""

    def __init__(
        self,
        dal: Dal,
        job: JobState,
        shards: int,
        page_events: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.dal = dal
        self.job = job
        self._shards = shards
        self._page_events = page_events
        self._clock = clock

    @staticmethod
    def latest(dal: Dal, seen: dict[str, Any]) -> JobState | None:
        """The job of the item `seen` (a stream record's image), or None when that is not
        the job's latest write: a later record drives it, or it has ended."""
        job = dal.jobs.get(seen["account_id"], seen["job_id"])
        if job is None or job.status not in ACTIVE or job.step != seen["step"]:
            return None
        return job

    @property
    def status(self) -> str:
        return self.job.status

    def run(self, time_left: Callable[[], float]) -> None:
        """Pages, each checkpointed before the next, until the job ends or `time_left()`
        (seconds) runs short."""
        if not self._prepare():
            return
        while self.status in ACTIVE:
            if not self._checkpoint(*self._page()):
                return
            if time_left() < STOP_BEFORE_TIMEOUT_SECONDS:
                return

    def _prepare(self) -> bool:
        """Load what deciding needs; False (having ended the job) when it cannot go on."""
        raise NotImplementedError

    def _decide_events(self, items: list[dict[str, Any]]) -> list[str]:
        """Decide stored events of the range (in time order): the counts of the job they
        add one to ("counted" | "void", each as often as it adds)."""
        raise NotImplementedError

    def fail_page(self) -> None:
        """Count a failed attempt at the current page. The write is itself the record
        that runs the page again; after MAX_PAGE_ATTEMPTS the job fails."""
        attempts = self.job.attempts + 1
        if attempts >= MAX_PAGE_ATTEMPTS:
            self._end(
                f"a page of events failed {attempts} times; the decisions made so far "
                "stand: start a new backfill to retry the rest"
            )
        else:
            self._write({"attempts": attempts})

    def _page(self) -> tuple[dict[str, Any], bool]:
        """The next page's work, and the job's new position and counts (with whether
        the job is finished)."""
        if self.job.phase == "count":
            return self._count_page(), False
        return self._decide_page()

    def _count_page(self) -> dict[str, Any]:
        job = self.job
        day, after, total = job.day, job.after, job.total
        for _ in range(DAYS_PER_PAGE):
            total += self.dal.events.count_day_events(job.account_id, day, after, job.end_sk)
            if day == job.last_day:
                return {
                    "phase": "decide",
                    "day": job.first_day,
                    "after": job.start_sk,
                    "total": total,
                }
            # A day's positions all begin with the day, so the day itself precedes them.
            day = after = _next_day(day)
        return {"day": day, "after": after, "total": total}

    def _decide_page(self) -> tuple[dict[str, Any], bool]:
        job = self.job
        day, after = job.day, job.after
        tally = {"processed": job.processed, "counted": job.counted, "void": job.void}
        budget, days, finished = self._page_events, 0, False
        while budget > 0 and days < DAYS_PER_PAGE and not finished:
            page = self.dal.events.day_events(job.account_id, day, after, budget)
            budget -= len(page.items)
            in_range = [item for item in page.items if item["gsi3sk"] < job.end_sk]
            for status in self._decide_events(in_range):
                tally[status] += 1
            tally["processed"] += len(in_range)
            if len(in_range) < len(page.items):
                finished = True  # past the range's end, which lies in its last day
            elif page.cursor is not None:
                after = page.cursor["gsi3sk"]
            elif day == job.last_day:
                finished = True
            else:
                day = after = _next_day(day)
                days += 1
        return {"day": day, "after": after, **tally}, finished

    def _checkpoint(self, changes: dict[str, Any], finished: bool) -> bool:
        changes |= {"attempts": 0, "status": "done" if finished else "running"}
        return self._write(changes, release=finished)

    def _end(self, error: str) -> None:
        self._write({"status": "failed", "error": error}, release=True)

    def _write(self, changes: dict[str, Any], release: bool = False) -> bool:
        """Record `changes` unless another write reached the job first: then this run
        stops, and the record of that write drives the job."""
        changes = changes | {"updated_at": iso(self._clock())}
        try:
            self.job = self.dal.jobs.update(self.job, changes, release)
        except JobMovedOn:
            return False
        return True


class GoalJobRun(JobRun):
    """A run of a goal's backfill: each event decided for the goal as evaluation would."""

    _library: GoalLibrary

    def _prepare(self) -> bool:
        library = self._load_library()
        if library is None:
            return False
        self._library = library
        return True

    def _decide_events(self, items: list[dict[str, Any]]) -> list[str]:
        statuses = (self._decide(self._library, item) for item in items)
        return [status for status in statuses if status is not None]

    def _load_library(self) -> GoalLibrary | None:
        """An index of this goal alone, with the layouts of the whole library: a
        counted conversion widens every claim some goal checks, as live ones do."""
        account_id = self.job.account_id
        goals = list_goals(self.dal.goals, account_id)
        goal = next((g for g in goals if g.goal_id == self.job.goal_id), None)
        if goal is None or not goal.active or goal.version != self.job.goal_version:
            self._end(CHANGED_GOAL)
            return None
        # The time zone, and the attribution settings as they are now: a backfill
        # credits history by today's model (the tool to apply a changed model).
        version = self.dal.goals.library_version(account_id) or UNKNOWN_ACCOUNT
        return GoalLibrary(
            GoalIndex.build([goal]),
            library_layouts(goals),
            version.timezone,
            version.attribution,
            library_links(goals, self.dal.funnels, account_id),
        )

    def _decide(self, library: GoalLibrary, item: dict[str, Any]) -> str | None:
        """Decide the goal for one event as evaluation would: the status of the event's
        conversion of the goal, or None when it has none. Events are decided in time
        order, so history rules (the N-th page view of a visit, a contact's entry into
        a tags rule) are reached by the event that carries them; the later events
        evaluation also decides for such a rule are decided when their turn comes."""
        account_id = self.job.account_id
        event = stored_event(item)
        own = occurrences(self.dal, library, account_id, event, item)[0]
        decisions = self.dal.decisions.decide_event(
            conversion_plans(
                library, account_id, own, self._shards, credit(self.dal, library, account_id, own)
            )
        )
        if decisions:
            return decisions[0].status
        if library.index.needs_contact_tags(event):
            # A contact's entry into a tags rule that is already decided is not offered
            # again (history.tag_occurrences): its conversion, if any, says how it went.
            _, goal_id = self.job.target
            conversion_id = keys.conversion_id(item["event_id"], goal_id)
            conversion = self.dal.decisions.conversion(account_id, conversion_id)
            return None if conversion is None else conversion.status
        return None
