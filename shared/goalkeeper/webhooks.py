"""Goal-reached notifications, the pure part: plain data in, plain data out.

- secrets (`whsec_` + base64 of 24 random bytes) and Standard Webhooks signatures
  (`v1,` + base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}");
- the `conversion.counted` event built from a conversion item;
- the retry schedule (growing, jittered delays, given up on after a window);
- what a receiver's answer means (delivered, retry, disable the webhook);
- the SSRF rule for a webhook's URL (see `check_url`).

Nothing here reads the table or the network (a resolver is passed in).
"""

import base64
import hashlib
import hmac
import json
import math
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
EVENT_TYPE = "conversion.counted"
BUS_SOURCE = "goalkeeper"
BUS_DETAIL_TYPE = "Conversion Counted"
MAX_URL_LENGTH = 2048
# Loopback names the local stack accepts over http (never as deployed).
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}

Resolver = Callable[[str, int], Iterable[str]]


# --- secrets and signatures -------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def webhook_message_id(delivery_id: str) -> str:
    """The `webhook-id` header: the delivery's id, itself derived from (conversion,
    webhook), so every attempt and every redelivery of it carries the same one."""
    return f"msg_{delivery_id}"


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "Goalkeeper-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


# --- the event --------------------------------------------------------------------------


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {key: _text(item) for key, item in value.items()}
    return value


def conversion_data(item: Mapping[str, Any]) -> dict[str, Any]:
    """The `data` of a `conversion.counted` event, from a conversion item (its stream
    image, or the item read back). Money is a decimal string, as everywhere."""
    amount = item.get("value_amount")
    return {
        "conversion_id": item["conversion_id"],
        "goal_id": item["goal_id"],
        "goal_name": item.get("goal_name"),
        "event_id": item.get("event_id"),
        "visitor_id": item.get("visitor_id"),
        "visit_id": item.get("visit_id"),
        "contact_id": item.get("contact_id"),
        "occurred_at": item.get("occurred_at"),
        "value": None if amount is None else str(amount),
        "currency": item.get("value_currency"),
        "attribution": _text(item.get("attribution")),
        "attribution_source": item.get("attribution_source"),
    }


def event_body(data: Mapping[str, Any]) -> str:
    """The request body: the same bytes on every attempt (the signature covers them)."""
    event = {"type": EVENT_TYPE, "timestamp": data.get("occurred_at"), "data": dict(data)}
    return json.dumps(event, separators=(",", ":"), sort_keys=True)


def matches(goal_ids: list[str] | None, goal_id: str) -> bool:
    """A webhook without a goal filter hears every goal."""
    return not goal_ids or goal_id in goal_ids


# --- retries ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """The n-th failed attempt waits about base * 2**(n-1) seconds, at most `max_delay`,
    jittered down by up to half (so receivers that fail together are not retried
    together); whole seconds, as SQS delays are. Once the next attempt would fall
    `window` seconds after the first (24 hours as deployed), the delivery is dead."""

    base: float = 30.0
    max_delay: float = 4 * 3600.0
    window: float = 24 * 3600.0

    def delay(self, failures: int, jitter: float) -> int:
        """Seconds before the next attempt after `failures` failed ones; `jitter` in [0, 1)."""
        ceiling = min(self.max_delay, self.base * 2 ** max(0, failures - 1))
        return max(1, math.ceil(ceiling * (1 - jitter / 2)))

    def next_attempt(
        self, failures: int, started_at: float, now: float, jitter: float
    ) -> float | None:
        """When to try again (epoch seconds), or None: give up (dead)."""
        due = now + self.delay(failures, jitter)
        return None if due > started_at + self.window else due


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status, or None (no answer: refused, timed out)."""

    status: int | None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """410 Gone: the receiver asks us to stop; the webhook is disabled."""
        return self.status == 410


# --- the URL rule (SSRF) ----------------------------------------------------------------


class UrlRefused(ValueError):
    """Why a webhook URL is refused (the reason shown to the user)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:  # gaierror is an OSError
        raise UrlRefused(f"the host {host!r} does not resolve") from error
    return sorted({str(info[4][0]) for info in infos})


def _is_loopback_name(host: str) -> bool:
    return host.lower() in LOCAL_HOSTS


def check_url(url: str, allow_local_http: bool, resolve: Resolver = system_resolver) -> str:
    """The URL, if deliveries may go there; otherwise UrlRefused saying why.

    The rule (SSRF): an absolute https URL without user info; its host, a name or a
    literal address, resolves only to public (globally routable) addresses: every
    address is checked, and none may be private (10/8, 172.16/12, 192.168/16, fc00::/7),
    loopback, link-local (169.254/16 with the cloud metadata endpoint, fe80::/10),
    shared (100.64/10), multicast, reserved or unspecified. The same check runs again
    before each attempt, so a name that later resolves inward is refused then too.
    With `allow_local_http` (the local stack only), http is accepted too, and so is a
    loopback host (localhost, 127.0.0.1, ::1), so a receiver on your machine works.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"is not a valid URL: {error}") from error
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host:
        raise UrlRefused("must be an absolute https URL")
    if parts.username or parts.password:
        raise UrlRefused("must not carry a user name or password")
    local = allow_local_http and _is_loopback_name(host)
    if parts.scheme == "http" and not local:
        why = "http is accepted for localhost only" if allow_local_http else "must use https"
        raise UrlRefused(why)
    port = port or (443 if parts.scheme == "https" else 80)
    import ipaddress  # here: the API's cold start need not pay for it

    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
    if not addresses:
        raise UrlRefused(f"the host {host!r} does not resolve")
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if local and address.is_loopback:
            continue
        if not address.is_global or address.is_multicast:
            raise UrlRefused(
                f"the host {host!r} resolves to {address}, a private, loopback or "
                "link-local address; webhooks are delivered to public addresses only"
            )
    return url
