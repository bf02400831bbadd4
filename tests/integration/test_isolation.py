"""Tenant isolation, route by route (an invariant every change keeps): a key of
account B can neither read nor change anything of account A, and a key of the wrong role is
refused. The routes come from template.yaml, so a new route without a case here
fails the suite until someone decides how it must behave.

Report routes still being built answer 404 "no such route"; their cases then
hold to what is true either way: not 2xx, not 5xx, nothing of A's in the body.
Once such a route exists it gets the full assertions automatically.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from goalkeeper_cli.local_stack.template import ApiRoute, api_routes, load_template
from support.receiver import Receiver
from support.stack import ADMIN_KEY, InProcessStack
from support.twilio_calls import call_sid, completed_call, connect_twilio, signed_callback

ROUTES = api_routes(load_template())
TAG = "7f3e"  # makes A's free-text values unmistakable in a response body


@dataclass
class Tenant:
    account_id: str
    write: str
    read: str
    site: str
    goal_ids: list[str] = field(default_factory=list)
    key_ids: dict[str, str] = field(default_factory=dict)
    visitor_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    webhook_ids: list[str] = field(default_factory=list)
    delivery_ids: list[str] = field(default_factory=list)
    funnel_ids: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)  # static, pool, the site's own
    conversion_ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def key(self, role: str) -> str | None:
        return {
            "write": self.write,
            "read": self.read,
            "site": self.site,
            "admin": ADMIN_KEY,
            NO_KEY: None,
        }[role]

    def markers(self) -> list[str]:
        """Everything of this tenant another tenant's answer must never contain."""
        return [
            self.account_id,
            self.write,
            self.read,
            self.site,
            *self.goal_ids,
            *self.key_ids.values(),
            *self.visitor_ids,
            *self.event_ids,
            *self.job_ids,
            *self.webhook_ids,
            *self.delivery_ids,
            *self.funnel_ids,
            *self.numbers,
            *self.conversion_ids,
            *self.texts,
        ]


A_HOOK = f"http://localhost:9/hooks-{TAG}"
A_TWILIO_TOKEN = f"{TAG}0123456789abcdef0123456789ab"
B_TWILIO_TOKEN = "b" * 32
GOAL_SPEC = {
    "name": f"Thank-you page {TAG}",
    "rule": {"kind": "url", "match": "prefix", "pattern": f"https://a.example/thanks-{TAG}"},
}


def _tenant(stack: InProcessStack, name: str, with_data: bool) -> Tenant:
    created = stack.new_account(name=name)
    keys = created["keys"]
    tenant = Tenant(created["account_id"], keys["write"], keys["read"], keys["site"])
    for manager in ("write", "read"):  # a write key manages the site key too
        status, listed = stack.api.request("GET", "/v1/keys", tenant.key(manager))
        assert status == 200, listed
        tenant.key_ids |= {key["role"]: key["key_id"] for key in listed["keys"]}
    if not with_data:
        tenant.goal_ids = [
            g["goal_id"] for g in stack.api.request("GET", "/v1/goals", tenant.read)[1]["goals"]
        ]
        return tenant
    status, goal = stack.api.request("POST", "/v1/goals", tenant.write, GOAL_SPEC)
    assert status == 201, goal
    calls = [g["goal_id"] for g in stack.api.request("GET", "/v1/goals", tenant.read)[1]["goals"]]
    funnel_spec = {"name": f"Funnel {TAG}", "steps": [calls[0], goal["goal_id"]]}
    status, funnel = stack.api.request("POST", "/v1/funnels", tenant.write, funnel_spec)
    assert status == 201, funnel
    tenant.funnel_ids = [funnel["funnel_id"]]
    status, account = stack.api.request("PUT", "/v1/account", tenant.write, SETTINGS)
    assert status == 200, account
    tenant.visitor_ids = [f"visitor-{TAG}-1", f"visitor-{TAG}-2"]
    tenant.texts = [name, GOAL_SPEC["name"], f"campaign-{TAG}", f"keyword {TAG}", f"Funnel {TAG}"]
    tenant.texts.append(f"gclid-{TAG}")
    attribution = {"source": "google", "medium": "cpc", "campaign": f"campaign-{TAG}"}
    attribution["keyword"] = f"keyword {TAG}"
    attribution["click_id"] = f"gclid-{TAG}"
    events = [
        {
            "event_id": f"pv-{TAG}-1",
            "type": "page_view",
            "visitor_id": tenant.visitor_ids[0],
            "url": f"https://a.example/thanks-{TAG}",
            "attribution": attribution,
        },
        {
            "event_id": f"call-{TAG}-1",
            "type": "call",
            "call_id": f"CA-{TAG}",
            "visitor_id": tenant.visitor_ids[1],
            "caller_number": "+442071234567",
            "connected": True,
            "bridged_seconds": 90,
            "attribution": attribution,
        },
    ]
    status, answer = stack.api.request("POST", "/v1/events", tenant.write, {"events": events})
    assert status == 202, answer
    tenant.event_ids = answer["accepted"]
    stack.evaluate_pending()
    status, trace = stack.api.request(
        "GET", f"/v1/visitors/{tenant.visitor_ids[0]}/trace", tenant.read
    )
    assert status == 200, trace
    tenant.conversion_ids = [
        i["conversion_id"] for i in trace["items"] if i["kind"] == "conversion"
    ]
    # A refund of A's conversion: B must not see it in any export or trace.
    refund = {"adjustment_id": f"refund-{TAG}", "type": "retract", "reason": f"refund {TAG}"}
    path = f"/v1/conversions/{tenant.conversion_ids[0]}/adjustments"
    assert stack.api.request("POST", path, tenant.write, refund)[0] == 201
    tenant.texts.append(f"refund {TAG}")
    # A webhook, and its deliveries of A's conversions (created, not yet attempted).
    status, hook = stack.api.request("POST", "/v1/webhooks", tenant.write, {"url": A_HOOK})
    assert status == 201, hook
    tenant.webhook_ids = [hook["webhook_id"]]
    tenant.texts.append(hook["secret"])
    stack.notify_pending()
    status, log = stack.api.request(
        "GET", f"/v1/webhooks/{hook['webhook_id']}/deliveries", tenant.write
    )
    tenant.delivery_ids = [d["delivery_id"] for d in log["deliveries"]]
    assert tenant.delivery_ids, log
    status, library = stack.api.request("GET", "/v1/goals", tenant.read)
    tenant.goal_ids = [g["goal_id"] for g in library["goals"]]
    status, job = stack.api.request(
        "POST", f"/v1/goals/{goal['goal_id']}/backfill", tenant.write, BACKFILL
    )
    assert status == 202, job
    tenant.job_ids = [job["job_id"]]
    # Twilio connected, and a call it reported (the token is A's secret: never shown).
    webhook_url = connect_twilio(stack.api.request, tenant.write, A_TWILIO_TOKEN)
    tenant.texts.append(A_TWILIO_TOKEN)
    params = completed_call(call_sid(TAG), 90, datetime.now(UTC))
    body, headers = signed_callback(webhook_url, params, A_TWILIO_TOKEN)
    path = webhook_url.removeprefix("http://localhost")
    assert stack.api.response("POST", path, raw=body, headers=headers).status_code == 200
    stack.evaluate_pending()
    _track_calls(stack, tenant)
    return tenant


