"""Write API: events from sites and phone systems, accounts, their settings and keys, the
goal library and its backfills, funnels."""

from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime
from goalkeeper.auth import Role, current_account, current_principal, require
from goalkeeper.http import JsonResponse, api_entrypoint, create_resolver, json_response
from goalkeeper.models.accounts import AccountRequest, AccountSettingsRequest, KeyRequest
from goalkeeper.models.events import EventBatch
from goalkeeper.models.funnels import FunnelSpec
from goalkeeper.models.goals import DryRunRequest, GoalSpec
from goalkeeper.models.jobs import BackfillRequest
from goalkeeper.pii import AccountSecrets
from goalkeeper.services import accounts, backfill, dry_run, funnels, goals
from goalkeeper.services.ingest import ingest_events, load_account_secret
from goalkeeper.settings import get_settings

logger = Logger()
metrics = Metrics()
app = create_resolver()
entry = api_entrypoint(app, runtime.key_lookup)
# An account's secret never changes: each warm instance reads it once per account.
account_secrets = AccountSecrets(
    lambda account_id: load_account_secret(runtime.dal().accounts, account_id)
)

ADMIN = require(Role.ADMIN)
WRITE = require(Role.WRITE)
READ_OR_WRITE = require(Role.READ, Role.WRITE)


def _now() -> datetime:
    return datetime.now(UTC)


@app.post("/v1/accounts", middlewares=[ADMIN])
def create_account(request: Annotated[AccountRequest | None, Body()] = None) -> JsonResponse:
    account = accounts.create_account(runtime.dal().accounts, request or AccountRequest(), _now())
    logger.info("account created", extra={"account_id": account.account_id})
    return json_response(201, account.model_dump())


@app.get("/v1/account", middlewares=[READ_OR_WRITE])
def get_account() -> JsonResponse:
    account = accounts.get_account(runtime.dal().accounts, current_account(app))
    return json_response(200, account.model_dump(mode="json"))


@app.put("/v1/account", middlewares=[WRITE])
def set_account_settings(request: Annotated[AccountSettingsRequest, Body()]) -> JsonResponse:
    account = accounts.set_account_settings(runtime.dal().accounts, current_account(app), request)
    logger.info(
        "attribution settings changed",
        extra={
            "account_id": account.account_id,
            "model": account.attribution.model.value,
            "lookback_days": account.attribution.lookback_days,
        },
    )
    return json_response(200, account.model_dump(mode="json"))


@app.post("/v1/keys", middlewares=[READ_OR_WRITE])
def issue_key(request: Annotated[KeyRequest | None, Body()] = None) -> JsonResponse:
    key = accounts.issue_key(
        runtime.dal().accounts,
        current_account(app),
        current_principal(app).role,
        request or KeyRequest(),
        _now(),
    )
    logger.info("api key issued", extra={"key_id": key.key_id, "role": key.role})
    return json_response(201, key.model_dump())


@app.get("/v1/keys", middlewares=[READ_OR_WRITE])
def list_keys(
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JsonResponse:
    page = accounts.list_keys(
        runtime.dal().accounts, current_account(app), current_principal(app).role, limit, cursor
    )
    return json_response(
        200,
        {"keys": [key.model_dump() for key in page.keys], "next_cursor": page.next_cursor},
    )


@app.delete("/v1/keys/<key_id>", middlewares=[READ_OR_WRITE])
def revoke_key(key_id: Annotated[str, Path(max_length=64)]) -> JsonResponse:
    key = accounts.revoke_key(
        runtime.dal().accounts, current_account(app), current_principal(app).role, key_id, _now()
    )
    logger.info("api key revoked", extra={"key_id": key.key_id, "role": key.role})
    return json_response(200, key.model_dump())


@app.post("/v1/events", middlewares=[WRITE])
def post_events(batch: Annotated[EventBatch, Body()]) -> JsonResponse:
    result = ingest_events(
        runtime.dal().events,
        runtime.dal().touches,
        current_account(app),
        batch,
        received_at=_now(),
        request_id=app.lambda_context.aws_request_id,
        retention_days=get_settings().event_retention_days,
        account_secret=account_secrets.get,
        write_concurrency=get_settings().ingest_write_concurrency,
    )
    metrics.add_metric("EventsAccepted", MetricUnit.Count, len(result.accepted))
    metrics.add_metric("EventsDuplicate", MetricUnit.Count, len(result.duplicates))
    return json_response(202, result.model_dump())


@app.get("/v1/goals", middlewares=[READ_OR_WRITE])
def list_goals(
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=256)] = None,
) -> JsonResponse:
    page = goals.goals_page(runtime.dal().goals, current_account(app), limit, cursor)
    return json_response(200, page.model_dump(mode="json"))


