"""template.yaml is the one schema: check what the local stack derives from it.

These tests read the real template and the real sample events, so a change to
either that the local stack would mis-read fails here first.
"""

import json
from pathlib import Path

import pytest

from goalkeeper_cli.local_stack.template import (
    EVALUATION_FUNCTION,
    REPO_ROOT,
    ApiRoute,
    api_routes,
    load_template,
    matches_filter,
    passes_filters,
    stream_subscription,
    stream_subscriptions,
    table_create_kwargs,
    ttl_attribute,
)

EVENTS_DIR = REPO_ROOT / "events"
API_EVENT_FILES = [
    "create_account.json",
    "call_qualified.json",
    "page_view.json",
    "report_goals.json",
]
STREAM_EVENT_FILE = "stream_call_inserted.json"

# The API contract v1 (its routes' names are fixed; README, "API (v1)"), route by route,
# with the function that owns it.
EXPECTED_ROUTES = {
    ("POST", "/v1/accounts"): "IngestFunction",
    ("POST", "/v1/events"): "IngestFunction",
    ("GET", "/v1/goals"): "IngestFunction",
    ("POST", "/v1/goals"): "IngestFunction",
    ("POST", "/v1/goals/dry-run"): "IngestFunction",
    ("GET", "/v1/goals/{goal_id}"): "IngestFunction",
    ("PUT", "/v1/goals/{goal_id}"): "IngestFunction",
    ("DELETE", "/v1/goals/{goal_id}"): "IngestFunction",
    ("GET", "/v1/account"): "IngestFunction",
    ("PUT", "/v1/account"): "IngestFunction",
    ("POST", "/v1/keys"): "IngestFunction",
    ("GET", "/v1/keys"): "IngestFunction",
    ("DELETE", "/v1/keys/{key_id}"): "IngestFunction",
    ("GET", "/v1/reports/goals"): "ReportsFunction",
    ("GET", "/v1/reports/goals/{goal_id}/timeseries"): "ReportsFunction",
    ("GET", "/v1/reports/attribution"): "ReportsFunction",
    ("GET", "/v1/reports/top-keywords"): "ReportsFunction",
    ("GET", "/v1/visitors/{visitor_id}/trace"): "ReportsFunction",
    ("GET", "/v1/goals/{goal_id}/health"): "ReportsFunction",
    ("POST", "/v1/goals/{goal_id}/backfill"): "IngestFunction",
    ("POST", "/v1/webhooks"): "IngestFunction",
    ("GET", "/v1/webhooks"): "IngestFunction",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "IngestFunction",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "IngestFunction",
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): "IngestFunction",
    ("GET", "/v1/jobs/{job_id}"): "ReportsFunction",
    ("GET", "/v1/accounts/{account_id}/keys"): "IngestFunction",
    ("POST", "/v1/accounts/{account_id}/keys"): "IngestFunction",
    ("DELETE", "/v1/accounts/{account_id}/keys/{key_id}"): "IngestFunction",
    ("POST", "/segment/v1/batch"): "IngestFunction",
    ("POST", "/segment/v1/track"): "IngestFunction",
    ("POST", "/segment/v1/page"): "IngestFunction",
    ("POST", "/segment/v1/identify"): "IngestFunction",
    ("GET", "/v1/tracker.js"): "TrackerFunction",
    ("GET", "/"): "TrackerFunction",
    ("GET", "/dashboard/{file}"): "TrackerFunction",
    ("POST", "/v1/funnels"): "IngestFunction",
    ("GET", "/v1/funnels"): "IngestFunction",
    ("GET", "/v1/funnels/{funnel_id}"): "IngestFunction",
    ("DELETE", "/v1/funnels/{funnel_id}"): "IngestFunction",
    ("POST", "/v1/funnels/{funnel_id}/backfill"): "IngestFunction",
    ("GET", "/v1/reports/funnels/{funnel_id}"): "ReportsFunction",
    # call tracking: Twilio
    ("PUT", "/v1/integrations/twilio"): "IngestFunction",
    ("POST", "/v1/integrations/twilio/{account_id}/calls"): "IngestFunction",
    # call tracking (issue 17 part A)
    ("POST", "/v1/numbers"): "IngestFunction",
    ("GET", "/v1/numbers"): "IngestFunction",
    ("DELETE", "/v1/numbers/{number}"): "IngestFunction",
    ("POST", "/v1/numbers/assign"): "IngestFunction",
    ("GET", "/v1/reports/numbers"): "ReportsFunction",
    ("POST", "/v1/conversions/{conversion_id}/adjustments"): "IngestFunction",
    ("GET", "/v1/exports/google-ads"): "ReportsFunction",
}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def _event(name: str) -> dict:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def _stream_record() -> dict:
    return _event(STREAM_EVENT_FILE)["Records"][0]


