"""The embedded DynamoDB endpoint over HTTP: serialized, all-or-nothing transactions,
and the local shortcuts returning what moto itself returns."""

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from goalkeeper_cli.local_stack.dynamodb import EmbeddedDynamoDB
from goalkeeper_cli.local_stack.moto_speedups import simple_clauses
from goalkeeper_cli.local_stack.server import free_port

TABLE = "race"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = EmbeddedDynamoDB().start()
    yield server.endpoint_url
    server.stop()


def _client(endpoint: str, service: str = "dynamodb") -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture(scope="module")
def table(endpoint: str) -> str:
    _create_table(_client(endpoint))
    return TABLE


def _create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )


def _claim(round_number: int, writer: int) -> list[dict]:
    claim = {"pk": {"S": f"claim-{round_number}"}, "sk": {"S": "CLAIM"}, "by": {"N": str(writer)}}
    record = {"pk": {"S": f"record-{round_number}-{writer}"}, "sk": {"S": "R"}}
    return [
        {"Put": {"TableName": TABLE, "Item": record}},
        {
            "Put": {
                "TableName": TABLE,
                "Item": claim,
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ]


def _race(
    client: Any, writer: int, round_number: int, barrier: threading.Barrier, winners: list[int]
) -> None:
    barrier.wait()
    try:
        client.transact_write_items(TransactItems=_claim(round_number, writer))
        winners.append(writer)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "TransactionCanceledException"


def test_racing_transactions_have_exactly_one_winner_every_round(endpoint: str, table: str) -> None:
    clients = [_client(endpoint) for _ in range(32)]
    for round_number in range(20):
        winners: list[int] = []
        barrier = threading.Barrier(len(clients))
        threads = [
            threading.Thread(target=_race, args=(clients[n], n, round_number, barrier, winners))
            for n in range(len(clients))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1
        records = _client(endpoint).query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"record-{round_number}-{winners[0]}"}},
        )
        assert records["Count"] == 1  # the winner's other write is there, no loser's is
        claim = _client(endpoint).get_item(
            TableName=table, Key={"pk": {"S": f"claim-{round_number}"}, "sk": {"S": "CLAIM"}}
        )["Item"]
        assert claim["by"] == {"N": str(winners[0])}


def test_a_cancelled_transaction_writes_nothing_and_streams_nothing(
    endpoint: str, table: str
) -> None:
    client = _client(endpoint)
    streams = _client(endpoint, "dynamodbstreams")
    arn = client.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    client.put_item(TableName=table, Item={"pk": {"S": "taken"}, "sk": {"S": "X"}, "v": {"N": "1"}})
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]
    with pytest.raises(ClientError) as cancelled:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "fresh"}, "sk": {"S": "X"}}}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "taken"}, "sk": {"S": "X"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )
    reasons = cancelled.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["v"] == {"N": "1"}
    assert "Item" not in client.get_item(
        TableName=table, Key={"pk": {"S": "fresh"}, "sk": {"S": "X"}}
    )
    assert streams.get_records(ShardIterator=iterator)["Records"] == []


@pytest.fixture(scope="module")
def stock_moto() -> Iterator[str]:
    """moto's own server, in a child of its own: none of the local stack's shortcuts."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if child.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        child.wait(timeout=10)


def _numbers_as_decimals(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"N"}:
            return Decimal(value["N"])
        return {name: _numbers_as_decimals(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_numbers_as_decimals(item) for item in value]
    return value


# (UpdateExpression, names, values), each applied three times to one item.
SHORTCUT_UPDATES = [
    (
        "ADD #n :one, amount :cents SET label = :label",
        {"#n": "count"},
        {":one": {"N": "1"}, ":cents": {"N": "0.10"}, ":label": {"S": "x"}},
    ),
    (
        "SET tags = :tags, doc = :doc ADD big :big, small :small, #minus :minus",
        {"#minus": "minus"},  # a reserved word: DynamoDB and moto refuse it unquoted
        {
            ":tags": {"SS": ["b", "a"]},
            ":doc": {"M": {"l": {"L": [{"N": "1.50"}, {"NULL": True}]}, "b": {"BOOL": False}}},
            ":big": {"N": "12345678901234567890.5"},
            ":small": {"N": "0.000001"},
            ":minus": {"N": "-2.25"},
        },
    ),
]


@pytest.mark.parametrize("number", range(len(SHORTCUT_UPDATES)))
def test_simple_updates_match_what_moto_computes(
    endpoint: str, table: str, stock_moto: str, number: int
) -> None:
    expression, names, values = SHORTCUT_UPDATES[number]
    assert simple_clauses(expression) is not None  # the embedded endpoint's shortcut applies
    items = []
    for url in (endpoint, stock_moto):
        client = _client(url)
        if url == stock_moto and number == 0:
            _create_table(client)
        key = {"pk": {"S": f"counter-{number}"}, "sk": {"S": "C"}}
        for _ in range(3):
            client.update_item(
                TableName=TABLE,
                Key=key,
                UpdateExpression=expression,
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values,
            )
        items.append(client.get_item(TableName=TABLE, Key=key)["Item"])
    shortcut, moto = items
    # The same attributes and values; number text as DynamoDB stores it (0.3, where
    # moto keeps the 0.30 it computed).
    assert _numbers_as_decimals(shortcut) == _numbers_as_decimals(moto)
    if number == 0:
        assert shortcut["count"] == {"N": "3"}
        assert shortcut["amount"] == {"N": "0.3"}
        assert shortcut["label"] == {"S": "x"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("SET a = :a, #b = :b", [("SET", "a", ":a"), ("SET", "#b", ":b")]),
        ("ADD c :one SET d = :d", [("ADD", "c", ":one"), ("SET", "d", ":d")]),
        ("SET a = a + :one", None),
        ("SET a = if_not_exists(a, :zero)", None),
        ("REMOVE a", None),
        ("SET m.x = :v", None),
    ],
)
def test_only_plain_set_and_add_take_the_shortcut(expression: str, expected: list | None) -> None:
    assert simple_clauses(expression) == expected
