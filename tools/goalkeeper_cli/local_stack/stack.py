"""The whole local stack: a DynamoDB engine (in a child process), the API and the stream poller."""

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from goalkeeper_cli.local_stack.engines import (
    MOTO,
    ChildEndpoint,
    DynamoDBEndpoint,
    external_engine,
    start_engine,
)
from goalkeeper_cli.local_stack.functions import FunctionPool
from goalkeeper_cli.local_stack.gateway import ApiServer, local_api
from goalkeeper_cli.local_stack.poller import StreamPoller, dead_letter_file
from goalkeeper_cli.local_stack.queues import create_messaging, queue_pollers
from goalkeeper_cli.local_stack.template import (
    load_template,
    stream_subscriptions,
    table_create_kwargs,
    table_differences,
    ttl_attribute,
)
from goalkeeper_cli.local_stack.wire_streams import WireStreamsClient

# A table created on AWS is usable within seconds; polled each second, for at most 5 minutes.
TABLE_WAITER = {"Delay": 1, "MaxAttempts": 300}


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    table_name: str = "goalkeeper"
    admin_key: str = field(default_factory=lambda: os.environ.get("GOALKEEPER_ADMIN_KEY") or "")
    state_dir: Path = field(default_factory=lambda: Path(".goalkeeper"))
    quiet_lambdas: bool = True
    engine: str = MOTO
    data_dir: Path | None = None  # DynamoDB Local's data survives a restart there
    dynamodb_endpoint: str | None = None  # start no engine: use the table at this endpoint


class TableMismatch(RuntimeError):
    """The endpoint holds a table by that name that template.yaml would not create."""


def local_environment(config: StackConfig, endpoint: DynamoDBEndpoint) -> dict[str, str]:
    """What a deployed function finds in its environment, pointed at the stack's endpoint."""
    return endpoint.environment() | {
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
        self.engine = (
            external_engine(config.dynamodb_endpoint)
            if config.dynamodb_endpoint
            else start_engine(
                config.engine, config.host, config.data_dir, log_requests=not config.quiet_lambdas
            )
        )
        endpoint = self.engine.endpoint
        os.environ.update(local_environment(config, endpoint))
        # SQS and EventBridge (webhook deliveries, the event bus) are moto's: the embedded
        # engine's own endpoint (it serves every API moto knows), or, beside any other
        # engine, a moto endpoint of their own. Sharing the engine's endpoint costs no
        # start-up (~1 s per `serve`); a separate one measured no faster on two cores.
        self.messaging_process: ChildEndpoint | None = None
        messaging_url = endpoint.url
        if config.dynamodb_endpoint or config.engine != MOTO:
            self.messaging_process = ChildEndpoint(
                "goalkeeper_cli.local_stack.dynamodb", "--host", config.host
            )
            messaging_url = self.messaging_process.url
        self.messaging_url = messaging_url
        os.environ.update(
            {
                "AWS_ENDPOINT_URL_SQS": messaging_url,
                "AWS_ENDPOINT_URL_EVENTBRIDGE": messaging_url,
                # Webhook receivers on this machine (http://localhost:...) are accepted.
                "GOALKEEPER_WEBHOOKS_ALLOW_LOCAL_HTTP": "true",
            }
        )
        from goalkeeper.settings import get_settings

        get_settings.cache_clear()
        template = load_template()
        self.table_created = False
        stream_arn = self._prepare_table(template)
        sqs = boto3.client("sqs", endpoint_url=messaging_url, region_name=endpoint.region)
        events = boto3.client("events", endpoint_url=messaging_url, region_name=endpoint.region)
        self.messaging = create_messaging(template, sqs, events)
        os.environ.update(self.messaging.environment(template))
        get_settings.cache_clear()
        functions = FunctionPool()
        self.api = ApiServer(local_api(template, functions), config.host, config.port).start()
        # Twilio's webhook URLs (goalkeeper.twilio) are this server's, unless set (a
        # tunnel's, for a real Twilio number to reach this machine).
        os.environ.setdefault("GOALKEEPER_PUBLIC_API_URL", self.api.url)
        get_settings.cache_clear()
        streams = WireStreamsClient(
            endpoint.streams_url, endpoint.region, boto3.Session().get_credentials()
        )
        # One poller per stream subscription of the template, each with its own filter.
        self.pollers = [
            StreamPoller(
                streams,
                stream_arn,
                subscription,
                functions.get(subscription.function, subscription.code_uri, subscription.handler),
                config.state_dir / dead_letter_file(subscription.function),
                region=endpoint.region,
            ).start()
            for subscription in stream_subscriptions(template)
        ]
        self.queue_pollers = [
            poller.start()
            for poller in queue_pollers(template, self.messaging, sqs, functions, endpoint.region)
        ]

    def _prepare_table(self, template: dict) -> str:
        """Create the table from the template unless the endpoint holds it already (kept
        data, or a table of yours); its stream's ARN."""
        client = boto3.client("dynamodb")
        name = self.config.table_name
        try:
            table = client.describe_table(TableName=name)["Table"]
        except client.exceptions.ResourceNotFoundException:
            client.create_table(**table_create_kwargs(template, name))
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig=TABLE_WAITER)
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl_attribute(template), "Enabled": True},
            )
            table = client.describe_table(TableName=name)["Table"]
            self.table_created = True
        differences = table_differences(template, table)
        if differences:
            raise TableMismatch(
                f"table {name} is not the table of template.yaml: " + "; ".join(differences)
            )
        return table["LatestStreamArn"]

    @property
    def api_url(self) -> str:
        return self.api.url

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        for queue_poller in self.queue_pollers:
            queue_poller.stop()
        self.api.stop()
        self.engine.stop()
        if self.messaging_process is not None:
            self.messaging_process.stop()