A_NUMBERS = ["+442079460001", "+442079460002", "+442079460000"]  # static, pool, site's own


def _track_calls(stack: InProcessStack, tenant: Tenant) -> None:
    """A's tracking numbers, a visit holding its pool number and a call matched by it."""
    tenant.numbers = A_NUMBERS
    static, pooled, own = A_NUMBERS
    campaign = {"source": "billboard", "campaign": f"M25-{TAG}"}
    for body in (
        {"number": static, "kind": "static", "attribution": campaign},
        {"number": pooled, "kind": "pool", "pool": f"Website {TAG}", "replaces": own},
    ):
        status, answer = stack.api.request("POST", "/v1/numbers", tenant.write, body)
        assert status == 201, answer
    visit = {"visitor_id": tenant.visitor_ids[0], "visit_id": f"visit-{TAG}", "replaces": own}
    status, held = stack.api.request("POST", "/v1/numbers/assign", tenant.site, visit)
    assert (status, held["number"]) == (200, pooled), held
    call = {"type": "call", "call_id": f"CA-{TAG}-2", "tracking_number": pooled, "connected": True}
    status, answer = stack.api.request("POST", "/v1/events", tenant.write, call)
    assert status == 202, answer
    stack.evaluate_pending()


@pytest.fixture
def tenants(stack: InProcessStack) -> tuple[Tenant, Tenant]:
    a = _tenant(stack, f"Acme {TAG}", with_data=True)
    b = _tenant(stack, "Bravo", with_data=False)
    assert any(i.get("kind") == "conversion" for i in _items_of(stack, a))  # A has reports
    return a, b


def _items_of(stack: InProcessStack, tenant: Tenant) -> list[dict[str, Any]]:
    own = f"A#{tenant.account_id}"
    return [
        item
        for item in stack.items()
        if item["pk"] == own
        or item["pk"].startswith(own + "#")
        or (item["pk"].startswith("KEY#") and item.get("account_id") == tenant.account_id)
    ]


def _snapshot(stack: InProcessStack, tenant: Tenant) -> list[str]:
    return sorted(
        json.dumps(item, sort_keys=True, default=str) for item in _items_of(stack, tenant)
    )


# --- what each route is, and how B tries it against A ---------------------------------


@dataclass(frozen=True)
class Attempt:
    role: str  # B's key used
    path: str
    body: Any = None
    query: dict[str, str] | None = None
    own_data: bool = False  # acts on B's own account (2xx expected), else 403/404


Cases = Callable[[Tenant, Tenant], list[Attempt]]
NEW_GOAL = {"name": "B goal", "rule": {"kind": "lead"}}
BACKFILL = {"from": (datetime.now(UTC).date() - timedelta(days=1)).isoformat()}
REPORT_QUERY = {"from": "2026-01-01", "to": "2026-12-31"}
SETTINGS = {"attribution": {"model": "first_touch", "lookback_days": 7}}


def _segment_message(a: Tenant) -> dict[str, Any]:
    # As _b_event: A's message id and anonymous id, sent by B, are B's.
    return {
        "messageId": a.event_ids[0],
        "anonymousId": a.visitor_ids[0],
        "properties": {"url": f"https://a.example/thanks-{TAG}"},
    }


SEGMENT_BODIES: dict[str, Callable[[Tenant], dict[str, Any]]] = {
    "/segment/v1/batch": lambda a: {"batch": [_segment_message(a) | {"type": "page"}]},
    "/segment/v1/page": _segment_message,
    "/segment/v1/track": lambda a: _segment_message(a) | {"event": "Signed Up"},
    "/segment/v1/identify": lambda a: _segment_message(a) | {"userId": "contact-1"},
}


def _segment_cases(path: str) -> Cases:
    return lambda a, b: [
        Attempt("write", path, SEGMENT_BODIES[path](a), own_data=True),
        Attempt("read", path, SEGMENT_BODIES[path](a)),
    ]


