"""`goalkeeper serve`'s engines and endpoints as a user meets them: DynamoDB Local's
data kept in --data-dir across a restart, a table at any --dynamodb-endpoint created
once from the template and then used, a table the template would not create refused,
saying how it differs, and the stream poller reading either engine."""

import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from test_serve_e2e import CALL, qualified_calls, wait_for_qualified

from goalkeeper.attributes import from_attributes, to_attributes
from goalkeeper_cli import commands
from goalkeeper_cli.local_stack import dynamodb_local
from goalkeeper_cli.local_stack.engines import DYNAMODB_LOCAL, MOTO, DynamoDBEndpoint, start_engine
from goalkeeper_cli.local_stack.poller import StreamPoller
from goalkeeper_cli.local_stack.template import (
    load_template,
    stream_subscriptions,
    table_create_kwargs,
)
from goalkeeper_cli.local_stack.wire_streams import WireStreamsClient
from support.served import ServedStack

pytestmark = pytest.mark.long

ADMIN = "engines-admin-key"


def _table_line(served: ServedStack) -> str:
    return next(line for line in served.banner if line.strip().startswith("DynamoDB:"))


def _count_a_call(served: ServedStack) -> tuple[str, str]:
    """A new account whose qualified call has been counted: its (write, read) keys."""
    status, account = served.request("POST", "/v1/accounts", ADMIN, {})
    assert status == 201, account
    write, read = account["keys"]["write"], account["keys"]["read"]
    assert served.request("POST", "/v1/events", write, CALL)[0] == 202
    assert wait_for_qualified(served, read, 1) == 1
    return write, read


def _still_counted_once(served: ServedStack, write: str, read: str) -> None:
    """The keys still work, the call is a duplicate and it counts once, though the
    restarted stream poller delivers the stream again from its oldest record."""
    status, body = served.request("POST", "/v1/events", write, CALL)
    assert (status, body) == (202, {"accepted": [], "duplicates": [CALL["event_id"]]})
    time.sleep(1.0)  # give a wrongly re-evaluated record time to show up
    assert qualified_calls(served, read) == 1


@pytest.mark.server
@pytest.mark.usefixtures("dynamodb_local_available")
def test_dynamodb_local_keeps_the_data_in_the_data_dir_across_a_restart(tmp_path: Path) -> None:
    options = ["--engine", DYNAMODB_LOCAL, "--data-dir", str(tmp_path / "data")]
    first = ServedStack(ADMIN, options)
    try:
        assert f"data in {tmp_path / 'data'}" in _table_line(first)
        write, read = _count_a_call(first)
    finally:
        assert first.stop()[0] == 0
    second = ServedStack(ADMIN, options)
    try:
        assert "created" not in _table_line(second)
        _still_counted_once(second, write, read)
    finally:
        assert second.stop()[0] == 0


@pytest.mark.server
def test_a_table_at_any_endpoint_is_created_once_from_the_template_then_used() -> None:
    engine = start_engine(MOTO, "127.0.0.1")
    try:
        options = ["--dynamodb-endpoint", engine.endpoint.url]
        first = ServedStack(ADMIN, options)
        try:
            assert "created from template.yaml" in _table_line(first)
            write, read = _count_a_call(first)
        finally:
            first.stop()
        second = ServedStack(ADMIN, options)
        try:
            assert "created" not in _table_line(second)
            _still_counted_once(second, write, read)
        finally:
            second.stop()
    finally:
        engine.stop()


@pytest.mark.server
def test_a_table_the_template_would_not_create_is_refused_saying_how_it_differs() -> None:
    engine = start_engine(MOTO, "127.0.0.1")
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=engine.endpoint.url,
            region_name=engine.endpoint.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        client.create_table(
            TableName="goalkeeper",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        with pytest.raises(RuntimeError, match="exited early") as refused:
            ServedStack(ADMIN, ["--dynamodb-endpoint", engine.endpoint.url])
        message = str(refused.value)
        assert "goalkeeper serve: table goalkeeper is not the table of template.yaml" in message
        assert "lacks the index gsi1" in message
        assert "its stream is off" in message
        assert "Traceback" not in message
    finally:
        engine.stop()


def test_an_endpoint_on_aws_is_called_with_its_region_and_streams_host() -> None:
    on_aws = DynamoDBEndpoint.at("https://dynamodb.eu-west-2.amazonaws.com")
    assert on_aws.streams_url == "https://streams.dynamodb.eu-west-2.amazonaws.com"
    assert (on_aws.region, on_aws.on_aws) == ("eu-west-2", True)
    assert "AWS_ACCESS_KEY_ID" not in on_aws.environment()  # your credentials, not ours
    emulator = DynamoDBEndpoint.at("http://localhost:8000/")
    assert (emulator.url, emulator.streams_url) == ("http://localhost:8000",) * 2
    assert emulator.environment()["AWS_ACCESS_KEY_ID"] == "local"


def test_data_dir_without_dynamodb_local_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        commands.main(["serve", "--data-dir", "kept"])
    assert refused.value.code == 2
    assert "--data-dir needs --engine dynamodb-local" in capsys.readouterr().err


def test_without_java_the_reason_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    assert "Java is not installed" in (dynamodb_local.java_problem() or "")


class _Capture:
    """Stands in for the evaluation function: keeps the batches it is handed."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        self.records += event["Records"]
        return {"batchItemFailures": []}


@pytest.mark.server
def test_the_poller_hands_evaluation_lambdas_record_from_either_engine(
    serve_engine: str, tmp_path: Path
) -> None:
    """The stream poller reads moto and DynamoDB Local alike (both speak DynamoDB
    Streams), filters as the template says and delivers what Lambda would."""
    template = load_template()
    engine = start_engine(serve_engine, "127.0.0.1")
    try:
        endpoint = engine.endpoint
        credentials = Credentials("local", "local")
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint.url,
            region_name=endpoint.region,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
        )
        table = client.create_table(**table_create_kwargs(template, "records"))
        stream_arn = table["TableDescription"]["LatestStreamArn"]
        event = {"pk": "A#1", "sk": "EVT#e1", "kind": "event", "amount": Decimal("1.50")}
        for item in (event, event, {"pk": "A#1", "sk": "CONV#c1", "kind": "conversion"}):
            client.put_item(TableName="records", Item=to_attributes(item))
        evaluation = _Capture()
        poller = StreamPoller(
            WireStreamsClient(endpoint.streams_url, endpoint.region, credentials),
            stream_arn,
            stream_subscriptions(template)[0],
            evaluation,  # type: ignore[arg-type]
            tmp_path / "dead-letters.jsonl",
            region=endpoint.region,
        )
        while poller.poll_once():
            pass
    finally:
        engine.stop()
    (record,) = evaluation.records  # the event's INSERT only: no rewrite, no conversion
    created = record["dynamodb"].pop("ApproximateCreationDateTime")
    assert isinstance(created, int) and abs(created - time.time()) < 120
    assert {key: record[key] for key in ("eventName", "eventSource", "awsRegion")} == {
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
    }
    assert record["eventSourceARN"] == stream_arn
    assert from_attributes(record["dynamodb"]["Keys"]) == {"pk": "A#1", "sk": "EVT#e1"}
    assert from_attributes(record["dynamodb"]["NewImage"]) == event
