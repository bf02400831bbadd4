"""The embedded DynamoDB endpoint of the local stack: moto's server, one request at a time.

moto applies a TransactWriteItems write by write and rolls back by swapping in a
deep copy of the table, with no lock: two racing transactions can both "win"
and a rollback can erase a concurrent writer's item (../shared/LOCAL-STACK.md).
Real DynamoDB is serializable. Serving one request at a time restores that
property, so tests against this endpoint prove our conditions, not moto's races;
and with requests serialized, transactions check every condition before writing
(goalkeeper.local.atomic_transactions) instead of copying whole tables.
"""

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

from goalkeeper.local import atomic_transactions, moto_speedups
from goalkeeper.local.server import BackgroundServer


class FairLock:
    """A lock granted in arrival order. threading.Lock is not fair: under load a
    request could wait behind an endless stream of later ones (seen: ingestion
    requests starved past a 30 s client timeout while evaluation kept the lock busy)."""

    def __init__(self) -> None:
        self._turns = threading.Condition()
        self._next_ticket = 0
        self._now_serving = 0

    def __enter__(self) -> None:
        with self._turns:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._turns.wait_for(lambda: self._now_serving == ticket)

    def __exit__(self, *_: object) -> None:
        with self._turns:
            self._now_serving += 1
            self._turns.notify_all()


class SerializedApp:
    """A WSGI wrapper that runs one request to completion before the next starts."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = FairLock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            # Drain the body under the lock: moto may build it lazily from shared state.
            return [b"".join(self._app(environ, start_response))]


class EmbeddedDynamoDB(BackgroundServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        atomic_transactions.install()
        moto_speedups.install()
        app = SerializedApp(DomainDispatcherApplication(create_backend_app))
        super().__init__(app, host, port, "embedded-dynamodb", request_handler=MotoRequestHandler)

    @property
    def endpoint_url(self) -> str:
        return self.url