# --- loading --------------------------------------------------------------------------


def test_short_intrinsic_tags_load_as_their_long_form(template: dict) -> None:
    evaluate = template["Resources"]["EvaluateFunction"]["Properties"]
    assert evaluate["Events"]["TableStream"]["Properties"]["Stream"] == {
        "Fn::GetAtt": ["Table", "StreamArn"]
    }
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "GoalkeeperLayer"}]
    api_url = template["Outputs"]["ApiUrl"]["Value"]
    assert api_url == {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/prod"}


def test_unquoted_dates_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("AWSTemplateFormatVersion: 2010-09-09\nResources: {}\n", encoding="utf-8")
    assert load_template(path)["AWSTemplateFormatVersion"] == "2010-09-09"


# --- the table ------------------------------------------------------------------------


def test_table_kwargs_have_both_indexes_and_the_new_image_stream(template: dict) -> None:
    kwargs = table_create_kwargs(template, "goalkeeper-test")

    assert kwargs["TableName"] == "goalkeeper-test"
    assert kwargs["BillingMode"] == "PAY_PER_REQUEST"
    assert kwargs["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in kwargs["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"gsi1", "gsi2", "gsi3", "gsi4"}
    for name in ("gsi1", "gsi2", "gsi3", "gsi4"):
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": f"{name}pk", "KeyType": "HASH"},
            {"AttributeName": f"{name}sk", "KeyType": "RANGE"},
        ]
    for name in ("gsi1", "gsi2", "gsi3"):
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    # The touch index keeps only what crediting reads.
    assert indexes["gsi4"]["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["touch"],
    }
    assert kwargs["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert ttl_attribute(template) == "expires_at"


# --- routes ---------------------------------------------------------------------------


def test_every_design_route_goes_to_its_function(template: dict) -> None:
    routes = {(route.method, route.path): route for route in api_routes(template)}

    assert {key: route.function for key, route in routes.items()} == EXPECTED_ROUTES
    for route in routes.values():
        assert route.handler == "app.handler"
        assert route.code_uri.is_absolute()
        assert route.code_uri.parent == REPO_ROOT / "functions"
        assert (route.code_uri / "requirements.txt").is_file()


# --- the API deployed for browser traffic ----------------------------------------------

AWS_ACCOUNT_RATE_QUOTA, AWS_ACCOUNT_BURST_QUOTA = 10_000, 5_000  # API Gateway's defaults


def test_api_throttling_is_a_parameter_sized_for_one_event_per_request(template: dict) -> None:
    (settings,) = template["Resources"]["Api"]["Properties"]["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    rate = template["Parameters"]["ApiThrottleRateLimit"]["Default"]
    burst = template["Parameters"]["ApiThrottleBurstLimit"]["Default"]
    # Browsers send one event per request: the rate is the events per second sites may
    # send, the figure the scale notes plan for (and no more than AWS grants unasked).
    assert rate == AWS_ACCOUNT_RATE_QUOTA
    assert 0 < burst <= AWS_ACCOUNT_BURST_QUOTA
    for document in ("docs/cost-and-scale.md", "README.md"):
        text = (REPO_ROOT / document).read_text(encoding="utf-8")
        assert f"`ApiThrottleRateLimit` ({rate:,} requests/s" in text, document


def test_api_gateways_own_errors_carry_cors_headers(template: dict) -> None:
    """A throttled (429), unknown-path (403) or failed (5xx) answer from API Gateway
    itself must be readable by the page that sent the request."""
    responses = template["Resources"]["Api"]["Properties"]["GatewayResponses"]
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses.values():
        headers = response["ResponseParameters"]["Headers"]
        assert headers == {"Access-Control-Allow-Origin": "'*'"}
    cors = template["Resources"]["Api"]["Properties"]["Cors"]
    assert cors["AllowOrigin"] == "'*'"


def test_route_match_extracts_path_parameters() -> None:
    route = ApiRoute("GET", "/v1/goals/{goal_id}/health", "ReportsFunction", Path("/x"), "h")

    assert route.match("get", "/v1/goals/g-1/health") == {"goal_id": "g-1"}
    assert route.match("GET", "/v1/goals/g-1") is None
    assert route.match("GET", "/v1/goals/a/b/health") is None
    assert route.match("POST", "/v1/goals/g-1/health") is None


# --- the stream subscription ----------------------------------------------------------


def test_stream_subscription_settings(template: dict) -> None:
    subscription = stream_subscription(template, EVALUATION_FUNCTION)

    assert subscription.function == "EvaluateFunction"
    assert subscription.code_uri == REPO_ROOT / "functions" / "evaluate"
    assert subscription.handler == "app.handler"
    assert subscription.batch_size == 100
    assert subscription.report_batch_item_failures is True
    assert subscription.maximum_retry_attempts == 5
    assert subscription.bisect_on_error is True
    assert subscription.starting_position == "TRIM_HORIZON"
    assert subscription.filter_patterns == [
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["event"]}}}}
    ]


