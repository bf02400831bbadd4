"""template.yaml's table and stream filter as moto takes them: the table it creates
from the template, and the stream records it writes, as the local poller sees them."""

import boto3
from moto import mock_aws

from goalkeeper_cli.local_stack.template import (
    EVALUATION_FUNCTION,
    load_template,
    passes_filters,
    stream_subscription,
    table_create_kwargs,
    ttl_attribute,
)
from support.stack import load_event_file


def test_template_table_is_accepted_by_moto(monkeypatch) -> None:
    template = load_template()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(**table_create_kwargs(template, "goalkeeper-test"))
        client.update_time_to_live(
            TableName="goalkeeper-test",
            TimeToLiveSpecification={"AttributeName": ttl_attribute(template), "Enabled": True},
        )

        table = client.describe_table(TableName="goalkeeper-test")["Table"]
        ttl = client.describe_time_to_live(TableName="goalkeeper-test")

    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["LatestStreamArn"]
    assert {index["IndexName"] for index in table["GlobalSecondaryIndexes"]} == {
        "gsi1",
        "gsi2",
        "gsi3",
        "gsi4",
    }
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_the_filter_admits_moto_stream_records_of_events_only(monkeypatch) -> None:
    template = load_template()
    # The filter in the template has to match records as the local poller sees
    # them, not just the hand-written sample.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # botocore otherwise sends stream calls to an account-based host moto does not route.
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    subscription = stream_subscription(template, EVALUATION_FUNCTION)
    event_item = load_event_file("stream_call_inserted.json")["Records"][0]["dynamodb"]["NewImage"]
    conversion_item = {
        "pk": {"S": "A#acc_demo#C#c1"},
        "sk": {"S": "CONVERSION"},
        "kind": {"S": "conversion"},
    }
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        stream_arn = client.create_table(**table_create_kwargs(template, "gk"))["TableDescription"][
            "LatestStreamArn"
        ]
        client.put_item(TableName="gk", Item=event_item)
        client.put_item(TableName="gk", Item=conversion_item)

        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = streams.get_records(ShardIterator=iterator)["Records"]

    delivered = [r for r in records if passes_filters(subscription.filter_patterns, r)]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == [
        "A#acc_demo#E#call-0001",
        "A#acc_demo#C#c1",
    ]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in delivered] == ["A#acc_demo#E#call-0001"]
