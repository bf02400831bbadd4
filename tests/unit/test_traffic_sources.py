"""Page views classified as Matomo and GA4 classify them: campaign parameters first,
then the referrer (search engine -> organic, social network -> social, other site ->
referral); the site's own pages and no referrer are direct."""

import pytest

from goalkeeper.models.events import Attribution, PageView
from goalkeeper.traffic_sources import (
    host_directory,
    is_direct_entry,
    own_attribution,
    page_view_source,
)

LANDING = "https://shop.example/winter-sale"


@pytest.mark.parametrize(
    ("url", "referrer", "expected"),
    [
        # Campaign parameters win over the referrer.
        (
            LANDING + "?utm_source=google&utm_medium=cpc&utm_campaign=winter&utm_term=red+boots",
            "https://www.google.com/",
            {"source": "google", "medium": "cpc", "campaign": "winter", "keyword": "red boots"},
        ),
        (LANDING + "?UTM_SOURCE=newsletter", None, {"source": "newsletter"}),
        # A Google Ads click id alone says google / cpc, and keeps the id.
        (
            LANDING + "?gclid=Cj0KCQ",
            "",
            {"source": "google", "medium": "cpc", "click_id": "Cj0KCQ"},
        ),
        (LANDING + "?wbraid=w1", None, {"source": "google", "medium": "cpc", "click_id": "w1"}),
        (LANDING + "?msclkid=m1", None, {"source": "bing", "medium": "cpc", "click_id": "m1"}),
        # A tagged medium is kept beside an implied source.
        (
            LANDING + "?gclid=g&utm_medium=display",
            None,
            {"source": "google", "medium": "display", "click_id": "g"},
        ),
        # Meta's click id is added to organic links too: the referrer says where from.
        (
            LANDING + "?fbclid=IwAR",
            "https://l.facebook.com/",
            {"source": "facebook", "medium": "social", "click_id": "IwAR"},
        ),
        (LANDING + "?fbclid=IwAR", None, {"click_id": "IwAR"}),
        # Search engines, under any country domain, with or without www.
        (LANDING, "https://www.google.com/", {"source": "google", "medium": "organic"}),
        (LANDING, "https://www.google.co.uk/", {"source": "google", "medium": "organic"}),
        (LANDING, "https://google.de/search?q=x", {"source": "google", "medium": "organic"}),
        (LANDING, "https://cn.bing.com/", {"source": "bing", "medium": "organic"}),
        (LANDING, "https://duckduckgo.com/", {"source": "duckduckgo", "medium": "organic"}),
        (LANDING, "https://search.yahoo.co.jp/", {"source": "yahoo", "medium": "organic"}),
        (LANDING, "https://yandex.ru/", {"source": "yandex", "medium": "organic"}),
        # Social networks, their link shorteners and mobile hosts.
        (LANDING, "https://m.facebook.com/", {"source": "facebook", "medium": "social"}),
        (LANDING, "https://t.co/abc", {"source": "x", "medium": "social"}),
        (LANDING, "https://lnkd.in/xyz", {"source": "linkedin", "medium": "social"}),
        (LANDING, "https://www.reddit.com/r/x", {"source": "reddit", "medium": "social"}),
        # Not the search engine: another product on the same company's domains.
        (LANDING, "https://mail.yahoo.com/", {"source": "mail.yahoo.com", "medium": "referral"}),
        (LANDING, "https://news.google.com/", {"source": "news.google.com", "medium": "referral"}),
        # Look-alikes are other sites.
        (LANDING, "https://google.evil.com/", {"source": "google.evil.com", "medium": "referral"}),
        (LANDING, "https://notgoogle.com/", {"source": "notgoogle.com", "medium": "referral"}),
        (
            LANDING,
            "https://www.partner.example/p",
            {"source": "partner.example", "medium": "referral"},
        ),
        # Direct: no referrer, an empty or unreadable one, or the site's own pages.
        (LANDING, None, None),
        (LANDING, "", None),
        (LANDING, "not a url", None),
        (LANDING, "https://[::1/", None),
        (LANDING, "https://shop.example/", None),
        (LANDING, "https://www.shop.example/cart", None),
        (LANDING + "?utm_source=", "https://shop.example/", None),
    ],
)
def test_a_page_view_is_attributed_from_its_url_then_its_referrer(url, referrer, expected):
    found = page_view_source(url, referrer)
    assert (found.model_dump(exclude_none=True) if found else None) == expected


def test_the_host_list_names_its_source_and_every_entry_is_reachable():
    directory = host_directory()
    assert directory.classify("google.fr") == ("google", "organic")
    assert directory.classify("www.pinterest.co.uk") == ("pinterest", "social")
    for domain, (name, medium) in directory.by_domain.items():
        assert directory.classify(domain) == (name, medium)
        assert directory.classify(f"www.{domain}") == (name, medium)


def test_long_campaign_values_are_cut_to_what_an_attribution_field_holds():
    found = page_view_source(LANDING + "?utm_source=" + "s" * 300, None)
    assert found is not None and found.source == "s" * 256


def _page_view(url: str, referrer: str | None = None, **fields) -> PageView:
    return PageView(type="page_view", url=url, referrer=referrer, **fields)


def test_an_events_own_attribution_comes_first_then_its_url_and_referrer():
    sent = Attribution(source="newsletter", medium="email")
    landing = _page_view("https://shop.example/?utm_source=google&utm_medium=cpc")
    assert own_attribution(_page_view(landing.url, attribution=sent)) == sent
    assert own_attribution(landing) == Attribution(source="google", medium="cpc")
    assert own_attribution(_page_view("https://shop.example/", "https://www.bing.com/")) == (
        Attribution(source="bing", medium="organic")
    )
    # An empty attribution object says nothing: the URL still does.
    assert own_attribution(landing.model_copy(update={"attribution": Attribution()})) == (
        Attribution(source="google", medium="cpc")
    )


@pytest.mark.parametrize(
    ("referrer", "direct"),
    [(None, True), ("https://shop.example/cart", False), ("https://t.co/x", False)],
)
def test_only_a_page_view_without_referrer_or_campaign_is_a_direct_entry(referrer, direct):
    assert is_direct_entry(_page_view("https://shop.example/", referrer)) is direct
    assert not is_direct_entry(_page_view("https://shop.example/?gclid=abc", referrer))
