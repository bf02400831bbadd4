"""Read API: reports, visitor traces and goal health for marketers' dashboards, the
progress of background jobs, and Google Ads import files."""

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.auth import Role, current_account, require
from goalkeeper.http import JsonResponse, api_entrypoint, create_resolver, json_response
from goalkeeper.services import backfill, exports, funnels, numbers, reports
from goalkeeper.settings import get_settings

logger = Logger()
app = create_resolver()
entry = api_entrypoint(app, runtime.key_lookup)

READ = require(Role.READ)
READ_OR_WRITE = require(Role.READ, Role.WRITE)
From = Annotated[date | None, Query(alias="from", description="first day, YYYY-MM-DD")]
To = Annotated[date | None, Query(alias="to", description="last day, YYYY-MM-DD")]
GoalId = Annotated[str, Path(min_length=1, max_length=128)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def _span(account_id: str, start: date | None, end: date | None) -> reports.DateRange:
    return reports.account_date_range(runtime.dal(), account_id, start, end, datetime.now(UTC))


def _shards() -> int:
    return get_settings().aggregate_shards


@app.get("/v1/reports/goals", middlewares=[READ])
def goals_report(start: From = None, end: To = None) -> JsonResponse:
    account_id = current_account(app)
    report = reports.goals_report(
        runtime.dal(), account_id, _span(account_id, start, end), _shards()
    )
    return json_response(200, report)


@app.get("/v1/reports/goals/<goal_id>/timeseries", middlewares=[READ])
def goal_timeseries(goal_id: GoalId, start: From = None, end: To = None) -> JsonResponse:
    account_id = current_account(app)
    span = _span(account_id, start, end)
    return json_response(
        200, reports.goal_timeseries(runtime.dal(), account_id, goal_id, span, _shards())
    )


@app.get("/v1/reports/funnels/<funnel_id>", middlewares=[READ])
def funnel_report(
    funnel_id: Annotated[str, Path(min_length=1, max_length=128)],
    start: From = None,
    end: To = None,
) -> JsonResponse:
    account_id = current_account(app)
    span = _span(account_id, start, end)
    return json_response(
        200, funnels.funnel_report(runtime.dal(), account_id, funnel_id, span, _shards())
    )


@app.get("/v1/reports/attribution", middlewares=[READ])
def attribution(
    dimension: Annotated[Literal["source", "medium", "campaign", "keyword"], Query()] = "campaign",
    group: Annotated[Literal["converting", "non_converting", "all"], Query()] = "all",
    start: From = None,
    end: To = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=reports.ATTRIBUTION_PAGE_ITEMS,
            description="attribution counters read for this page (a page's cost)",
        ),
    ] = reports.ATTRIBUTION_PAGE_ITEMS,
    cursor: Cursor = None,
) -> JsonResponse:
    account_id = current_account(app)
    span = _span(account_id, start, end)
    report = reports.attribution_report(
        runtime.dal(), account_id, span, _shards(), dimension, group, limit, cursor
    )
    return json_response(200, report)


@app.get("/v1/reports/top-keywords", middlewares=[READ])
def top_keywords(
    start: From = None, end: To = None, limit: Annotated[int, Query(ge=1, le=200)] = 200
) -> JsonResponse:
    account_id = current_account(app)
    span = _span(account_id, start, end)
    return json_response(
        200, reports.top_keywords(runtime.dal(), account_id, span, _shards(), limit)
    )


@app.get("/v1/reports/numbers", middlewares=[READ])
def numbers_report(start: From = None, end: To = None) -> JsonResponse:
    report = numbers.numbers_report(
        runtime.dal().numbers, current_account(app), start, end, datetime.now(UTC)
    )
    return json_response(200, report)


@app.get("/v1/visitors/<visitor_id>/trace", middlewares=[READ])
def visitor_trace(
    visitor_id: Annotated[str, Path(min_length=1, max_length=128)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Cursor = None,
) -> JsonResponse:
    trace = reports.visitor_trace(runtime.dal(), current_account(app), visitor_id, limit, cursor)
    return json_response(200, trace)


@app.get("/v1/goals/<goal_id>/health", middlewares=[READ])
def goal_health(goal_id: GoalId) -> JsonResponse:
    health = reports.goal_health(
        runtime.dal(), current_account(app), goal_id, _shards(), datetime.now(UTC)
    )
    return json_response(200, health)


@app.get("/v1/jobs/<job_id>", middlewares=[READ_OR_WRITE])
def get_job(job_id: Annotated[str, Path(min_length=1, max_length=128)]) -> JsonResponse:
    return json_response(200, backfill.get_job(runtime.dal(), current_account(app), job_id))


@app.get("/v1/exports/google-ads", middlewares=[READ])
def google_ads_export(
    start: From = None,
    end: To = None,
    goal_ids: Annotated[
        str | None, Query(max_length=2048, description="comma-separated goal ids (default: all)")
    ] = None,
    kind: Annotated[Literal["conversions", "adjustments"], Query()] = "conversions",
) -> Response[str]:
    wanted = [goal_id.strip() for goal_id in goal_ids.split(",")] if goal_ids else None
    text = exports.google_ads_export(
        runtime.dal(), current_account(app), wanted, start, end, kind, datetime.now(UTC)
    )
    return Response(
        status_code=200,
        content_type="text/csv; charset=utf-8",
        body=text,
        headers={"Content-Disposition": f'attachment; filename="google-ads-{kind}.csv"'},
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@runtime.traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return entry(event, context)
