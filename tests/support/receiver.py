"""A webhook receiver for the tests and the bench: an HTTP server on localhost that
verifies every request with the `standardwebhooks` package (a verifier nobody here
wrote), de-duplicates on `webhook-id` as receivers are told to, and can be down (503),
gone (410) or slow for a while."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    message_id: str
    event: dict[str, Any]
    at: float


@dataclass
class Receiver:
    secret: str = ""
    answer: int = 200  # what it answers while up; 503 "down", 410 "gone"
    requests: int = 0
    rejected: int = 0  # requests whose signature did not verify
    received: list[Received] = field(default_factory=list)  # first sight of each webhook-id
    duplicates: int = 0  # requests of a webhook-id already processed
    _seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver.handle(body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://localhost:{self._server.server_address[1]}/hooks"

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.requests += 1
            if self.answer != 200:
                return self.answer
            try:
                event = Webhook(self.secret).verify(body, headers)
            except Exception:
                self.rejected += 1
                return 400
            message_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
            if message_id in self._seen:
                self.duplicates += 1
                return 200
            self._seen.add(message_id)
            self.received.append(Received(message_id, event, time.monotonic()))
            self.on_event(event)
            self._arrived.notify_all()
            return 200

    def on_event(self, event: dict[str, Any]) -> None:
        """What the receiving automation does with a verified, first-seen event."""

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.received)} of {count} webhooks arrived")
                self._arrived.wait(left)
            return list(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Automation(Receiver):
    """An email automation (Ontraport's, Campaign Refinery's): contacts on queued
    sequences; a goal reached halts the contact's remaining emails and starts the
    sequence the goal leads to."""

    def __init__(self, next_sequence: dict[str, str], **kwargs: Any) -> None:
        self.queued: dict[str, list[str]] = {}
        self.sequence: dict[str, str] = {}
        self.halted: dict[str, list[str]] = {}
        self.next_sequence = next_sequence  # goal name -> sequence it starts
        super().__init__(**kwargs)

    def enrol(self, contact_id: str, sequence: str, emails: list[str]) -> None:
        self.sequence[contact_id] = sequence
        self.queued[contact_id] = list(emails)

    def send_next(self, contact_id: str) -> str:
        return self.queued[contact_id].pop(0)

    def on_event(self, event: dict[str, Any]) -> None:
        data = event["data"]
        contact = data["contact_id"]
        started = self.next_sequence.get(data["goal_name"])
        if contact is None or started is None:
            return
        self.halted[contact] = self.queued.get(contact, [])
        self.queued[contact] = [f"{started}-1", f"{started}-2"]
        self.sequence[contact] = started
