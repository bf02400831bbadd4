"""Backfills' stream batches (goals' and funnels'): records of job items that are queued
or running.

A job's creation and each checkpoint it writes are stream records; the record of the
job's latest write runs its next pages (see goalkeeper.services.backfill and
goalkeeper.services.funnel_backfill). Records of
older writes find the job moved on and do nothing, so redeliveries are harmless. Each
record is decided on its own: a record that fails is retried alone.
"""

from collections.abc import Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper.dal import Dal
from goalkeeper.errors import StoreUnavailable
from goalkeeper.services import backfill, funnel_backfill
from goalkeeper.services.backfill import ACTIVE, JobRun
from goalkeeper.services.streams import MetricSink, StreamProcessor, stream_change
from goalkeeper.settings import Settings

# Each kind of job (JobState.job_type) and the run that takes its pages.
RUNS: dict[str, type[JobRun]] = {
    backfill.JOB_KIND: backfill.GoalJobRun,
    funnel_backfill.JOB_KIND: funnel_backfill.FunnelJobRun,
}


class BackfillProcessor(StreamProcessor):
    """Backfill jobs' pages, run from the table's stream (see the module's notes)."""

    def __init__(
        self,
        dal: Callable[[], Dal],
        settings: Callable[[], Settings],
        logger: Logger,
        metrics: MetricSink,
    ) -> None:
        super().__init__(logger, metrics)
        self._dal = dal
        self._settings = settings

    def record_handler(self, record: DynamoDBRecord, lambda_context: LambdaContext) -> None:
        seen = stream_change(record).new_image
        settings = self._settings()
        dal = self._dal()
        job = JobRun.latest(dal, seen)
        if job is None:
            return
        run = RUNS[job.job_type](dal, job, settings.aggregate_shards, settings.backfill_page_events)
        where = {"job_id": job.job_id} | dict([job.target])
        try:
            run.run(lambda: lambda_context.get_remaining_time_in_millis() / 1000)
        except StoreUnavailable:
            # Nothing of the page was recorded: the stream retries this record, which is
            # still the job's latest, and the page is decided again (changing nothing
            # that was decided).
            self.log.warning("store unavailable; the job's page is retried", extra=where)
            raise
        except Exception:
            self.log.exception("a backfill page failed; it is retried", extra=where)
            self.metrics.add_metric("BackfillPageFailures", MetricUnit.Count, 1)
            run.fail_page()
        if run.status not in ACTIVE:
            self.log.info(f"backfill {run.status}", extra=where | {"error": run.job.error})