def test_filter_accepts_an_inserted_event_and_rejects_the_rest(template: dict) -> None:
    (pattern,) = stream_subscription(template, EVALUATION_FUNCTION).filter_patterns
    inserted = _stream_record()
    modified = {**inserted, "eventName": "MODIFY"}
    conversion = json.loads(json.dumps(inserted))
    conversion["dynamodb"]["NewImage"]["kind"] = {"S": "conversion"}
    removed = {
        **inserted,
        "eventName": "REMOVE",
        "dynamodb": {"Keys": inserted["dynamodb"]["Keys"]},
    }

    assert matches_filter(pattern, inserted)
    assert not matches_filter(pattern, modified)
    assert not matches_filter(pattern, conversion)
    assert not matches_filter(pattern, removed)


def test_every_stream_subscription_is_read_locally(template: dict) -> None:
    assert [s.function for s in stream_subscriptions(template)] == [
        "EvaluateFunction",
        "BackfillFunction",
        "NotifyFunction",
    ]


def test_only_counted_conversions_reach_the_notify_function(template: dict) -> None:
    (counted,) = stream_subscription(template, "NotifyFunction").filter_patterns

    def record(name: str, kind: str, status: str) -> dict:
        image = {"pk": {"S": "A#acc#C#c1"}, "kind": {"S": kind}, "status": {"S": status}}
        return {"eventName": name, "dynamodb": {"NewImage": image}}

    assert matches_filter(counted, record("INSERT", "conversion", "counted"))
    assert not matches_filter(counted, record("INSERT", "conversion", "void"))
    assert not matches_filter(counted, record("MODIFY", "conversion", "counted"))
    assert not matches_filter(counted, record("INSERT", "delivery", "pending"))
    assert not matches_filter(counted, _stream_record())


def test_backfill_jobs_with_work_left_reach_the_backfill_function_only(template: dict) -> None:
    (jobs,) = stream_subscription(template, "BackfillFunction").filter_patterns
    (events,) = stream_subscription(template, EVALUATION_FUNCTION).filter_patterns

    def record(name: str, kind: str, status: str) -> dict:
        image = {"pk": {"S": "A#acc#JOB#job_1"}, "kind": {"S": kind}, "status": {"S": status}}
        return {"eventName": name, "dynamodb": {"NewImage": image}}

    for name in ("INSERT", "MODIFY"):
        for status in ("queued", "running"):
            assert matches_filter(jobs, record(name, "job", status))
            assert not matches_filter(events, record(name, "job", status))
        for status in ("done", "failed"):
            assert not matches_filter(jobs, record(name, "job", status))
    assert not matches_filter(jobs, record("INSERT", "job_lock", "running"))
    assert not matches_filter(jobs, _stream_record())
    removed = {"eventName": "REMOVE", "dynamodb": {"Keys": {"pk": {"S": "A#acc#JOB#job_1"}}}}
    assert not matches_filter(jobs, removed)


