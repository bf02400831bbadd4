"""Write API: events from sites and phone systems (and in Segment's protocol, and Twilio's
signed status callbacks), accounts, their settings and keys, the goal library and its
backfills, funnels, webhook subscriptions, phone system connections, call tracking
numbers and their assignment to visits, adjustments of conversions' values."""

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from goalkeeper import runtime, segment
from goalkeeper.auth import Role, current_account, current_principal, require
from goalkeeper.errors import EventIdConflict
from goalkeeper.http import (
    JsonResponse,
    api_entrypoint,
    create_resolver,
    json_response,
    public_base_url,
)
from goalkeeper.models.accounts import (
    AccountRequest,
    AccountSettingsRequest,
    ApiKeyInfo,
    KeyRequest,
)
from goalkeeper.models.events import EventBatch, IngestResult
from goalkeeper.models.funnels import FunnelSpec
from goalkeeper.models.goals import DryRunRequest, GoalSpec
from goalkeeper.models.integrations import TwilioConnectRequest
from goalkeeper.models.jobs import BackfillRequest
from goalkeeper.models.ledger import AdjustmentRequest
from goalkeeper.models.numbers import AssignRequest, NumberRequest
from goalkeeper.models.webhooks import WebhookRequest
from goalkeeper.pii import AccountSecrets
from goalkeeper.services import (
    accounts,
    backfill,
    dry_run,
    funnel_backfill,
    funnels,
    goals,
    integrations,
    ledger,
    numbers,
    webhooks,
)
from goalkeeper.services.ingest import ingest_events, load_account_secret
from goalkeeper.settings import get_settings
from goalkeeper.twilio import EMPTY_TWIML, SIGNATURE_HEADER

if TYPE_CHECKING:
    from goalkeeper.messaging import SqsOutbox

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
# Events come from servers (write keys) and from web pages (site keys, publishable).
EVENT_SENDERS = require(Role.WRITE, Role.SITE)


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
    return _issue_key(current_account(app), request)


