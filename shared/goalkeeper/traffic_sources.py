"""Where a page view's visitor came from, read off the page view itself: the URL's
campaign parameters and click ids first, else the referrer classified as Matomo and
GA4 do (a search engine is 'organic', a social network 'social', another site
'referral'). A page view with neither, or referred by the site's own pages, is direct."""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from goalkeeper.models.events import Attribution, EventBase, PageView

CAMPAIGN_PARAMETERS = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "campaign",
    "utm_term": "keyword",
}
# Auto-tagging click ids, in the order they are looked for. Google's and Microsoft's
# are only ever added to paid clicks, so they say source and medium too; Meta's,
# TikTok's and LinkedIn's are added to organic links as well, so the referrer says those.
CLICK_IDS: dict[str, tuple[str, str] | None] = {
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
    "fbclid": None,
    "ttclid": None,
    "li_fat_id": None,
}
ORGANIC = "organic"
SOCIAL = "social"
REFERRAL = "referral"
# A country domain's labels: 'de', 'uk', 'co', 'com' ('google.co.uk', 'google.com.au').
MAX_COUNTRY_LABEL = 3
SUBDOMAINS_OF_THE_BARE_HOST = ("www", "m")
MAX_LABEL_LENGTH = 256


@dataclass(frozen=True)
class HostDirectory:
    """Known hosts: `by_domain` matches a domain and its subdomains, `by_country_name`
    the name under any country domain ('google' for google.de and www.google.co.uk)."""

    by_domain: dict[str, tuple[str, str]]
    by_country_name: dict[str, tuple[str, str]]

    def classify(self, host: str) -> tuple[str, str] | None:
        labels = host.split(".")
        for start in range(len(labels) - 1):
            known = self.by_domain.get(".".join(labels[start:]))
            if known:
                return known
        if labels[0] in SUBDOMAINS_OF_THE_BARE_HOST:
            labels = labels[1:]
        country = labels[1:]
        if 1 <= len(country) <= 2 and all(_is_country_label(label) for label in country):
            return self.by_country_name.get(labels[0])
        return None


def _is_country_label(label: str) -> bool:
    return label.isascii() and label.isalpha() and 2 <= len(label) <= MAX_COUNTRY_LABEL


@cache
def host_directory() -> HostDirectory:
    listed = json.loads(
        resources.files("goalkeeper").joinpath("data/referrer_hosts.json").read_text("utf-8")
    )
    by_domain: dict[str, tuple[str, str]] = {}
    by_country_name: dict[str, tuple[str, str]] = {}
    for group, medium in (("search_engines", ORGANIC), ("social_networks", SOCIAL)):
        for name, patterns in listed[group].items():
            for pattern in patterns:
                if pattern.endswith(".*"):
                    by_country_name[pattern.removesuffix(".*")] = (name, medium)
                else:
                    by_domain[pattern] = (name, medium)
    return HostDirectory(by_domain, by_country_name)


def own_attribution(event: EventBase) -> Attribution | None:
    """Where an event says its visitor came from: the attribution it was sent with,
    else, for a page view, its URL's campaign parameters and click ids or its referrer
    classified. None for an event that says nothing (a call, a page view within a
    visit, a direct entry)."""
    if event.attribution is not None and event.attribution.model_dump(exclude_none=True):
        return event.attribution
    if isinstance(event, PageView):
        return page_view_source(event.url, event.referrer)
    return None


def is_direct_entry(event: EventBase) -> bool:
    """A page view with no referrer and nothing in its URL: a visit typed in, bookmarked
    or opened from an app. A page view referred by the site's own pages is a step
    within a visit, not an entry."""
    return isinstance(event, PageView) and not event.referrer and own_attribution(event) is None


def page_view_source(url: str, referrer: str | None) -> Attribution | None:
    """The attribution a page view carries in its URL or referrer; None when direct."""
    tagged = _from_url(url)
    if tagged and tagged.source:
        return tagged
    referred = _from_referrer(referrer, own_host=_host(url))
    if tagged:  # a click id of a platform that does not say its source
        return tagged.model_copy(
            update={"source": referred.source, "medium": referred.medium} if referred else {}
        )
    return referred


def _from_url(url: str) -> Attribution | None:
    try:
        parameters = parse_qsl(urlsplit(url).query)
    except ValueError:
        return None
    found: dict[str, str] = {}
    for name, value in parameters:
        field = CAMPAIGN_PARAMETERS.get(name.lower())
        if field and value.strip() and field not in found:
            found[field] = value.strip()[:MAX_LABEL_LENGTH]
    click = next(
        ((name, value) for name in CLICK_IDS for key, value in parameters if key == name and value),
        None,
    )
    if click:
        found["click_id"] = click[1][:MAX_LABEL_LENGTH]
        implied = CLICK_IDS[click[0]]
        if implied and "source" not in found:
            found |= {"source": implied[0], "medium": found.get("medium", implied[1])}
    return Attribution(**found) if found else None


def _from_referrer(referrer: str | None, own_host: str | None) -> Attribution | None:
    host = _host(referrer) if referrer else None
    if not host or host == own_host:
        return None
    known = host_directory().classify(host)
    if known:
        return Attribution(source=known[0], medium=known[1])
    return Attribution(source=host[:MAX_LABEL_LENGTH], medium=REFERRAL)


def _host(url: str | None) -> str | None:
    """The host without a leading 'www.', lower case; None when there is none."""
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    return host.removeprefix("www.") or None
