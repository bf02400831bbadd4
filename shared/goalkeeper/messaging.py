"""The notifications' doors to the world beyond the table: the delivery queue (SQS), the
event bus (EventBridge) and receivers (HTTP). Each is a small protocol with one AWS (or
stdlib) implementation; tests and the local stack use the same implementations against
moto, and the services take any object of the protocol."""

import json
from functools import cached_property
from typing import Any, Protocol
from urllib.parse import urlsplit

from goalkeeper.errors import StoreUnavailable
from goalkeeper.webhooks import BUS_DETAIL_TYPE, BUS_SOURCE, Answer

# SQS delays a message by at most 15 minutes; a longer wait is several hops.
MAX_QUEUE_DELAY = 900
# Bytes of a receiver's answer read (and kept for the log): none of it matters but the status.
ANSWER_BYTES = 1024


class Outbox(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int) -> None: ...


class EventBus(Protocol):
    def put(self, detail: dict[str, Any], resources: list[str]) -> str: ...


class Sender(Protocol):
    def post(self, url: str, body: str, headers: dict[str, str], timeout: float) -> Answer: ...


def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service, config=Config(retries={"total_max_attempts": 4, "mode": "standard"})
    )


class SqsOutbox:
    """Deliveries waiting for their next attempt: one message each, delayed (≤ 15 min)."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    @cached_property
    def _sqs(self) -> Any:
        return _client("sqs")

    def send(self, message: dict[str, Any], delay_seconds: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._sqs.send_message(
                QueueUrl=self.queue_url,
                MessageBody=json.dumps(message, sort_keys=True),
                DelaySeconds=max(0, min(MAX_QUEUE_DELAY, delay_seconds)),
            )
        except (BotoCoreError, ClientError) as error:
            raise StoreUnavailable("the delivery queue could not be reached") from error


class EventBridgeBus:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    @cached_property
    def _events(self) -> Any:
        return _client("events")

    def put(self, detail: dict[str, Any], resources: list[str]) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._events.put_events(
                Entries=[
                    {
                        "Source": BUS_SOURCE,
                        "DetailType": BUS_DETAIL_TYPE,
                        "Detail": json.dumps(detail, sort_keys=True),
                        "Resources": resources,
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (BotoCoreError, ClientError) as error:
            raise StoreUnavailable("the event bus could not be reached") from error
        (entry,) = response["Entries"]
        if response.get("FailedEntryCount") or "EventId" not in entry:
            raise StoreUnavailable(f"the event bus refused the event: {entry.get('ErrorCode')}")
        return str(entry["EventId"])


class HttpSender:
    """One POST, no redirects followed (a redirect is an answer, not a destination)."""

    def post(self, url: str, body: str, headers: dict[str, str], timeout: float) -> Answer:
        # Imported here: ssl costs ~5 ms, which the API functions' cold starts need not pay.
        import http.client
        import ssl

        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.hostname or "",
                parts.port,
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = http.client.HTTPConnection(
                parts.hostname or "", parts.port, timeout=timeout
            )
        try:
            connection.request("POST", path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            response.read(ANSWER_BYTES)
            return Answer(response.status)
        except TimeoutError:
            return Answer(None, f"no answer within {timeout:g} s")
        except (OSError, http.client.HTTPException) as error:
            return Answer(None, f"{type(error).__name__}: {error}"[:200])
        finally:
            connection.close()
