"""The stream poller's DynamoDB Streams client for the local stack: the three calls
it makes, sent and read as the JSON on the wire.

Stream records on the wire are already what Lambda hands the function
(attribute values in DynamoDB JSON, the creation time in epoch seconds).
boto3's parser would turn every attribute into Python objects and the time into
a datetime, only for the poller to turn them back: under load that parse was a
sixth of the local stack's CPU. Requests are signed as boto3 signs them.
"""

import json
from typing import Any

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET_PREFIX = "DynamoDBStreams_20120810"


class StreamsError(RuntimeError):
    pass


class WireStreamsClient:
    def __init__(self, endpoint_url: str, region: str, credentials: Credentials) -> None:
        self._url = endpoint_url.rstrip("/") + "/"
        self._signer = SigV4Auth(credentials, "dynamodb", region)
        self._pool = urllib3.PoolManager(maxsize=4)

    def _call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        request = AWSRequest(
            method="POST",
            url=self._url,
            data=json.dumps(body),
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{TARGET_PREFIX}.{operation}",
            },
        )
        self._signer.add_auth(request)
        response = self._pool.request(
            "POST", self._url, body=request.data, headers=dict(request.headers), retries=False
        )
        answer = json.loads(response.data or b"{}")
        if response.status != 200:
            raise StreamsError(f"{operation} failed ({response.status}): {answer}")
        return answer

    def describe_stream(self, *, StreamArn: str) -> dict[str, Any]:
        return self._call("DescribeStream", {"StreamArn": StreamArn})

    def get_shard_iterator(
        self,
        *,
        StreamArn: str,
        ShardId: str,
        ShardIteratorType: str,
    ) -> dict[str, Any]:
        return self._call(
            "GetShardIterator",
            {"StreamArn": StreamArn, "ShardId": ShardId, "ShardIteratorType": ShardIteratorType},
        )

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        return self._call("GetRecords", {"ShardIterator": ShardIterator, "Limit": Limit})
