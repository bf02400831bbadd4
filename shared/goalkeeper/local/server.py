"""A WSGI app served on a background thread: what the local endpoints share."""

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server


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