@app.get("/v1/keys", middlewares=[READ_OR_WRITE])
def list_keys(
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JsonResponse:
    return _list_keys(current_account(app), limit, cursor)


@app.delete("/v1/keys/<key_id>", middlewares=[READ_OR_WRITE])
def revoke_key(key_id: Annotated[str, Path(max_length=64)]) -> JsonResponse:
    return _revoke_key(current_account(app), key_id)


# Account recovery: the admin key manages any account's keys (lost, leaked or
# abused ones), and every such change is logged with the account it touched.
@app.post("/v1/accounts/<account_id>/keys", middlewares=[ADMIN])
def issue_account_key(
    account_id: Annotated[str, Path(max_length=64)],
    request: Annotated[KeyRequest | None, Body()] = None,
) -> JsonResponse:
    return _issue_key(account_id, request)


@app.get("/v1/accounts/<account_id>/keys", middlewares=[ADMIN])
def list_account_keys(
    account_id: Annotated[str, Path(max_length=64)],
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JsonResponse:
    return _list_keys(account_id, limit, cursor)


@app.delete("/v1/accounts/<account_id>/keys/<key_id>", middlewares=[ADMIN])
def revoke_account_key(
    account_id: Annotated[str, Path(max_length=64)], key_id: Annotated[str, Path(max_length=64)]
) -> JsonResponse:
    return _revoke_key(account_id, key_id)


def _issue_key(account_id: str, request: KeyRequest | None) -> JsonResponse:
    by = current_principal(app).role
    key = accounts.issue_key(
        runtime.dal().accounts, account_id, by, request or KeyRequest(), _now()
    )
    _log_key_change("api key issued", account_id, key, by)
    return json_response(201, key.model_dump())


def _list_keys(account_id: str, limit: int, cursor: str | None) -> JsonResponse:
    by = current_principal(app).role
    page = accounts.list_keys(runtime.dal().accounts, account_id, by, limit, cursor)
    if by is Role.ADMIN:
        logger.warning("api keys listed", extra={"by": by.value, "account_id": account_id})
    return json_response(
        200,
        {"keys": [key.model_dump() for key in page.keys], "next_cursor": page.next_cursor},
    )


def _revoke_key(account_id: str, key_id: str) -> JsonResponse:
    by = current_principal(app).role
    key = accounts.revoke_key(runtime.dal().accounts, account_id, by, key_id, _now())
    _log_key_change("api key revoked", account_id, key, by)
    return json_response(200, key.model_dump())


def _log_key_change(message: str, account_id: str, key: ApiKeyInfo, by: Role) -> None:
    """The audit line of a key change: who changed which key of which account. The
    admin's are warnings: recovery means something went wrong, and they must survive
    a LogLevel of WARNING."""
    log = logger.warning if by is Role.ADMIN else logger.info
    log(
        message,
        extra={"by": by.value, "account_id": account_id, "key_id": key.key_id, "role": key.role},
    )


@app.post("/v1/events", middlewares=[EVENT_SENDERS])
def post_events(batch: Annotated[EventBatch, Body()]) -> JsonResponse:
    result = _ingest(current_account(app), batch, _now())
    return json_response(202, result.model_dump())


# Segment's HTTP Tracking API (goalkeeper.segment): what it maps goes through the same
# ingestion, 100 events at a time; Segment's clients expect 200 {"success": true}.
@app.post("/segment/v1/batch", middlewares=[WRITE])
def segment_batch(body: Annotated[dict[str, Any], Body()]) -> JsonResponse:
    return _segment(body, None)


@app.post("/segment/v1/track", middlewares=[WRITE])
def segment_track(body: Annotated[dict[str, Any], Body()]) -> JsonResponse:
    return _segment(body, "track")


@app.post("/segment/v1/page", middlewares=[WRITE])
def segment_page(body: Annotated[dict[str, Any], Body()]) -> JsonResponse:
    return _segment(body, "page")


@app.post("/segment/v1/identify", middlewares=[WRITE])
def segment_identify(body: Annotated[dict[str, Any], Body()]) -> JsonResponse:
    return _segment(body, "identify")


def _segment(body: dict[str, Any], route_type: str | None) -> JsonResponse:
    received_at = _now()
    for batch in segment.events_from(body, route_type, received_at):
        _ingest(current_account(app), batch, received_at)
    return json_response(200, {"success": True})


# --- Twilio (goalkeeper.twilio): connected with a write key, then posted to by Twilio,
# which holds no key: the callback route is a signed route (goalkeeper.http.SIGNED_ROUTES).


@app.put("/v1/integrations/twilio", middlewares=[WRITE])
def connect_twilio(request: Annotated[TwilioConnectRequest, Body()]) -> JsonResponse:
    account_id = current_account(app)
    connection = integrations.connect_twilio(
        runtime.dal().integrations, account_id, request, public_base_url(app), _now()
    )
    logger.info("twilio connected", extra={"account_id": account_id})
    return json_response(200, connection.model_dump())


@app.post("/v1/integrations/twilio/<account_id>/calls")
def twilio_status_callback(account_id: Annotated[str, Path(max_length=64)]) -> Response[Any]:
    """Twilio wants a quick 2xx, whatever its body: the call's first report is stored, a
    retry or a later report of it (the final status after a <Dial> action's) is a
    duplicate, and statuses before the call ended store nothing."""
    report = integrations.twilio_report(
        runtime.dal().integrations,
        account_id,
        app.current_event.body or "",
        app.current_event.headers.get(SIGNATURE_HEADER),
    )
    result = IngestResult(accepted=[], duplicates=[])
    if report.call is not None:
        try:
            result = _ingest(account_id, EventBatch(events=[report.call]), _now())
        except EventIdConflict:
            result = IngestResult(accepted=[], duplicates=[str(report.call.event_id)])
    if report.dial_action:
        # Twilio plays what a <Dial>'s action answers: nothing more, the call ends.
        return Response(200, "text/xml", EMPTY_TWIML)
    return json_response(200, result.model_dump())


def _ingest(account_id: str, batch: EventBatch, received_at: datetime) -> IngestResult:
    result = ingest_events(
        runtime.dal().events,
        runtime.dal().touches,
        account_id,
        batch,
        received_at=received_at,
        request_id=app.lambda_context.aws_request_id,
        retention_days=get_settings().event_retention_days,
        account_secret=account_secrets.get,
        write_concurrency=get_settings().ingest_write_concurrency,
        calls=numbers.CallTracking(runtime.dal().numbers, account_id),
    )
    metrics.add_metric("EventsAccepted", MetricUnit.Count, len(result.accepted))
    metrics.add_metric("EventsDuplicate", MetricUnit.Count, len(result.duplicates))
    return result


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


@app.post("/v1/webhooks", middlewares=[WRITE])
def create_webhook(request: Annotated[WebhookRequest, Body()]) -> JsonResponse:
    settings = get_settings()
    created = webhooks.create_webhook(
        runtime.dal().webhooks,
        current_account(app),
        request,
        _now(),
        limit=settings.max_webhooks_per_account,
        allow_local_http=settings.webhooks_allow_local_http,
    )
    logger.info("webhook created", extra={"webhook_id": created.webhook_id})
    return json_response(201, created.model_dump())


@app.get("/v1/webhooks", middlewares=[WRITE])
def list_webhooks() -> JsonResponse:
    found = webhooks.list_webhooks(runtime.dal().webhooks, current_account(app))
    return json_response(200, {"webhooks": [hook.model_dump() for hook in found]})


@app.delete("/v1/webhooks/<webhook_id>", middlewares=[WRITE])
def delete_webhook(webhook_id: Annotated[str, Path(max_length=64)]) -> JsonResponse:
    webhooks.delete_webhook(runtime.dal().webhooks, current_account(app), webhook_id)
    logger.info("webhook deleted", extra={"webhook_id": webhook_id})
    return json_response(200, {"webhook_id": webhook_id, "status": "deleted"})


@app.get("/v1/webhooks/<webhook_id>/deliveries", middlewares=[WRITE])
def list_deliveries(
    webhook_id: Annotated[str, Path(max_length=64)],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> JsonResponse:
    page = webhooks.deliveries_page(
        runtime.dal().webhooks, current_account(app), webhook_id, limit, cursor
    )
    return json_response(200, page)


@app.post("/v1/webhooks/<webhook_id>/deliveries/<delivery_id>/retry", middlewares=[WRITE])
def retry_delivery(
    webhook_id: Annotated[str, Path(max_length=64)],
    delivery_id: Annotated[str, Path(max_length=64)],
) -> JsonResponse:
    delivery = webhooks.retry_delivery(
        runtime.dal().webhooks, outbox(), current_account(app), webhook_id, delivery_id
    )
    logger.info("delivery retried", extra={"webhook_id": webhook_id, "delivery_id": delivery_id})
    return json_response(202, delivery.model_dump())


@functools.cache
def _outbox_at(url: str) -> "SqsOutbox":
    from goalkeeper.messaging import SqsOutbox  # only the retry route sends

    return SqsOutbox(url)


def outbox() -> "SqsOutbox":
    return _outbox_at(get_settings().delivery_queue_url)


@app.post("/v1/funnels", middlewares=[WRITE])
def create_funnel(spec: Annotated[FunnelSpec, Body()]) -> JsonResponse:
    funnel = funnels.create_funnel(runtime.dal(), current_account(app), spec, _now())
    logger.info("funnel created", extra={"funnel_id": funnel.funnel_id})
    return json_response(201, funnel.model_dump(mode="json"))


@app.post("/v1/funnels/<funnel_id>/backfill", middlewares=[WRITE])
def backfill_funnel(
    funnel_id: Annotated[str, Path(max_length=128)], request: Annotated[BackfillRequest, Body()]
) -> JsonResponse:
    job = funnel_backfill.start_funnel_backfill(
        runtime.dal(),
        current_account(app),
        funnel_id,
        request,
        _now(),
        retention_days=get_settings().event_retention_days,
    )
    logger.info("funnel backfill started", extra={"job_id": job["job_id"], "funnel_id": funnel_id})
    return json_response(202, job)


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


# --- call tracking (issue 17 part A): numbers and dynamic number insertion ---------------


@app.post("/v1/numbers", middlewares=[WRITE])
def register_number(request: Annotated[NumberRequest, Body()]) -> JsonResponse:
    number = numbers.register_number(runtime.dal().numbers, current_account(app), request, _now())
    logger.info("number registered", extra={"number": number.number, "kind": number.kind})
    return json_response(201, number.model_dump(mode="json", exclude_none=True))


@app.get("/v1/numbers", middlewares=[READ_OR_WRITE])
def list_numbers() -> JsonResponse:
    found = numbers.list_numbers(runtime.dal().numbers, current_account(app))
    return json_response(
        200, {"numbers": [number.model_dump(mode="json", exclude_none=True) for number in found]}
    )


@app.delete("/v1/numbers/<number>", middlewares=[WRITE])
def delete_number(number: Annotated[str, Path(max_length=32)]) -> JsonResponse:
    numbers.delete_number(runtime.dal().numbers, current_account(app), number, _now())
    logger.info("number deleted", extra={"number": number})
    return json_response(200, {"number": number, "status": "deleted"})


# Web pages (site keys) ask while the page is open; a server rendering pages may too.
@app.post("/v1/numbers/assign", middlewares=[EVENT_SENDERS])
def assign_number(request: Annotated[AssignRequest, Body()]) -> JsonResponse:
    assignment = numbers.assign(
        runtime.dal().numbers,
        current_account(app),
        request,
        _now(),
        get_settings().number_hold_seconds,
        get_settings().event_retention_days,
    )
    metrics.add_metric(
        "NumbersAssigned" if assignment.pooled else "NumberPoolExhausted", MetricUnit.Count, 1
    )
    return json_response(200, assignment.model_dump(mode="json"))


@app.post("/v1/conversions/<conversion_id>/adjustments", middlewares=[WRITE])
def adjust_conversion(
    conversion_id: Annotated[str, Path(max_length=64)],
    request: Annotated[AdjustmentRequest, Body()],
) -> JsonResponse:
    adjustment, made = ledger.adjust_conversion(
        runtime.dal(),
        current_account(app),
        conversion_id,
        request,
        _now(),
        get_settings().aggregate_shards,
    )
    if made:
        logger.info(
            "conversion adjusted",
            extra={"conversion_id": conversion_id, "adjustment_id": adjustment.adjustment_id},
        )
    return json_response(201 if made else 200, adjustment.to_json())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@runtime.traced
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return entry(event, context)