def test_filter_semantics() -> None:
    assert passes_filters([], {"anything": 1})
    assert passes_filters([{"a": [1]}, {"a": [2]}], {"a": 2})
    assert not passes_filters([{"a": [1]}], {"a": 2})
    # An array in the record matches when any element does.
    assert matches_filter({"a": ["x"]}, {"a": ["y", "x"]})
    # True is not 1 in an event filter, whatever Python thinks.
    assert not matches_filter({"a": [1]}, {"a": True})
    assert matches_filter({"a": [None]}, {"a": None})
    assert not matches_filter({"a": [None]}, {})
    with pytest.raises(NotImplementedError):
        matches_filter({"a": [{"prefix": "x"}]}, {"a": "xy"})


# --- sample events --------------------------------------------------------------------


@pytest.mark.parametrize("name", API_EVENT_FILES)
def test_api_sample_events_have_the_rest_proxy_shape(name: str) -> None:
    event = _event(name)

    for key in (
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    ):
        assert key in event, key
    assert (event["httpMethod"], event["resource"]) in EXPECTED_ROUTES
    assert event["path"].startswith("/v1/")
    assert event["headers"]["Content-Type"] == "application/json"
    assert event["headers"]["x-api-key"]
    assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}
    context = event["requestContext"]
    assert context["stage"] == "prod"
    assert context["httpMethod"] == event["httpMethod"]
    assert context["resourcePath"] == event["resource"]
    assert context["path"] == "/prod" + event["path"]
    assert {"sourceIp", "userAgent"} <= set(context["identity"])
    if event["httpMethod"] == "GET":
        assert event["body"] is None
    else:
        assert isinstance(json.loads(event["body"]), dict)


def test_call_sample_event_body() -> None:
    body = json.loads(_event("call_qualified.json")["body"])

    assert body["type"] == "call"
    assert body["event_id"] == "call-0001"
    assert body["connected"] is True
    assert body["bridged_seconds"] == 75


def test_report_sample_event_query() -> None:
    event = _event("report_goals.json")

    assert event["queryStringParameters"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert event["multiValueQueryStringParameters"] == {
        "from": ["2026-11-01"],
        "to": ["2026-11-30"],
    }


def test_stream_sample_event_is_the_stored_call() -> None:
    event = _event(STREAM_EVENT_FILE)
    (record,) = event["Records"]
    image = record["dynamodb"]["NewImage"]

    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["dynamodb"]["StreamViewType"] == "NEW_IMAGE"
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int | float)
    assert record["dynamodb"]["Keys"] == {"pk": image["pk"], "sk": image["sk"]}
    assert image["kind"] == {"S": "event"}
    # The stored body is the API request body, in DynamoDB's attribute-value form,
    # except the caller number: only its keyed hash and masked form are stored.
    body = image["body"]["M"]
    request = json.loads(_event("call_qualified.json")["body"])
    assert set(body) == set(request) - {"caller_number"} | {"caller_hash", "caller_masked"}
    assert body["bridged_seconds"] == {"N": "75"}
    assert body["connected"] == {"BOOL": True}
    assert body["attribution"]["M"]["keyword"] == {"S": "plumber london"}


def test_notifications_are_deployed_with_their_queues_bus_and_outputs(template: dict) -> None:
    resources, outputs = template["Resources"], template["Outputs"]
    assert resources["EventBus"]["Type"] == "AWS::Events::EventBus"
    redrive = resources["DeliveryQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["NotificationsDeadLetterQueue", "Arn"]}
    notify = resources["NotifyFunction"]["Properties"]
    variables = notify["Environment"]["Variables"]
    assert variables["GOALKEEPER_DELIVERY_QUEUE_URL"] == {"Ref": "DeliveryQueue"}
    assert variables["GOALKEEPER_EVENT_BUS_NAME"] == {"Ref": "EventBus"}
    grants = {
        statement["Sid"]: statement
        for policy in notify["Policies"]
        for statement in policy["Statement"]
    }
    assert grants["EventBus"]["Action"] == "events:PutEvents"
    assert grants["EventBus"]["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert grants["DeliveryQueue"]["Resource"] == {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}
    assert {"EventBusName", "EventBusArn", "DeliveryQueueUrl"} <= outputs.keys()
    assert "NotificationsDeadLetterQueueUrl" in outputs
