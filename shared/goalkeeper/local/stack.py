"""The whole local stack: embedded DynamoDB (in a child process), the API and the stream poller."""

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from goalkeeper.local.dynamodb import EmbeddedDynamoDBProcess
from goalkeeper.local.functions import FunctionPool
from goalkeeper.local.gateway import ApiServer, local_api
from goalkeeper.local.poller import StreamPoller, dead_letter_file
from goalkeeper.local.template import (
    load_template,
    stream_subscriptions,
    table_create_kwargs,
    ttl_attribute,
)
from goalkeeper.local.wire_streams import WireStreamsClient

REGION = "us-east-1"


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    table_name: str = "goalkeeper"
    admin_key: str = field(default_factory=lambda: os.environ.get("GOALKEEPER_ADMIN_KEY") or "")
    state_dir: Path = field(default_factory=lambda: Path(".goalkeeper"))
    quiet_lambdas: bool = True


def local_environment(config: StackConfig, dynamodb_url: str) -> dict[str, str]:
    """What a deployed function finds in its environment, pointed at the embedded endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": dynamodb_url,
        # Stream ARNs carry an account id; botocore would route by it, past the endpoint.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "GOALKEEPER_TABLE_NAME": config.table_name,
        "GOALKEEPER_ADMIN_KEY_SHA256": hashlib.sha256(config.admin_key.encode()).hexdigest(),
        "POWERTOOLS_SERVICE_NAME": "goalkeeper",
        "POWERTOOLS_METRICS_NAMESPACE": "Goalkeeper",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true" if config.quiet_lambdas else "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING" if config.quiet_lambdas else "INFO",
    }


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        if not config.admin_key:
            config.admin_key = f"gk_admin_{secrets.token_urlsafe(24)}"
        self.config = config
        self.dynamodb = EmbeddedDynamoDBProcess(config.host, log_requests=not config.quiet_lambdas)
        os.environ.update(local_environment(config, self.dynamodb.endpoint_url))
        from goalkeeper.settings import get_settings

        get_settings.cache_clear()
        template = load_template()
        self._create_table(template)
        functions = FunctionPool()
        self.api = ApiServer(local_api(template, functions), config.host, config.port).start()
        streams = WireStreamsClient(
            self.dynamodb.endpoint_url, REGION, boto3.Session().get_credentials()
        )
        stream_arn = boto3.client("dynamodb", region_name=REGION).describe_table(
            TableName=config.table_name
        )["Table"]["LatestStreamArn"]
        # One poller per stream subscription of the template, each with its own filter.
        self.pollers = [
            StreamPoller(
                streams,
                stream_arn,
                subscription,
                functions.get(subscription.function, subscription.code_uri, subscription.handler),
                config.state_dir / dead_letter_file(subscription.function),
                region=REGION,
            ).start()
            for subscription in stream_subscriptions(template)
        ]

    def _create_table(self, template: dict) -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(**table_create_kwargs(template, self.config.table_name))
        client.update_time_to_live(
            TableName=self.config.table_name,
            TimeToLiveSpecification={"AttributeName": ttl_attribute(template), "Enabled": True},
        )

    @property
    def api_url(self) -> str:
        return self.api.url

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.api.stop()
        self.dynamodb.stop()
