"""Background jobs (a goal's or a funnel's backfill) and the lock a running job holds
on its goal (or funnel).

A job's every write is conditioned on its `step` (the number of writes it has had),
so two runs of one job never both record a page: the second finds the job moved on.
"""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from goalkeeper import keys
from goalkeeper.dal.client import TRANSACTION_CONFLICT_ATTEMPTS, Table, attempts, back_off
from goalkeeper.dal.transactions import Expression, TransactionCancelled
from goalkeeper.errors import JobMovedOn, JobRunning


@dataclass(frozen=True)
class JobState:
    """A job item: what the job does (a goal or a funnel, a range of days) and how far
    it got."""

    account_id: str
    job_id: str
    job_type: str
    status: str
    first: str  # the range's first and last day, in the account's time zone
    last: str
    # Events of the range have day-index positions in [start_sk, end_sk), on the UTC
    # days first_day .. last_day.
    start_sk: str
    end_sk: str
    first_day: str
    last_day: str
    phase: str  # "count", then "decide"
    day: str  # the position: a UTC day, and the last position read in it
    after: str
    created_at: str
    updated_at: str
    step: int = 0
    attempts: int = 0
    total: int = 0
    processed: int = 0
    counted: int = 0
    void: int = 0
    error: str | None = None
    goal_id: str | None = None  # a goal's backfill: the goal, as it was at this version
    goal_version: int | None = None
    funnel_id: str | None = None  # a funnel's backfill

    @property
    def target(self) -> tuple[str, str]:
        """What the job works on, as a request names it: ("goal_id" | "funnel_id", id)."""
        if self.funnel_id is not None:
            return "funnel_id", self.funnel_id
        assert self.goal_id is not None  # a job is of a goal or of a funnel
        return "goal_id", self.goal_id

    def lock(self) -> dict[str, str]:
        """The key of the lock the job holds: one job at a time per goal, or per funnel."""
        field, ident = self.target
        if field == "funnel_id":
            return keys.funnel_job_lock(self.account_id, ident)
        return keys.goal_job_lock(self.account_id, ident)

    def changed(self, changes: dict[str, Any]) -> "JobState":
        """The job after a write of `changes` (which counts as one more step)."""
        return replace(self, **changes, step=self.step + 1)


# The item's names of the fields whose own names would read oddly in code.
_ITEM_NAMES = {"first": "from", "last": "to"}
_INTEGERS = {f.name for f in fields(JobState) if f.type in (int, int | None)}


def job_item(job: JobState) -> dict[str, Any]:
    body = {_ITEM_NAMES.get(name, name): value for name, value in asdict(job).items()}
    return keys.job(job.account_id, job.job_id) | {"kind": "job"} | body


def job_from_item(item: dict[str, Any]) -> JobState:
    values: dict[str, Any] = {
        name: item.get(_ITEM_NAMES.get(name, name))
        for name in (f.name for f in fields(JobState))
        if _ITEM_NAMES.get(name, name) in item
    }
    for name in _INTEGERS & values.keys():
        values[name] = int(values[name])
    return JobState(**values)


def _item_names(changes: dict[str, Any]) -> dict[str, Any]:
    return {_ITEM_NAMES.get(name, name): value for name, value in changes.items()}


class Jobs:
    def __init__(self, table: Table) -> None:
        self._table = table

    def start(self, job: JobState) -> None:
        """Store a new job and make it the holder of its goal's (or funnel's) lock, at
        once; JobRunning when another job holds the lock (one not yet released)."""
        lock = job.lock() | {
            "kind": "job_lock",
            "job_id": job.job_id,
            "active": True,
        }
        exhausted = "starting the job kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, exhausted):
            transaction = self._table.transaction()
            expression = Expression()
            active, no = expression.name("active"), expression.value(False)
            free = f"attribute_not_exists({expression.name(keys.PK)}) OR {active} = {no}"
            transaction.put("lock", lock, free, expression, return_old=True)
            transaction.create("job", job_item(job))
            try:
                self._table.commit(transaction)
                return
            except TransactionCancelled as cancelled:
                holder = cancelled.reasons["lock"]
                if holder.failed_condition:
                    # Our own earlier attempt, applied with its answer lost, holds it too.
                    running = str(holder.item["job_id"])
                    if running == job.job_id:
                        return
                    raise JobRunning(*job.target, running) from cancelled
                back_off(cancelled, attempt)

    def get(self, account_id: str, job_id: str) -> JobState | None:
        item = self._table.get(keys.job(account_id, job_id), consistent=True)
        return job_from_item(item) if item else None

    def update(self, job: JobState, changes: dict[str, Any], release: bool = False) -> JobState:
        """Write `changes` (JobState fields) to a job and count the write in its `step`,
        on condition that `step` is still the one `job` holds; with `release`, also free
        its goal's (or funnel's) lock, which the job holds. The job as written, or JobMovedOn when
        another write reached the job first."""
        transaction = self._table.transaction()
        expression = Expression()
        written = _item_names(changes) | {"step": job.step + 1}
        sets = [f"{expression.name(n)} = {expression.value(v)}" for n, v in written.items()]
        condition = f"{expression.name('step')} = {expression.value(job.step)}"
        key = keys.job(job.account_id, job.job_id)
        transaction.update("job", key, f"SET {', '.join(sets)}", expression, condition)
        if release:
            freeing = Expression()
            transaction.update(
                "lock",
                job.lock(),
                f"SET {freeing.name('active')} = {freeing.value(False)}",
                freeing,
                f"{freeing.name('job_id')} = {freeing.value(job.job_id)}",
            )
        exhausted = "updating the job kept conflicting with concurrent writes"
        for attempt in attempts(TRANSACTION_CONFLICT_ATTEMPTS, exhausted):
            try:
                self._table.commit(transaction)
                break
            except TransactionCancelled as cancelled:
                if cancelled.reasons["job"].failed_condition:
                    raise JobMovedOn("another write reached the job first") from cancelled
                back_off(cancelled, attempt)
        return job.changed(changes)