# A public route: it takes no key, and reads none (any key, or none, gets the same answer).
NO_KEY = "no key"
# A signed route: it reads no key either; only a signature made with the account's stored
# secret gets in (any key, or none, gets the same 403).
SIGNED = "signed"
TWILIO_CALLBACK = "/v1/integrations/twilio/{account_id}/calls"
ROLES: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/accounts"): {"admin"},
    ("POST", "/v1/events"): {"write", "site"},
    ("GET", "/v1/goals"): {"read", "write"},
    ("POST", "/v1/goals"): {"write"},
    ("POST", "/v1/goals/dry-run"): {"read", "write"},
    ("GET", "/v1/goals/{goal_id}"): {"read", "write"},
    ("PUT", "/v1/goals/{goal_id}"): {"write"},
    ("DELETE", "/v1/goals/{goal_id}"): {"write"},
    ("GET", "/v1/goals/{goal_id}/health"): {"read"},
    ("GET", "/v1/account"): {"read", "write"},
    ("PUT", "/v1/account"): {"write"},
    ("POST", "/v1/keys"): {"read", "write"},
    ("GET", "/v1/keys"): {"read", "write"},
    ("DELETE", "/v1/keys/{key_id}"): {"read", "write"},
    ("GET", "/v1/reports/goals"): {"read"},
    ("GET", "/v1/reports/goals/{goal_id}/timeseries"): {"read"},
    ("GET", "/v1/reports/attribution"): {"read"},
    ("GET", "/v1/reports/top-keywords"): {"read"},
    ("GET", "/v1/visitors/{visitor_id}/trace"): {"read"},
    ("POST", "/v1/goals/{goal_id}/backfill"): {"write"},
    ("GET", "/v1/jobs/{job_id}"): {"read", "write"},
    ("GET", "/v1/accounts/{account_id}/keys"): {"admin"},
    ("POST", "/v1/accounts/{account_id}/keys"): {"admin"},
    ("DELETE", "/v1/accounts/{account_id}/keys/{key_id}"): {"admin"},
    **{("POST", path): {"write"} for path in SEGMENT_BODIES},
    ("GET", "/v1/tracker.js"): {NO_KEY},
    ("GET", "/"): {NO_KEY},
    ("GET", "/dashboard/{file}"): {NO_KEY},
    ("POST", "/v1/webhooks"): {"write"},
    ("GET", "/v1/webhooks"): {"write"},
    ("DELETE", "/v1/webhooks/{webhook_id}"): {"write"},
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): {"write"},
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): {"write"},
    ("POST", "/v1/funnels"): {"write"},
    ("GET", "/v1/funnels"): {"read", "write"},
    ("GET", "/v1/funnels/{funnel_id}"): {"read", "write"},
    ("DELETE", "/v1/funnels/{funnel_id}"): {"write"},
    ("POST", "/v1/funnels/{funnel_id}/backfill"): {"write"},
    ("GET", "/v1/reports/funnels/{funnel_id}"): {"read"},
    # call tracking: Twilio
    ("PUT", "/v1/integrations/twilio"): {"write"},
    ("POST", TWILIO_CALLBACK): {SIGNED},
    ("POST", "/v1/numbers"): {"write"},
    ("GET", "/v1/numbers"): {"read", "write"},
    ("DELETE", "/v1/numbers/{number}"): {"write"},
    ("POST", "/v1/numbers/assign"): {"write", "site"},
    ("GET", "/v1/reports/numbers"): {"read"},
    ("POST", "/v1/conversions/{conversion_id}/adjustments"): {"write"},
    ("GET", "/v1/exports/google-ads"): {"read"},
}
ACCOUNT_KEYS = ("write", "read", "site")


def _b_event(a: Tenant, which: int = 0) -> dict[str, Any]:
    # B reuses A's event id and visitor id: it lands in B, as a new event of B's.
    return {
        "event_id": a.event_ids[which],
        "type": "page_view",
        "visitor_id": a.visitor_ids[0],
        "url": f"https://a.example/thanks-{TAG}",
    }


B_NUMBER = {"number": "+442079460009", "kind": "static", "attribution": {"source": "radio"}}


def _b_visit(a: Tenant) -> dict[str, Any]:
    return {"visitor_id": a.visitor_ids[0], "visit_id": f"visit-{TAG}", "replaces": a.numbers[2]}


