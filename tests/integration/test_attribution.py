"""Attribution that follows the visitor, in process: conversions of events that carry
no attribution are credited from the touches of their visitor (or contact) by the
account's model, within its lookback; what each conversion was credited with, and
how, shows in the visitor trace and in the attribution report."""

from typing import Any

import pytest

from support.stack import InProcessStack

LANDING_URL = (
    "https://shop.example/boots?utm_source=google&utm_medium=cpc&utm_campaign=winter"
    "&utm_term=boots&gclid=Cj0KCQ"
)
WINTER = {
    "source": "google",
    "medium": "cpc",
    "campaign": "winter",
    "keyword": "boots",
    "click_id": "Cj0KCQ",
}
GOALS = [
    {"name": "Thank you", "rule": {"kind": "url", "match": "contains", "pattern": "/thank-you"}},
    {
        "name": "Big sale",
        "rule": {"kind": "transaction", "min_value": "100"},
        "value": {"type": "percent_of_transaction", "percent": "100"},
    },
    {"name": "Lead", "rule": {"kind": "lead"}},
]
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def page_view(event_id: str, at: str, url: str, referrer: str | None = None, **more: Any) -> dict:
    event = {"event_id": event_id, "type": "page_view", "occurred_at": at, "url": url}
    return event | ({"referrer": referrer} if referrer else {}) | more


def thank_you(event_id: str, at: str, visitor: str, **more: Any) -> dict:
    return page_view(
        event_id,
        at,
        "https://shop.example/thank-you",
        "https://shop.example/checkout",
        visitor_id=visitor,
        **more,
    )


@pytest.fixture
def account(stack: InProcessStack) -> dict[str, str]:
    created = stack.new_account()
    keys = created["keys"]
    stack.add_goals(keys["write"], GOALS)
    return keys


def set_model(stack: InProcessStack, write: str, model: str, lookback_days: int = 30) -> None:
    body = {"attribution": {"model": model, "lookback_days": lookback_days}}
    status, answer = stack.api.request("PUT", "/v1/account", write, body)
    assert status == 200, answer


def conversions(stack: InProcessStack, read: str, visitor: str) -> dict[str, dict[str, Any]]:
    """The visitor's conversions by event id (one goal per event here)."""
    status, trace = stack.api.request("GET", f"/v1/visitors/{visitor}/trace", read)
    assert status == 200, trace
    return {item["event_id"]: item for item in trace["items"] if item["kind"] == "conversion"}


def credit(stack: InProcessStack, read: str, visitor: str, event_id: str) -> tuple[Any, str]:
    found = conversions(stack, read, visitor)[event_id]
    return found["attribution"], found["attribution_source"]


