"""The embedded DynamoDB endpoint over HTTP: serialized, all-or-nothing transactions,
and the local shortcuts returning what moto itself returns."""

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from goalkeeper.local.dynamodb import EmbeddedDynamoDB
from goalkeeper.local.moto_speedups import simple_clauses

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
    _client(endpoint).create_table(
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
    return TABLE


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


def test_simple_updates_match_what_moto_computes(endpoint: str, table: str) -> None:
    client = _client(endpoint)
    key = {"pk": {"S": "counter"}, "sk": {"S": "C"}}
    for _ in range(3):
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD #n :one, amount :cents SET label = :label",
            ExpressionAttributeNames={"#n": "count"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":cents": {"N": "0.10"},
                ":label": {"S": "x"},
            },
        )
    item = client.get_item(TableName=table, Key=key)["Item"]
    assert item["count"] == {"N": "3"}
    assert item["amount"] == {"N": "0.3"}
    assert item["label"] == {"S": "x"}


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