CASES: dict[tuple[str, str], Cases] = {
    **{("POST", path): _segment_cases(path) for path in SEGMENT_BODIES},
    ("POST", "/v1/accounts"): lambda a, b: [
        Attempt("write", "/v1/accounts", {"name": "x"}),
        Attempt("read", "/v1/accounts", {"name": "x"}),
    ],
    ("POST", "/v1/events"): lambda a, b: [
        Attempt("write", "/v1/events", _b_event(a), own_data=True),
        Attempt("site", "/v1/events", _b_event(a, 1), own_data=True),
        Attempt("read", "/v1/events", _b_event(a)),
    ],
    ("GET", "/v1/goals"): lambda a, b: [
        Attempt("read", "/v1/goals", own_data=True),
        Attempt("write", "/v1/goals", own_data=True),
    ],
    ("POST", "/v1/goals"): lambda a, b: [
        Attempt("write", "/v1/goals", NEW_GOAL, own_data=True),
        Attempt("read", "/v1/goals", NEW_GOAL),
    ],
    # B tries A's goal over the range of A's events: B's own events only (it has none).
    ("POST", "/v1/goals/dry-run"): lambda a, b: [
        Attempt(role, "/v1/goals/dry-run", {"goal": GOAL_SPEC}, own_data=True)
        for role in ("write", "read")
    ],
    ("GET", "/v1/goals/{goal_id}"): lambda a, b: [
        Attempt(role, f"/v1/goals/{goal_id}")
        for goal_id in a.goal_ids
        for role in ("read", "write")
    ],
    ("PUT", "/v1/goals/{goal_id}"): lambda a, b: [
        Attempt(role, f"/v1/goals/{goal_id}", GOAL_SPEC | {"name": "taken over"})
        for goal_id in a.goal_ids
        for role in ("write", "read")
    ],
    ("DELETE", "/v1/goals/{goal_id}"): lambda a, b: [
        Attempt(role, f"/v1/goals/{goal_id}")
        for goal_id in a.goal_ids
        for role in ("write", "read")
    ],
    ("GET", "/v1/goals/{goal_id}/health"): lambda a, b: [
        Attempt(role, f"/v1/goals/{goal_id}/health")
        for goal_id in a.goal_ids
        for role in ("read", "write")
    ],
    # The account is the key's: B reads and changes its own settings, never A's.
    ("GET", "/v1/account"): lambda a, b: [
        Attempt("read", "/v1/account", own_data=True),
        Attempt("write", "/v1/account", own_data=True),
    ],
    ("PUT", "/v1/account"): lambda a, b: [
        Attempt("write", "/v1/account", SETTINGS, own_data=True),
        Attempt("read", "/v1/account", SETTINGS),
    ],
    ("POST", "/v1/keys"): lambda a, b: [
        Attempt("write", "/v1/keys", {}, own_data=True),
        Attempt("read", "/v1/keys", {"role": "read"}, own_data=True),
    ],
    ("GET", "/v1/keys"): lambda a, b: [
        Attempt("write", "/v1/keys", own_data=True),
        Attempt("read", "/v1/keys", own_data=True),
    ],
    ("DELETE", "/v1/keys/{key_id}"): lambda a, b: [
        Attempt(role, f"/v1/keys/{key_id}")
        for key_id in a.key_ids.values()
        for role in ("write", "read")
    ],
    ("GET", "/v1/reports/goals"): lambda a, b: [
        Attempt("read", "/v1/reports/goals", query=REPORT_QUERY, own_data=True),
        Attempt("write", "/v1/reports/goals", query=REPORT_QUERY),
    ],
    ("GET", "/v1/reports/goals/{goal_id}/timeseries"): lambda a, b: [
        Attempt(role, f"/v1/reports/goals/{goal_id}/timeseries", query=REPORT_QUERY)
        for goal_id in a.goal_ids
        for role in ("read", "write")
    ],
    ("GET", "/v1/reports/attribution"): lambda a, b: (
        [
            Attempt("read", "/v1/reports/attribution", query=REPORT_QUERY | q, own_data=True)
            for q in (
                {"dimension": "campaign", "group": "all"},
                {"dimension": "keyword", "group": "converting"},
            )
        ]
        + [Attempt("write", "/v1/reports/attribution", query={"dimension": "campaign"})]
    ),
    ("GET", "/v1/reports/top-keywords"): lambda a, b: [
        Attempt("read", "/v1/reports/top-keywords", query=REPORT_QUERY, own_data=True),
        Attempt("write", "/v1/reports/top-keywords", query=REPORT_QUERY),
    ],
    ("GET", "/v1/visitors/{visitor_id}/trace"): lambda a, b: [
        Attempt(role, f"/v1/visitors/{visitor_id}/trace")
        for visitor_id in a.visitor_ids
        for role in ("read", "write")
    ],
    ("POST", "/v1/goals/{goal_id}/backfill"): lambda a, b: [
        Attempt(role, f"/v1/goals/{goal_id}/backfill", BACKFILL)
        for goal_id in a.goal_ids
        for role in ("write", "read")
    ],
    ("GET", "/v1/jobs/{job_id}"): lambda a, b: [
        Attempt(role, f"/v1/jobs/{job_id}") for job_id in a.job_ids for role in ("read", "write")
    ],
    # Account recovery is the admin's: no key of B's reaches A's keys through it.
    ("GET", "/v1/accounts/{account_id}/keys"): lambda a, b: [
        Attempt(role, f"/v1/accounts/{a.account_id}/keys") for role in ACCOUNT_KEYS
    ],
    ("POST", "/v1/accounts/{account_id}/keys"): lambda a, b: [
        Attempt(role, f"/v1/accounts/{a.account_id}/keys", {"role": role}) for role in ACCOUNT_KEYS
    ],
    ("DELETE", "/v1/accounts/{account_id}/keys/{key_id}"): lambda a, b: [
        Attempt(role, f"/v1/accounts/{a.account_id}/keys/{key_id}")
        for key_id in a.key_ids.values()
        for role in ACCOUNT_KEYS
    ],
    # The same script for everyone: nothing of any account in it.
    ("GET", "/v1/tracker.js"): lambda a, b: [
        Attempt(role, "/v1/tracker.js", own_data=True) for role in (NO_KEY, "write", "read")
    ],
    # The dashboard's files are the same for everyone too: the data is the API's, by key.
    ("GET", "/"): lambda a, b: [
        Attempt(role, "/", own_data=True) for role in (NO_KEY, "write", "read")
    ],
    ("GET", "/dashboard/{file}"): lambda a, b: [
        Attempt(role, "/dashboard/app.js", own_data=True) for role in (NO_KEY, "write", "read")
    ],
    # B's webhooks are B's: it lists and creates its own, never sees or touches A's.
    ("POST", "/v1/webhooks"): lambda a, b: [
        Attempt("write", "/v1/webhooks", {"url": "http://localhost:9/b"}, own_data=True),
        Attempt("read", "/v1/webhooks", {"url": "http://localhost:9/b"}),
    ],
    ("GET", "/v1/webhooks"): lambda a, b: [
        Attempt("write", "/v1/webhooks", own_data=True),
        Attempt("read", "/v1/webhooks"),
    ],
    ("DELETE", "/v1/webhooks/{webhook_id}"): lambda a, b: [
        Attempt(role, f"/v1/webhooks/{webhook_id}")
        for webhook_id in a.webhook_ids
        for role in ("write", "read")
    ],
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): lambda a, b: [
        Attempt(role, f"/v1/webhooks/{webhook_id}/deliveries")
        for webhook_id in a.webhook_ids
        for role in ("write", "read")
    ],
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): lambda a, b: [
        Attempt(role, f"/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry")
        for webhook_id in a.webhook_ids
        for delivery_id in a.delivery_ids[:1]
        for role in ("write", "read")
    ],
    # B's funnel of B's own goals is B's; a funnel naming A's goals names none of B's.
    ("POST", "/v1/funnels"): lambda a, b: [
        Attempt("write", "/v1/funnels", {"name": "B", "steps": b.goal_ids[:2]}, own_data=True),
        Attempt("read", "/v1/funnels", {"name": "B", "steps": b.goal_ids[:2]}),
    ],
    ("GET", "/v1/funnels"): lambda a, b: [
        Attempt("read", "/v1/funnels", own_data=True),
        Attempt("write", "/v1/funnels", own_data=True),
    ],
    ("GET", "/v1/funnels/{funnel_id}"): lambda a, b: [
        Attempt(role, f"/v1/funnels/{funnel_id}")
        for funnel_id in a.funnel_ids
        for role in ("read", "write")
    ],
    ("POST", "/v1/funnels/{funnel_id}/backfill"): lambda a, b: [
        Attempt(role, f"/v1/funnels/{funnel_id}/backfill", BACKFILL)
        for funnel_id in a.funnel_ids
        for role in ("write", "read")
    ],
    ("DELETE", "/v1/funnels/{funnel_id}"): lambda a, b: [
        Attempt(role, f"/v1/funnels/{funnel_id}")
        for funnel_id in a.funnel_ids
        for role in ("write", "read")
    ],
    ("GET", "/v1/reports/funnels/{funnel_id}"): lambda a, b: [
        Attempt(role, f"/v1/reports/funnels/{funnel_id}", query=REPORT_QUERY)
        for funnel_id in a.funnel_ids
        for role in ("read", "write")
    ],
    # call tracking: Twilio. B connects its own; B's keys post nothing to A's URL.
    ("PUT", "/v1/integrations/twilio"): lambda a, b: [
        Attempt("write", "/v1/integrations/twilio", {"auth_token": B_TWILIO_TOKEN}, own_data=True),
        Attempt("read", "/v1/integrations/twilio", {"auth_token": B_TWILIO_TOKEN}),
    ],
    ("POST", TWILIO_CALLBACK): lambda a, b: [
        Attempt(role, TWILIO_CALLBACK.replace("{account_id}", a.account_id), {"CallSid": "x"})
        for role in ACCOUNT_KEYS
    ],
    # B's numbers are B's (A's numbers answer 409 to B: test_numbers.py); B lists its own,
    # cannot delete A's, and finds no pool standing in for A's site number.
    ("POST", "/v1/numbers"): lambda a, b: [
        Attempt("write", "/v1/numbers", B_NUMBER, own_data=True),
        Attempt("read", "/v1/numbers", B_NUMBER),
    ],
    ("GET", "/v1/numbers"): lambda a, b: [
        Attempt(role, "/v1/numbers", own_data=True) for role in ("read", "write")
    ],
    ("DELETE", "/v1/numbers/{number}"): lambda a, b: [
        Attempt(role, f"/v1/numbers/{number}")
        for number in a.numbers[:2]
        for role in ("write", "read")
    ],
    ("POST", "/v1/numbers/assign"): lambda a, b: [
        Attempt(role, "/v1/numbers/assign", _b_visit(a)) for role in ("site", "write", "read")
    ],
    ("GET", "/v1/reports/numbers"): lambda a, b: [
        Attempt("read", "/v1/reports/numbers", query=REPORT_QUERY, own_data=True),
        Attempt("write", "/v1/reports/numbers", query=REPORT_QUERY),
    ],
    # A's conversion id, adjusted with B's keys, is no conversion of B's.
    ("POST", "/v1/conversions/{conversion_id}/adjustments"): lambda a, b: [
        Attempt(role, f"/v1/conversions/{conversion_id}/adjustments", body)
        for conversion_id in a.conversion_ids
        for role in ("write", "read")
        for body in (
            {"adjustment_id": f"refund-{TAG}", "type": "retract", "reason": "x"},
            {
                "adjustment_id": "b-1",
                "type": "restate",
                "value": "1",
                "currency": "USD",
                "reason": "x",
            },
        )
    ],
    # B's export is B's (empty): A's click conversions and refunds stay A's.
    ("GET", "/v1/exports/google-ads"): lambda a, b: (
        [
            Attempt("read", "/v1/exports/google-ads", query=kind, own_data=True)
            for kind in ({}, {"kind": "adjustments"})
        ]
        + [Attempt("write", "/v1/exports/google-ads")]
    ),
}


