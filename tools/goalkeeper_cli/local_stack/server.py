"""What the local endpoints share: a WSGI app served on a background thread, and a
wrapper that serves its requests one at a time, in arrival order."""

import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

# A thread whose socket is ready waits for the running thread to give up the GIL,
# by default up to 5 ms: per request, on every hop. Local processes that serve
# HTTP (`goalkeeper serve`, the embedded DynamoDB) hand over sooner.
SWITCH_INTERVAL = 0.0005


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class BackgroundServer:
    def __init__(self, app: Any, host: str, port: int, name: str, **options: Any) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, **options)
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "BackgroundServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class FairLock:
    """A lock granted in arrival order. threading.Lock is not fair: under load a
    request could wait behind an endless stream of later ones (seen: ingestion
    requests starved past a 30 s client timeout while evaluation kept the lock busy).
    The holder hands the lock straight to the oldest waiter, waking that one only
    (waking every waiter to compare tickets cost a tenth of the endpoint's time)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._held = False

    def __enter__(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the holder: the lock is ours from then on

    def __exit__(self, *_: object) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()
            else:
                self._held = False


class SerializedApp:
    """A WSGI wrapper that runs one request to completion before the next starts."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = FairLock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            # Drain the body under the lock: moto may build it lazily from shared state.
            return [b"".join(self._app(environ, start_response))]