@app.post("/v1/goals", middlewares=[WRITE])
def create_goal(spec: Annotated[GoalSpec, Body()]) -> JsonResponse:
    goal = goals.create_goal(
        runtime.dal().goals,
        current_account(app),
        spec,
        _now(),
        max_goals=get_settings().max_goals_per_account,
    )
    return json_response(201, goal.model_dump(mode="json"))


# Declared before the /v1/goals/<goal_id> routes, though Powertools tries static paths
# before dynamic ones anyway: "dry-run" is never taken for a goal id.
@app.post("/v1/goals/dry-run", middlewares=[READ_OR_WRITE])
def dry_run_goal(request: Annotated[DryRunRequest, Body()]) -> JsonResponse:
    answer = dry_run.dry_run(
        runtime.dal(), current_account(app), request, _now(), get_settings().aggregate_shards
    )
    logger.info(
        "goal dry-run",
        extra={key: answer[key] for key in ("examined", "truncated", "matched", "would_count")},
    )
    metrics.add_metric("DryRunEventsExamined", MetricUnit.Count, answer["examined"])
    return json_response(200, answer)


@app.get("/v1/goals/<goal_id>", middlewares=[READ_OR_WRITE])
def get_goal(goal_id: Annotated[str, Path(max_length=128)]) -> JsonResponse:
    goal = goals.get_goal(runtime.dal().goals, current_account(app), goal_id)
    return json_response(200, goal.model_dump(mode="json"))


@app.put("/v1/goals/<goal_id>", middlewares=[WRITE])
def replace_goal(
    goal_id: Annotated[str, Path(max_length=128)], spec: Annotated[GoalSpec, Body()]
) -> JsonResponse:
    goal = goals.replace_goal(runtime.dal().goals, current_account(app), goal_id, spec, _now())
    return json_response(200, goal.model_dump(mode="json"))


@app.delete("/v1/goals/<goal_id>", middlewares=[WRITE])
def deactivate_goal(goal_id: Annotated[str, Path(max_length=128)]) -> JsonResponse:
    goal = goals.deactivate_goal(runtime.dal().goals, current_account(app), goal_id, _now())
    return json_response(200, goal.model_dump(mode="json"))


@app.post("/v1/goals/<goal_id>/backfill", middlewares=[WRITE])
def backfill_goal(
    goal_id: Annotated[str, Path(max_length=128)], request: Annotated[BackfillRequest, Body()]
) -> JsonResponse:
    job = backfill.start_backfill(
        runtime.dal(),
        current_account(app),
        goal_id,
        request,
        _now(),
        retention_days=get_settings().event_retention_days,
    )
    logger.info("backfill started", extra={"job_id": job["job_id"], "goal_id": goal_id})
    return json_response(202, job)


@app.post("/v1/funnels", middlewares=[WRITE])
def create_funnel(spec: Annotated[FunnelSpec, Body()]) -> JsonResponse:
    funnel = funnels.create_funnel(runtime.dal(), current_account(app), spec, _now())
    logger.info("funnel created", extra={"funnel_id": funnel.funnel_id})
    return json_response(201, funnel.model_dump(mode="json"))


@app.get("/v1/funnels", middlewares=[READ_OR_WRITE])
def list_funnels() -> JsonResponse:
    found = funnels.list_funnels(runtime.dal(), current_account(app))
    return json_response(200, {"funnels": [funnel.model_dump(mode="json") for funnel in found]})


@app.get("/v1/funnels/<funnel_id>", middlewares=[READ_OR_WRITE])
def get_funnel(funnel_id: Annotated[str, Path(max_length=128)]) -> JsonResponse:
    funnel = funnels.get_funnel(runtime.dal(), current_account(app), funnel_id)
    return json_response(200, funnel.model_dump(mode="json"))


@app.delete("/v1/funnels/<funnel_id>", middlewares=[WRITE])
def delete_funnel(funnel_id: Annotated[str, Path(max_length=128)]) -> JsonResponse:
    funnel = funnels.delete_funnel(runtime.dal(), current_account(app), funnel_id)
    logger.info("funnel deleted", extra={"funnel_id": funnel.funnel_id})
    return json_response(200, funnel.model_dump(mode="json"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@runtime.traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return entry(event, context)