def _route_key(route: ApiRoute) -> tuple[str, str]:
    return route.method, route.path


def test_every_template_route_has_an_isolation_case_and_a_role_rule() -> None:
    routes = {_route_key(route) for route in ROUTES}
    assert routes - CASES.keys() == set(), "add an isolation case for each new route"
    assert routes - ROLES.keys() == set(), "say which roles each new route accepts"
    assert CASES.keys() - routes == set(), "a case names a route template.yaml lacks"


def _is_missing_route(status: int, body: Any) -> bool:
    error = body.get("error", {}) if isinstance(body, dict) else {}
    return status == 404 and error.get("message") == "no such route"


def _pending(stack: InProcessStack, owner: Tenant, route: ApiRoute) -> bool:
    """A route still being built: A's own right key meets "no such route"."""
    role = sorted(ROLES[_route_key(route)])[0]
    path = _concrete(route, owner)
    if route.method != "GET":
        return False  # every non-GET route exists; probing one would change A
    return _is_missing_route(*stack.api.request("GET", path, owner.key(role)))


def _concrete(route: ApiRoute, owner: Tenant) -> str:
    return (
        route.path.replace("{account_id}", owner.account_id)
        .replace("{goal_id}", owner.goal_ids[0])
        .replace("{visitor_id}", owner.visitor_ids[0])
        .replace("{key_id}", owner.key_ids["write"])
        .replace("{job_id}", owner.job_ids[0])
        .replace("{webhook_id}", owner.webhook_ids[0])
        .replace("{delivery_id}", owner.delivery_ids[0])
        .replace("{funnel_id}", owner.funnel_ids[0])
        .replace("{number}", owner.numbers[0])
        .replace("{file}", "app.js")
        .replace("{conversion_id}", owner.conversion_ids[0])
    )


