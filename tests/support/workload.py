"""A seeded, realistic mix of events and goals, for tests and benchmarks.

Page views (some reaching a thank-you page), calls of every length, sales in
three currencies (some sent twice under one order reference), leads and
webinar sign-ups, from a pool of visitors over a span of days, with paid and
organic attribution; a few events are re-sent with the same id.

IndexWorkload is the mix whose goals make evaluation query an index for every event:
page views of visits several pages long (a page_views goal counts a visit's earlier
page views) and tag changes of contacts (a tags goal replays a contact's tag history).
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

GOALS: tuple[dict[str, Any], ...] = (
    {
        "name": "Thank-you page",
        "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"},
        "dedup": {"keys": ["visitor", "goal"], "window_days": 30},
        "value": {"type": "fixed", "amount": "5", "currency": "GBP"},
    },
    {
        "name": "Big sale",
        "rule": {"kind": "transaction", "min_value": "100"},
        "value": {"type": "percent_of_transaction", "percent": "10"},
    },
    {
        "name": "First lead",
        "converting": False,
        "rule": {"kind": "lead"},
        "dedup": {"keys": ["visitor"], "window_days": 7},
    },
    {
        "name": "Webinar",
        "rule": {
            "kind": "custom_trigger",
            "name": "webinar",
            "conditions": [{"field": "seats", "op": "gte", "value": 1}],
        },
        "once_per_visit": True,
    },
)
SOURCES = (
    {"source": "google", "medium": "cpc", "campaign": "winter", "keyword": "boiler repair"},
    {"source": "google", "medium": "cpc", "campaign": "winter", "keyword": "emergency plumber"},
    {"source": "bing", "medium": "cpc", "campaign": "brand", "keyword": "acme plumbing"},
    {"source": "facebook", "medium": "social", "campaign": "winter"},
    None,
)
CURRENCIES = ("USD", "EUR", "GBP")
PAGES = ("/", "/services", "/prices", "/contact", "/about", "/blog", "/reviews", "/areas")


@dataclass
class Workload:
    seed: int
    events: int
    days: int = 30
    visitors: int = 300
    end: datetime = field(default_factory=lambda: datetime(2026, 11, 20, tzinfo=UTC))
    resend_share: float = 0.03

    def generate(self) -> list[dict[str, Any]]:
        rng = random.Random(self.seed)
        start = self.end - timedelta(days=self.days)
        sent: list[dict[str, Any]] = []
        for number in range(self.events):
            if sent and rng.random() < self.resend_share:
                sent.append(dict(rng.choice(sent)))  # a retry: same id, same body
                continue
            visitor = f"v{rng.randrange(self.visitors)}"
            at = start + timedelta(seconds=rng.randrange(self.days * 86400))
            event = {
                "event_id": f"w{self.seed}-{number}",
                "visitor_id": visitor,
                "visit_id": f"{visitor}-{at.date().isoformat()}",
                "occurred_at": at.isoformat(),
            }
            attribution = rng.choice(SOURCES)
            if attribution:
                event["attribution"] = attribution
            event |= self._body(rng, number)
            sent.append(event)
        return sent

    @staticmethod
    def _body(rng: random.Random, number: int) -> dict[str, Any]:
        # The mix makes about a fifth of events counted conversions, as on a busy site:
        # most events are page views, and every call reaches one of the call goals.
        roll = rng.random()
        if roll < 0.78:
            page = "/thank-you" if rng.random() < 0.06 else rng.choice(PAGES)
            return {"type": "page_view", "url": f"https://acme.example{page}"}
        if roll < 0.86:
            connected = rng.random() < 0.8
            return {
                "type": "call",
                "call_id": f"call-{number}",
                "caller_number": f"+4420{rng.randrange(10**7, 10**8)}",
                "connected": connected,
                "bridged_seconds": rng.randrange(1, 300) if connected else 0,
            }
        if roll < 0.93:
            reference = f"order-{rng.randrange(number // 2 + 1)}"
            value = f"{rng.randrange(1000, 50000) / 100:.2f}"
            currency = rng.choice(CURRENCIES)
            return {
                "type": "transaction",
                "transaction": {"value": value, "currency": currency, "reference": reference},
            }
        if roll < 0.97:
            return {"type": "lead", "lead_id": f"lead-{number}"}
        return {"type": "custom_trigger", "name": "webinar", "fields": {"seats": rng.randrange(3)}}


# Goals whose evaluation reads the scope index (gsi2): a visit's page views, a
# contact's tag history.
INDEX_GOALS: tuple[dict[str, Any], ...] = (
    {"name": "Three-page visit", "rule": {"kind": "page_views", "min_pages": 3}},
    {"name": "VIP gold", "rule": {"kind": "tags", "tags": ["vip", "gold"], "match": "all"}},
    {
        "name": "Any trial",
        "rule": {"kind": "tags", "tags": ["trial", "vip"], "match": "any"},
        "dedup": {"keys": ["visitor"], "window_days": 30},
    },
)
TAGS = ("vip", "gold", "trial", "newsletter")


@dataclass
class IndexWorkload(Workload):
    """Page views (7 in 10) and tag changes (3 in 10). Fewer visitors over fewer days
    than the default mix, so a visit holds several page views and a contact several
    changes: each page view's evaluation counts its visit's earlier ones, each tag
    change's replays its contact's history."""

    days: int = 5
    visitors: int = 60

    @staticmethod
    def _body(rng: random.Random, number: int) -> dict[str, Any]:
        if rng.random() < 0.7:
            return {"type": "page_view", "url": f"https://acme.example{rng.choice(PAGES)}"}
        added = rng.sample(TAGS, rng.randrange(1, 3))
        removed = [tag for tag in rng.sample(TAGS, 1) if tag not in added]
        return {
            "type": "tag",
            "contact_id": f"ct-{rng.randrange(40)}",
            "added": added,
            "removed": removed,
        }