def test_the_landings_campaign_is_credited_with_the_thank_you_page_the_sale_and_a_later_call(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    stack.send(
        write,
        [
            page_view("land", "2026-11-10T09:00:00Z", LANDING_URL, visitor_id="v1"),
            thank_you("thanks", "2026-11-10T09:05:00Z", "v1"),
            {
                "event_id": "sale",
                "type": "transaction",
                "occurred_at": "2026-11-10T09:06:00Z",
                "visitor_id": "v1",
                "transaction": {"value": "149.00", "currency": "GBP", "reference": "o-1"},
            },
            {
                "event_id": "call",
                "type": "call",
                "occurred_at": "2026-11-12T15:00:00Z",
                "visitor_id": "v1",
                "call_id": "CA-1",
                "caller_number": "+44 20 7123 4567",
                "connected": True,
                "bridged_seconds": 75,
            },
        ],
    )
    stack.evaluate_pending()

    found = conversions(stack, read, "v1")
    assert set(found) == {"thanks", "sale", "call"}
    for event_id in ("thanks", "sale", "call"):
        assert (found[event_id]["attribution"], found[event_id]["attribution_source"]) == (
            WINTER,
            "visitor",
        )
    status, report = stack.api.request(
        "GET",
        "/v1/reports/attribution",
        read,
        query=NOVEMBER | {"dimension": "keyword", "group": "all"},
    )
    assert status == 200, report
    assert [(row["keyword"], row["counted"]) for row in report["rows"]] == [("boots", 3)]
    assert report["rows"][0]["value"] == {"GBP": "149.00"}


def test_an_event_with_its_own_attribution_keeps_it(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    own = {"source": "newsletter", "medium": "email"}
    stack.send(
        write,
        [
            page_view("land", "2026-11-10T09:00:00Z", LANDING_URL, visitor_id="v1"),
            thank_you("thanks", "2026-11-10T09:05:00Z", "v1", attribution=own),
        ],
    )
    stack.evaluate_pending()
    assert credit(stack, read, "v1", "thanks") == (own, "event")


JOURNEY = [
    page_view(
        "social", "2026-11-01T10:00:00Z", "https://shop.example/", "https://t.co/x", visitor_id="v1"
    ),
    page_view("paid", "2026-11-05T10:00:00Z", LANDING_URL, visitor_id="v1"),
    page_view("direct", "2026-11-09T10:00:00Z", "https://shop.example/", visitor_id="v1"),
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # A direct visit never replaces a paid touch under last_non_direct.
        ("last_non_direct", WINTER),
        ("last_touch", {"source": "(direct)", "medium": "(none)"}),
        ("first_touch", {"source": "x", "medium": "social"}),
    ],
)
def test_each_model_credits_its_touch(
    stack: InProcessStack, account: dict[str, str], model: str, expected: dict
) -> None:
    write, read = account["write"], account["read"]
    set_model(stack, write, model)
    # Sent newest first: the order touches arrive in does not change the answer.
    stack.send(write, [*reversed(JOURNEY), thank_you("thanks", "2026-11-10T09:00:00Z", "v1")])
    stack.evaluate_pending()
    assert credit(stack, read, "v1", "thanks") == (expected, "visitor")


def test_touches_arriving_out_of_order_in_separate_requests_keep_the_right_answer(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    # The later touch arrives and is evaluated first, then the older one; a touch
    # after the conversion (arriving before it) is not its cause.
    after = page_view(
        "after", "2026-11-10T12:00:00Z", "https://shop.example/", "https://t.co/y", visitor_id="v1"
    )
    for batch in (
        [after],
        [JOURNEY[1]],
        [JOURNEY[0]],
        [thank_you("thanks", "2026-11-10T09:00:00Z", "v1")],
    ):
        stack.send(write, batch)
        stack.evaluate_pending()
    assert credit(stack, read, "v1", "thanks") == (WINTER, "visitor")


def test_a_touch_older_than_the_lookback_credits_nothing_until_the_lookback_is_longer(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    stack.send(write, [page_view("land", "2026-10-01T09:00:00Z", LANDING_URL, visitor_id="v1")])
    stack.send(write, [thank_you("thanks", "2026-11-10T09:00:00Z", "v1")])
    stack.evaluate_pending()
    assert credit(stack, read, "v1", "thanks") == (None, "none")

    # A change applies to conversions decided after it; the decided one stays as it was.
    set_model(stack, write, "last_non_direct", lookback_days=45)
    stack.send(write, [thank_you("thanks-2", "2026-11-11T09:00:00Z", "v1")])
    stack.evaluate_pending()
    assert credit(stack, read, "v1", "thanks-2") == (WINTER, "visitor")
    assert credit(stack, read, "v1", "thanks") == (None, "none")


def test_a_contacts_conversion_is_credited_from_the_visitor_it_was_identified_as(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    stack.send(
        write,
        [
            page_view("land", "2026-11-10T09:00:00Z", LANDING_URL, visitor_id="v1"),
            # The form submit names both: the contact is identified as visitor v1.
            {
                "event_id": "form",
                "type": "custom_trigger",
                "name": "form_submit",
                "occurred_at": "2026-11-10T09:03:00Z",
                "visitor_id": "v1",
                "contact_id": "ct-1",
            },
        ],
    )
    # Days later the CRM reports a lead of the contact, with no visitor and no UTM.
    lead = {
        "event_id": "lead",
        "type": "lead",
        "lead_id": "L-1",
        "occurred_at": "2026-11-13T16:00:00Z",
        "contact_id": "ct-1",
    }
    stack.send(write, [lead])
    stack.evaluate_pending()
    status, report = stack.api.request(
        "GET",
        "/v1/reports/attribution",
        read,
        query=NOVEMBER | {"dimension": "campaign", "group": "all"},
    )
    assert status == 200, report
    assert [(row["campaign"], row["counted"]) for row in report["rows"]] == [("winter", 1)]
    stored = [item for item in stack.items() if item.get("kind") == "conversion"]
    assert [(c["event_id"], c["attribution"], c["attribution_source"]) for c in stored] == [
        ("lead", WINTER, "contact")
    ]


def test_a_referrer_without_campaign_parameters_is_classified(
    stack: InProcessStack, account: dict[str, str]
) -> None:
    write, read = account["write"], account["read"]
    stack.send(
        write,
        [
            page_view(
                "land",
                "2026-11-10T09:00:00Z",
                "https://shop.example/boots",
                "https://www.google.co.uk/",
                visitor_id="v1",
            ),
            thank_you("thanks", "2026-11-10T09:05:00Z", "v1"),
        ],
    )
    stack.evaluate_pending()
    assert credit(stack, read, "v1", "thanks") == (
        {"source": "google", "medium": "organic"},
        "visitor",
    )