def _leaks(answer: Any, owner: Tenant, attempt: Attempt) -> list[str]:
    """A's markers in the answer, except what the request itself carried (a 404 may
    name the goal id it was asked about; that tells the caller nothing new)."""
    text = json.dumps(answer)
    sent = json.dumps([attempt.path, attempt.body, attempt.query])
    return [m for m in owner.markers() if m in text and m not in sent]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_account_b_cannot_reach_account_a(
    stack: InProcessStack, tenants: tuple[Tenant, Tenant], route: ApiRoute
) -> None:
    a, b = tenants
    before = _snapshot(stack, a)
    pending = _pending(stack, a, route)
    attempts = CASES[_route_key(route)](a, b)
    assert attempts, "every route needs at least one attempt"
    for attempt in attempts:
        status, answer = stack.api.request(
            route.method, attempt.path, b.key(attempt.role), attempt.body, attempt.query
        )
        where = f"{route.method} {attempt.path} with B's {attempt.role} key -> {status} {answer}"
        assert status < 500, where
        assert _leaks(answer, a, attempt) == [], where
        if pending:
            assert _is_missing_route(status, answer), where
        elif attempt.own_data:
            assert 200 <= status < 300, where
        else:
            assert status in (403, 404), where
        if status == 202:  # B's event is B's: A's id is no duplicate in B
            assert answer == {"accepted": [attempt.body["event_id"]], "duplicates": []}, where
    stack.evaluate_pending()
    assert _snapshot(stack, a) == before, f"{route.method} {route.path} changed A's data"


def _valid_body(route: ApiRoute) -> Any:
    return {
        ("POST", "/v1/accounts"): {},
        ("POST", "/v1/events"): {"type": "lead", "lead_id": "l-1"},
        ("POST", "/v1/goals"): NEW_GOAL,
        ("POST", "/v1/goals/dry-run"): {"goal": NEW_GOAL},
        ("PUT", "/v1/goals/{goal_id}"): GOAL_SPEC,
        ("PUT", "/v1/account"): SETTINGS,
        ("POST", "/v1/keys"): {},
        ("POST", "/v1/accounts/{account_id}/keys"): {"role": "write"},
        ("POST", "/v1/goals/{goal_id}/backfill"): BACKFILL,
        ("POST", "/v1/funnels/{funnel_id}/backfill"): BACKFILL,
        **{("POST", path): {"batch": []} for path in SEGMENT_BODIES},
        ("POST", "/v1/webhooks"): {"url": A_HOOK},
        ("POST", "/v1/funnels"): {"name": "x", "steps": ["goal_x", "goal_y"]},
        ("PUT", "/v1/integrations/twilio"): {"auth_token": B_TWILIO_TOKEN},
        ("POST", "/v1/numbers"): B_NUMBER,
        ("POST", "/v1/numbers/assign"): {
            "visitor_id": "v",
            "visit_id": "s",
            "replaces": A_NUMBERS[2],
        },
        ("POST", "/v1/conversions/{conversion_id}/adjustments"): {
            "adjustment_id": "r-1",
            "type": "retract",
            "reason": "x",
        },
    }.get(_route_key(route))


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_wrong_role_and_bad_keys_are_refused(
    stack: InProcessStack, tenants: tuple[Tenant, Tenant], route: ApiRoute
) -> None:
    a, _ = tenants
    path, body = _concrete(route, a), _valid_body(route)
    revoked = _revoked_write_key(stack, a)
    before = _snapshot(stack, a)
    pending = _pending(stack, a, route)
    if ROLES[_route_key(route)] == {NO_KEY}:
        # A public route reads no key: a wrong, unknown or revoked one changes nothing.
        answers = {
            stack.api.request(route.method, path, key)
            for key in (None, "gk_write_not-a-key", revoked, a.write, a.read, ADMIN_KEY)
        }
        assert len(answers) == 1, answers
        assert next(iter(answers))[0] == 200
        assert _snapshot(stack, a) == before
        return
    if ROLES[_route_key(route)] == {SIGNED}:
        # Keys open nothing here: an unsigned request is 403 with any of them, or none.
        answers = {
            json.dumps(stack.api.request(route.method, path, key, body))
            for key in (None, "gk_write_not-a-key", revoked, a.write, a.read, a.site, ADMIN_KEY)
        }
        assert len(answers) == 1, answers
        status, answer = json.loads(next(iter(answers)))
        assert (status, answer["error"]["code"]) == (403, "forbidden")
        assert _snapshot(stack, a) == before
        return
    for role in {"admin", *ACCOUNT_KEYS} - ROLES[_route_key(route)]:
        # A site key is refused alike in the header and in the URL (?key=), as beacons send it.
        in_url = [REPORT_QUERY | {"key": a.site}] if role == "site" else []
        for key, query in [(a.key(role), REPORT_QUERY), *((None, q) for q in in_url)]:
            status, answer = stack.api.request(route.method, path, key, body, query)
            where = f"{route.method} {path} with a {role} key -> {status} {answer}"
            if pending:
                assert _is_missing_route(status, answer), where
            else:
                assert status == 403, where
                assert answer["error"]["code"] == "forbidden", where
    for key in (None, "", "gk_write_not-a-key", "gk_site_not-a-key", a.write + "x", revoked):
        status, answer = stack.api.request(route.method, path, key, body, REPORT_QUERY)
        assert status == 401, f"{route.method} {path} with key {key!r} -> {status} {answer}"
        assert answer["error"]["code"] == "unauthenticated"
    # No other key travels in a URL, whatever it may do in the header.
    for role in ("admin", "write", "read"):
        query = REPORT_QUERY | {"key": a.key(role)}
        status, answer = stack.api.request(route.method, path, None, body, query)
        assert status == 401, f"{route.method} {path} with ?key= {role} -> {status} {answer}"
        assert answer["error"]["code"] == "unauthenticated"
    assert _snapshot(stack, a) == before


