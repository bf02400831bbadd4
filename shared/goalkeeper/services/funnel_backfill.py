"""Funnels created later: a funnel's counters filled for a past range, as if it had
existed all along (POST /v1/funnels/{funnel_id}/backfill, GET /v1/jobs/{job_id}).

A funnel's backfill is a job on the machinery of goal backfills
(goalkeeper.services.backfill: counted, then paged, checkpointed, resumed after a
crash) over the account's stored events of the range, in time order. For a page of
events it reads the conversions of the funnel's goals they have (one consistent
BatchGetItem) and puts each counted one on its step of the funnel when the step is
reached (`Decisions.put_on_funnel_step`): the conversion's record of the funnel, the
track it joins and the funnel's day counters in one write, conditioned on the
conversion holding no record of the funnel yet. So a page run again, a second job, or
evaluation racing the job never puts a conversion on a step twice, and the funnel's
counters still equal a recount of the conversions' records.

Conversions evaluation put on a step while the funnel existed stay as they are; a
conversion it left off (the previous step not reached then) is judged again, so a
backfill only ever adds. After a page, its conversions are read again: one that
evaluation stored meanwhile, before the page's earlier conversions were on the
funnel's tracks, is judged again then (evaluation decides any later one with them on).
"""

from datetime import datetime
from typing import Any

from goalkeeper import keys
from goalkeeper.dal import Dal
from goalkeeper.dal.decisions import CountedConversion, StepFill
from goalkeeper.dedup import AggregateDelta, ConversionPlan
from goalkeeper.models.jobs import BackfillRequest
from goalkeeper.services.backfill import JobRun, queue_job
from goalkeeper.services.funnels import get_funnel
from goalkeeper.steps import FunnelShape, Links, subject_of

JOB_KIND = "funnel_backfill"
DELETED_FUNNEL = "the funnel was deleted while its backfill ran; the steps filled so far stand"


def start_funnel_backfill(
    dal: Dal,
    account_id: str,
    funnel_id: str,
    request: BackfillRequest,
    now: datetime,
    retention_days: int,
) -> dict[str, Any]:
    """A queued job filling a funnel (not deleted) for the conversions of the events of
    [from, to] (days in the account's time zone); refused while another backfill of the
    funnel has not ended (JobRunning)."""
    get_funnel(dal, account_id, funnel_id)
    return queue_job(
        dal, account_id, request, now, retention_days, job_type=JOB_KIND, funnel_id=funnel_id
    )


class FunnelJobRun(JobRun):
    """A run of a funnel's backfill (see the module's notes)."""

    _steps: tuple[str, ...]
    _links: Links

    def _prepare(self) -> bool:
        _, funnel_id = self.job.target
        funnel = self.dal.funnels.get(self.job.account_id, funnel_id)
        if funnel is None or not funnel.active:
            self._end(DELETED_FUNNEL)
            return False
        self._steps = tuple(funnel.steps)
        self._links = Links.build((), [FunnelShape(funnel_id, self._steps, funnel.window_days)])
        return True

    def _decide_events(self, items: list[dict[str, Any]]) -> list[str]:
        """Each counted conversion of the funnel's goals these events have: "counted"
        when it is on its step, "void" when it is on none."""
        if not items:
            return []
        _, funnel_id = self.job.target
        wanted = [
            keys.conversion_id(item["event_id"], goal_id)
            for item in items
            for goal_id in self._steps
        ]
        on_step: dict[str, bool] = {}
        read = self.dal.decisions.counted_conversions(self.job.account_id, wanted)
        while True:
            for conversion in sorted(read, key=lambda c: (c.occurred_at, c.event_id)):
                if funnel_id in conversion.funnels or on_step.get(conversion.conversion_id):
                    on_step[conversion.conversion_id] = True
                else:
                    on_step[conversion.conversion_id] = self._put_on_step(conversion)
            read = self.dal.decisions.counted_conversions(self.job.account_id, wanted)
            if on_step.keys() >= {conversion.conversion_id for conversion in read}:
                break  # none stored since: each was judged after every earlier one
        return ["counted" if on else "void" for on in on_step.values()]

    def _put_on_step(self, conversion: CountedConversion) -> bool:
        at = datetime.fromisoformat(conversion.occurred_at)
        subject = subject_of(conversion.visitor_id, conversion.contact_id)
        order_key = f"{conversion.occurred_at}#{conversion.event_id}"
        _, steps = self._links.plan(conversion.goal_id, subject, at, order_key)
        if not steps:
            return False  # no visitor or contact: on no funnel's step
        plan = ConversionPlan(
            account_id=self.job.account_id,
            conversion_id=conversion.conversion_id,
            goal_id=conversion.goal_id,
            event_id=conversion.event_id,
            at=at,
            checks=(),
            writes=(),
            aggregate=AggregateDelta(
                keys.shard_of(conversion.event_id, self._shards), conversion.day, None
            ),
            funnel_steps=steps,
        )
        return self.dal.decisions.put_on_funnel_step(StepFill(plan, bool(conversion.funnels)))
