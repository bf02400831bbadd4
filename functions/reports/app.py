"""Read API: reports, visitor traces and goal health for marketers' dashboards."""

from datetime import UTC, date, datetime
from typing import Annotated

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.auth import Role, current_account, require
from goalkeeper.http import JsonResponse, api_entrypoint, create_resolver, json_response
from goalkeeper.services import reports
from goalkeeper.settings import get_settings

logger = Logger()
tracer = Tracer()
app = create_resolver()
entry = api_entrypoint(app, runtime.key_lookup)

READ = require(Role.READ)


def _account_timezone(account_id: str) -> str:
    account = runtime.store().get_account(account_id) or {}
    return account.get("timezone", "UTC")


@app.get("/v1/reports/goals", middlewares=[READ])
def goals_report(
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> JsonResponse:
    account_id = current_account(app)
    span = reports.date_range(start, end, _account_timezone(account_id), datetime.now(UTC))
    report = reports.goals_report(
        runtime.store(), account_id, span, get_settings().aggregate_shards
    )
    return json_response(200, report)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    return entry(event, context)