def _revoked_write_key(stack: InProcessStack, owner: Tenant) -> str:
    status, issued = stack.api.request("POST", "/v1/keys", owner.write, {})
    assert status == 201, issued
    status, _ = stack.api.request("DELETE", f"/v1/keys/{issued['key_id']}", owner.write)
    assert status == 200
    owner.key_ids["revoked"] = issued["key_id"]
    return str(issued["key"])


# --- least privilege in template.yaml --------------------------------------------------
#
# Each function's table permissions must be exactly what it does: the test runs a
# workload that reaches every route and rule history, records each DynamoDB call per
# function (with the item actions inside transactions, and the indexes queried),
# and compares with template.yaml both ways: nothing used is missing, nothing
# granted is unused.

TABLE_ARN = {"Fn::GetAtt": ["Table", "Arn"]}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _statements(properties: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in properties.get("Policies", []) for s in policy.get("Statement", [])]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _table_grants() -> dict[str, tuple[set[str], list[Any]]]:
    """Per function: the table actions granted and the resources they are granted on."""
    grants = {}
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        table = [
            s
            for s in _statements(resource["Properties"])
            if s.get("Sid") != "StreamRead"
            and any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))
        ]
        if not table:
            continue  # granted nothing (the tracker): the comparison holds it to no call
        assert len(table) == 1, f"{name}: one statement for the table"
        actions = {a.removeprefix("dynamodb:") for a in _as_list(table[0]["Action"])}
        grants[name] = (actions, _as_list(table[0]["Resource"]))
    return grants


def test_no_statement_grants_everything() -> None:
    for name, resource in load_template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for statement in _statements(resource["Properties"]):
            assert statement["Effect"] == "Allow", name
            assert "*" not in _as_list(statement["Resource"]), name
            assert not any("*" in action for action in _as_list(statement["Action"])), name
            assert "dynamodb:Scan" not in _as_list(statement["Action"]), name


def _index_arn(index: str) -> dict[str, str]:
    return {"Fn::Sub": f"${{Table.Arn}}/index/{index}"}


def _workload(stack: InProcessStack) -> None:
    account = stack.new_account(name="Acme")
    write, read = account["keys"]["write"], account["keys"]["read"]
    receiver = Receiver()
    status, hook = stack.api.request("POST", "/v1/webhooks", write, {"url": receiver.url})
    assert status == 201, hook
    receiver.secret = hook["secret"]
    goals = [
        {"name": "Two pages", "rule": {"kind": "page_views", "min_pages": 2}},
        {"name": "VIP", "rule": {"kind": "tags", "tags": ["vip", "gold"], "match": "all"}},
        {"name": "Sale", "rule": {"kind": "transaction", "min_value": 1}},
        {
            "name": "Target call",
            "rule": {"kind": "call", "connected": True, "first_time_caller_days": 30},
            "dedup": {"keys": ["caller"], "window_days": 30},
        },
    ]
    goal_ids = []
    for goal in goals:
        status, created = stack.api.request("POST", "/v1/goals", write, goal)
        assert status == 201, created
        goal_ids.append(created["goal_id"])
    # A prerequisite and a funnel: their conditions and progress items are decided too.
    status, created = stack.api.request(
        "POST",
        "/v1/goals",
        write,
        {
            "name": "Sale after pages",
            "rule": {"kind": "transaction"},
            "requires": {"goal_id": goal_ids[0], "within_days": 3},
        },
    )
    assert status == 201, created
    after_pages = created["goal_id"]
    funnel = {"name": "Pages then sale", "steps": [goal_ids[0], goal_ids[2]]}
    status, created = stack.api.request("POST", "/v1/funnels", write, funnel)
    assert status == 201, created
    funnel_id = created["funnel_id"]
    attribution = {"source": "google", "campaign": "winter", "keyword": "plumber"}
    events = [
        {"type": "page_view", "visitor_id": "v-1", "visit_id": "s-1", "url": "https://x/a"},
        {"type": "page_view", "visitor_id": "v-1", "visit_id": "s-1", "url": "https://x/b"},
        {"type": "tag", "visitor_id": "v-1", "contact_id": "ct-1", "added": ["vip"]},
        {"type": "tag", "visitor_id": "v-1", "contact_id": "ct-1", "added": ["gold"]},
        {
            "type": "transaction",
            "visitor_id": "v-1",
            "transaction": {"value": 5, "currency": "EUR", "reference": "o-1"},
            "attribution": attribution,
        },
        {
            "type": "call",
            "visitor_id": "v-2",
            "call_id": "c-1",
            "caller_number": "+442071234567",
            "connected": True,
            "bridged_seconds": 90,
            "attribution": attribution,
        },
    ]
    for event in events:  # one request each: rule history is read from earlier events
        status, answer = stack.api.request("POST", "/v1/events", write, event)
        assert status == 202, answer
        stack.evaluate_pending()
    # Backfills of a windowed goal (neighbouring claims checked), of a history rule and
    # of a goal with a prerequisite (its progress items read).
    jobs = []
    for goal_id in (goal_ids[3], goal_ids[0], after_pages):
        status, job = stack.api.request("POST", f"/v1/goals/{goal_id}/backfill", write, BACKFILL)
        assert status == 202, job
        jobs.append(job["job_id"])
    # And of the funnel (its conversions read, put on steps under conditions).
    status, job = stack.api.request("POST", f"/v1/funnels/{funnel_id}/backfill", write, BACKFILL)
    assert status == 202, job
    jobs.append(job["job_id"])
    stack.run_backfills()
    stack.deliver_pending()  # the notify function: the bus, deliveries and their attempts
    assert receiver.received and not receiver.rejected
    receiver.close()
    hook_path = f"/v1/webhooks/{hook['webhook_id']}"
    status, log = stack.api.request("GET", f"{hook_path}/deliveries", write)
    assert status == 200 and log["deliveries"], log
    retry = f"{hook_path}/deliveries/{log['deliveries'][0]['delivery_id']}/retry"
    for job_id in jobs:
        status, job = stack.api.request("GET", f"/v1/jobs/{job_id}", read)
        assert (status, job["status"]) == (200, "done"), job
    issued = stack.api.request("POST", "/v1/keys", write, {})[1]
    trace = stack.api.request("GET", "/v1/visitors/v-1/trace", read)[1]
    sale = next(i for i in trace["items"] if i["kind"] == "conversion" and i["status"] == "counted")
    refund = {"adjustment_id": "refund-1", "type": "retract", "reason": "refunded"}
    recovery = f"/v1/accounts/{account['account_id']}/keys"
    recovered = stack.api.request("POST", recovery, ADMIN_KEY, {"role": "site"})[1]
    for method, path, key, body, query in [
        ("POST", "/v1/events", account["keys"]["site"], {"type": "lead", "lead_id": "l-1"}, None),
        ("GET", recovery, ADMIN_KEY, None, None),
        ("DELETE", f"{recovery}/{recovered['key_id']}", ADMIN_KEY, None, None),
        ("GET", "/v1/keys", write, None, None),
        ("PUT", "/v1/account", write, SETTINGS, None),
        ("GET", "/v1/account", read, None, None),
        ("DELETE", f"/v1/keys/{issued['key_id']}", write, None, None),
        ("GET", "/v1/goals", read, None, None),
        ("GET", f"/v1/goals/{goal_ids[0]}", read, None, None),
        ("POST", "/v1/goals/dry-run", read, {"goal": goals[1]}, None),
        ("PUT", f"/v1/goals/{goal_ids[0]}", write, goals[0] | {"name": "Pages"}, None),
        ("DELETE", f"/v1/goals/{goal_ids[1]}", write, None, None),
        ("GET", "/v1/reports/goals", read, None, REPORT_QUERY),
        ("GET", f"/v1/reports/goals/{goal_ids[2]}/timeseries", read, None, REPORT_QUERY),
        ("GET", "/v1/reports/attribution", read, None, REPORT_QUERY),
        ("GET", "/v1/reports/top-keywords", read, None, REPORT_QUERY),
        ("GET", "/v1/visitors/v-1/trace", read, None, None),
        ("GET", f"/v1/goals/{goal_ids[3]}/health", read, None, None),
        ("GET", "/v1/webhooks", write, None, None),
        ("POST", retry, write, None, None),
        ("DELETE", hook_path, write, None, None),
        ("GET", "/v1/funnels", read, None, None),
        ("GET", f"/v1/funnels/{funnel_id}", read, None, None),
        ("GET", f"/v1/reports/funnels/{funnel_id}", read, None, REPORT_QUERY),
        ("DELETE", f"/v1/funnels/{funnel_id}", write, None, None),
        *_number_workload(write, read, account["keys"]["site"]),
        ("POST", f"/v1/conversions/{sale['conversion_id']}/adjustments", write, refund, None),
        ("GET", "/v1/exports/google-ads", read, None, None),
    ]:
        status, answer = stack.api.request(method, path, key, body, query)
        assert 200 <= status < 300, (method, path, status, answer)
    assert stack.api.request("GET", "/v1/tracker.js")[0] == 200


def _number_workload(write: str, read: str, site: str) -> list[tuple[Any, ...]]:
    """Every call tracking route: a pool, a visit holding its number, a call matched
    by it (counted in the pool's day) and the pool report."""
    own, pooled = "+442079460100", "+442079460101"
    pool_number = {"number": pooled, "kind": "pool", "replaces": own}
    visit = {"visitor_id": "v-3", "visit_id": "s-3", "replaces": own}
    call = {"type": "call", "call_id": "c-2", "tracking_number": pooled, "connected": False}
    return [
        ("POST", "/v1/numbers", write, pool_number, None),
        ("POST", "/v1/numbers/assign", site, visit, None),
        ("POST", "/v1/numbers/assign", site, visit, None),  # renewed
        ("POST", "/v1/events", write, call, None),
        ("GET", "/v1/numbers", read, None, None),
        ("GET", "/v1/reports/numbers", read, None, None),
        ("DELETE", f"/v1/numbers/{pooled}", write, None, None),
    ]


def test_each_function_is_granted_exactly_the_table_access_it_uses(
    stack: InProcessStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextvars

    from goalkeeper import runtime
    from goalkeeper_cli.local_stack.functions import LocalFunction

    calling: contextvars.ContextVar[str] = contextvars.ContextVar("calling", default="?")
    invoke = LocalFunction.invoke

    def invoke_recording(self: LocalFunction, event: dict[str, Any]) -> Any:
        token = calling.set(self.name)
        try:
            return invoke(self, event)
        finally:
            calling.reset(token)

    used: dict[str, set[str]] = {}
    indexes: dict[str, set[str]] = {}

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        function = calling.get()
        if model.name == "TransactWriteItems" or model.name == "TransactGetItems":
            actions = {_TRANSACT_ACTIONS[kind] for item in params["TransactItems"] for kind in item}
        else:
            actions = {model.name}
        used.setdefault(function, set()).update(actions)
        if "IndexName" in params:
            indexes.setdefault(function, set()).add(params["IndexName"])

    monkeypatch.setattr(LocalFunction, "invoke", invoke_recording)
    runtime.dal().client.meta.events.register("before-parameter-build.dynamodb", record)
    _workload(stack)

    assert "?" not in used, "a table call made outside any function"
    grants = _table_grants()
    assert used.keys() == grants.keys()
    for function, (granted, resources) in grants.items():
        assert used[function] == granted, f"{function}: uses {used[function]}, granted {granted}"
        expected = [TABLE_ARN] + [_index_arn(i) for i in sorted(indexes.get(function, ()))]
        assert resources == expected, f"{function}: resources {resources}, uses {expected}"
