"""Every DynamoDB key of the single table is built here, and nowhere else.

Each key starts with the account id, so a key built for account A can only ever
name A's items (tenant isolation by construction). User-supplied ids never
contain '#' (see goalkeeper.models.common.Identifier), so no id can forge
another key's shape.
"""

import hashlib

PK = "pk"
SK = "sk"
TRACE_INDEX = "gsi1"  # visitor trace: every event and conversion of one visitor, in time order
SCOPE_INDEX = "gsi2"  # narrow scopes a rule needs: tag events of a contact, page views of a visit
DAY_INDEX = "gsi3"  # an account's events of one UTC day, in time order (dry-runs, backfills)
TOUCH_INDEX = "gsi4"  # a visitor's (or contact's) touches: ways in, direct or not, in time order


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def account(account_id: str) -> dict[str, str]:
    return {PK: f"A#{account_id}", SK: "ACCOUNT"}


def api_key(key_sha256: str) -> dict[str, str]:
    """Where a presented key is looked up (by digest): the only item not under an account."""
    return {PK: f"KEY#{key_sha256}", SK: "KEY"}


def account_keys_pk(account_id: str) -> str:
    return f"A#{account_id}#KEYS"


def account_key(account_id: str, key_id: str) -> dict[str, str]:
    """An account's record of one of its keys (id, role, prefix, revocation), for listing."""
    return {PK: account_keys_pk(account_id), SK: f"KEY#{key_id}"}


def event(account_id: str, event_id: str) -> dict[str, str]:
    return {PK: f"A#{account_id}#E#{event_id}", SK: "EVENT"}


def goal(account_id: str, goal_id: str) -> dict[str, str]:
    return {PK: f"A#{account_id}#GOALS", SK: f"GOAL#{goal_id}"}


def goal_library_pk(account_id: str) -> str:
    return f"A#{account_id}#GOALS"


def goal_version(account_id: str, goal_id: str, version: int) -> dict[str, str]:
    return {PK: f"A#{account_id}#GOALV#{goal_id}", SK: f"V#{version:08d}"}


def conversion(account_id: str, conversion_id: str) -> dict[str, str]:
    return {PK: f"A#{account_id}#C#{conversion_id}", SK: "CONVERSION"}


def conversion_id(event_id: str, goal_id: str) -> str:
    """Deterministic, so a redelivered (event, goal) decision finds its own earlier write."""
    return _digest(event_id, goal_id)


def claim(
    account_id: str,
    shape: tuple[str, ...],
    values: tuple[str, ...],
    window_days: int | None,
    bucket: int,
) -> dict[str, str]:
    """A de-duplication claim: the counted conversions under one key shape and values
    within one window-sized period (`bucket`); a forever window has one bucket."""
    period = "FOREVER" if window_days is None else f"W{window_days}#B{bucket}"
    return {PK: f"A#{account_id}#CLAIM#{'+'.join(shape)}#{_digest(*values)}", SK: period}


def completion(
    account_id: str, goal_id: str, scope: str, scope_id: str, ordinal: int
) -> dict[str, str]:
    """That a history rule (page views of a visit, tags of a contact) was reached for
    the `ordinal`-th time in that scope: created once, by whichever event decides it."""
    return {PK: completions_pk(account_id, goal_id, scope, scope_id), SK: f"N#{ordinal:06d}"}


def completions_pk(account_id: str, goal_id: str, scope: str, scope_id: str) -> str:
    return f"A#{account_id}#DONE#{goal_id}#{scope}#{_digest(scope_id)}"


def aggregate_pk(account_id: str, shard: int) -> str:
    return f"A#{account_id}#AGG#{shard:02d}"


def day_counters(account_id: str, shard: int, day: str) -> dict[str, str]:
    """One day's account-wide counters (visitors seen), one of `shards` items."""
    return {PK: aggregate_pk(account_id, shard), SK: f"D#{day}"}


def goal_day_counters(account_id: str, shard: int, day: str, goal_id: str) -> dict[str, str]:
    """One goal's counters on one day, one of `shards` items. A day's items sit in one
    key range beside the day's own item, so reports read a date range with one Query
    per shard, whatever the number of events behind it."""
    return {PK: aggregate_pk(account_id, shard), SK: f"D#{day}#G#{goal_id}"}


def counters_range(first_day: str, last_day: str) -> tuple[str, str]:
    return f"D#{first_day}", f"D#{last_day}#~"


def shard_of(value: str, shards: int) -> int:
    """Spreads one account's counter writes over `shards` items to avoid a hot key."""
    return int(_digest(value)[:8], 16) % shards


def visitor_trace_pk(account_id: str, visitor_id: str) -> str:
    return f"A#{account_id}#V#{visitor_id}"


def trace_sk(at: str, kind: str, item_id: str) -> str:
    return f"{at}#{kind}#{item_id}"


def contact_scope_pk(account_id: str, contact_id: str) -> str:
    return f"A#{account_id}#CT#{contact_id}"


def events_day_pk(account_id: str, utc_day: str) -> str:
    """One partition per account and UTC day, so no day's writes make a hot key for long."""
    return f"A#{account_id}#ED#{utc_day}"


def visit_scope_pk(account_id: str, visit_id: str) -> str:
    return f"A#{account_id}#VS#{visit_id}"


def attribution(
    account_id: str, shard: int, day: str, goal_id: str, labels: tuple[str, ...]
) -> dict[str, str]:
    """Counters of one goal on one day for one (source, medium, campaign, keyword)."""
    return {PK: aggregate_pk(account_id, shard), SK: f"X#{day}#G#{goal_id}#{_digest(*labels)}"}


def attribution_sk(day: str, suffix: str = "") -> str:
    return f"X#{day}#{suffix}"


def converted_visitor(account_id: str, goal_id: str, day: str, visitor_id: str) -> dict[str, str]:
    """Marks that a visitor converted a goal on a day, so the day counts them once."""
    return {PK: f"A#{account_id}#CV#{goal_id}#{day}#{_digest(visitor_id)}", SK: "MARK"}


def seen_visitor(account_id: str, day: str, visitor_id: str) -> dict[str, str]:
    """Marks that a visitor was seen on a day, so the day counts them once."""
    return {PK: f"A#{account_id}#SV#{day}#{_digest(visitor_id)}", SK: "MARK"}


def job(account_id: str, job_id: str) -> dict[str, str]:
    """A background job of the account (a goal's or a funnel's backfill): its range,
    position and counts."""
    return {PK: f"A#{account_id}#JOB#{job_id}", SK: "JOB"}


def goal_job_lock(account_id: str, goal_id: str) -> dict[str, str]:
    """Which job holds a goal, so a second backfill of it is refused while one runs."""
    return {PK: f"A#{account_id}#GOALJOB#{goal_id}", SK: "LOCK"}


def funnel_job_lock(account_id: str, funnel_id: str) -> dict[str, str]:
    """Which job holds a funnel, so a second backfill of it is refused while one runs."""
    return {PK: f"A#{account_id}#FUNNELJOB#{funnel_id}", SK: "LOCK"}


def touches_pk(account_id: str, scope: str, scope_id: str) -> str:
    """The touches of one visitor (`scope` "V") or of one contact ("C": events that
    name a contact and no visitor)."""
    return f"A#{account_id}#T{scope}#{scope_id}"


def touch_family(direct: bool) -> str:
    """Direct entries and other touches sort apart, so each model asks for one end of
    one family (the last non-direct touch, the first of either...) with Limit 1."""
    return "D" if direct else "N"


def touch_sk(direct: bool, at: str, event_id: str) -> str:
    return f"{touch_family(direct)}#{at}#{event_id}"


def touch_range(direct: bool, since: str, until: str) -> tuple[str, str]:
    """The sort keys of a family's touches from `since` to `until`, both included
    (ids are ASCII up to '~', so DEL sorts after every id at `until`)."""
    family = touch_family(direct)
    return f"{family}#{since}", f"{family}#{until}#\x7f"


def contact_visitors_pk(account_id: str, contact_id: str) -> str:
    return f"A#{account_id}#CVIS#{contact_id}"


def contact_visitor(account_id: str, contact_id: str, visitor_id: str) -> dict[str, str]:
    """That a visitor was identified as a contact (an event named both): the contact's
    touches include the visitor's."""
    return {PK: contact_visitors_pk(account_id, contact_id), SK: f"V#{visitor_id}"}


def webhooks_pk(account_id: str) -> str:
    return f"A#{account_id}#WEBHOOKS"


def webhook(account_id: str, webhook_id: str) -> dict[str, str]:
    """One webhook subscription (its URL, goal filter, secret and state)."""
    return {PK: webhooks_pk(account_id), SK: f"WH#{webhook_id}"}


def webhook_count(account_id: str) -> dict[str, str]:
    """How many webhooks the account holds (not deleted), kept with each create and delete."""
    return {PK: webhooks_pk(account_id), SK: "COUNT"}


def delivery_id(conversion_id: str, webhook_id: str) -> str:
    """Deterministic: a replayed stream record finds its (conversion, webhook) delivery,
    and the receiver's `webhook-id` never changes."""
    return _digest(conversion_id, webhook_id)


def deliveries_pk(account_id: str, webhook_id: str) -> str:
    return f"A#{account_id}#WHD#{webhook_id}"


def delivery(account_id: str, webhook_id: str, delivery_id: str) -> dict[str, str]:
    """One conversion's delivery to one webhook: its attempts and their outcome."""
    return {PK: deliveries_pk(account_id, webhook_id), SK: f"D#{delivery_id}"}


def conversion_published(account_id: str, conversion_id: str) -> dict[str, str]:
    """That a conversion was put on the event bus (created before the put, marked after)."""
    return {PK: f"A#{account_id}#C#{conversion_id}", SK: "BUS"}


# --- funnels and prerequisite goals (goalkeeper.steps) ----------------------------------


def progress(
    account_id: str, track_kind: str, track: str, subject: str, window_days: int, bucket: int
) -> dict[str, str]:
    """A track's earliest and latest conversion of one subject (visitor or contact) in
    one window-sized period: what a later step's condition looks at. `track` is a goal id
    or "<funnel id>#S<step>" (ids never contain '#')."""
    return {
        PK: f"A#{account_id}#STEP#{track_kind}#{track}#{_digest(subject)}",
        SK: f"W{window_days}#B{bucket}",
    }


def funnels_pk(account_id: str) -> str:
    return f"A#{account_id}#FUNNELS"


def funnel(account_id: str, funnel_id: str) -> dict[str, str]:
    return {PK: funnels_pk(account_id), SK: f"FUNNEL#{funnel_id}"}


def funnel_day_counters(account_id: str, shard: int, day: str, funnel_id: str) -> dict[str, str]:
    """One funnel's counters on one day, one of `shards` items; a funnel's days sit in
    one key range per shard (read with one Query per shard for a date range)."""
    return {PK: aggregate_pk(account_id, shard), SK: f"F#{funnel_id}#D#{day}"}


def funnel_counters_range(funnel_id: str, first_day: str, last_day: str) -> tuple[str, str]:
    return f"F#{funnel_id}#D#{first_day}", f"F#{funnel_id}#D#{last_day}"


# --- phone systems (goalkeeper.twilio) ----------------------------------------------------


def twilio_integration(account_id: str) -> dict[str, str]:
    """The account's Twilio connection: the Auth Token its callbacks are signed with, and
    the URL they are posted to (what Twilio signs)."""
    return {PK: f"A#{account_id}#INTEGRATIONS", SK: "TWILIO"}


# --- call tracking: numbers, pools and holds (goalkeeper.numbers, issue 17 part A) -------


def number_owner(number: str) -> dict[str, str]:
    """Which account a tracking number (E.164) belongs to: like an API key's lookup item,
    not under an account, so a number is registered by one account only."""
    return {PK: f"NUM#{number}", SK: "OWNER"}


def numbers_pk(account_id: str) -> str:
    return f"A#{account_id}#NUMBERS"


def number(account_id: str, number: str) -> dict[str, str]:
    """One tracking number of the account (static or pool), kept when deleted so that
    calls made while it was in use still resolve."""
    return {PK: numbers_pk(account_id), SK: f"N#{number}"}


def pool_pk(account_id: str, replaces: str) -> str:
    """A pool: the numbers standing in for one of the site's own numbers (`replaces`)."""
    return f"A#{account_id}#POOL#{replaces}"


def pool(account_id: str, replaces: str) -> dict[str, str]:
    """The pool's name and its all-time counters."""
    return {PK: pool_pk(account_id, replaces), SK: "POOL"}


def pool_number(account_id: str, replaces: str, number: str) -> dict[str, str]:
    """A pool number's current hold (visit, held until) and when it was last released:
    the item whose conditional write makes a hold exclusive."""
    return {PK: pool_pk(account_id, replaces), SK: f"N#{number}"}


def pool_day(account_id: str, replaces: str, day: str) -> dict[str, str]:
    """A pool's counters of one UTC day. "D#" sorts before "N#" and "POOL", so one Query
    from today's day item reads it, every number's hold and the pool item."""
    return {PK: pool_pk(account_id, replaces), SK: f"D#{day}"}


def pool_days_range(first_day: str, last_day: str) -> tuple[str, str]:
    return f"D#{first_day}", f"D#{last_day}"


def holds_pk(account_id: str, number: str) -> str:
    return f"A#{account_id}#HOLDS#{number}"


def hold(account_id: str, number: str, started_at: str) -> dict[str, str]:
    """One hold of a pool number by one visit (history: extended by renewals, never
    given to another visit), sorted by its start, so the hold covering a call's start
    is the newest one starting at or before it."""
    return {PK: holds_pk(account_id, number), SK: f"H#{started_at}"}


def hold_at_or_before(at: str) -> str:
    return f"H#{at}"


def call_counted(account_id: str, event_id: str) -> dict[str, str]:
    """That a call to a pool number was counted in its pool's day (matched or not)."""
    return {PK: f"A#{account_id}#E#{event_id}", SK: "POOLCALL"}


# --- the value ledger and the ads export (goalkeeper.ledger) -----------------------------


def adjustment(account_id: str, adjustment_id: str) -> dict[str, str]:
    """One adjustment of a conversion's value, under the client's id: unique per account,
    so a resent adjustment finds its first write."""
    return {PK: f"A#{account_id}#ADJ#{adjustment_id}", SK: "ADJUSTMENT"}


def adjustment_trace_sk(conversion_sk: str, sequence: int) -> str:
    """An adjustment's place in the visitor trace: right after its conversion (whose
    trace sort key is a prefix of it), in the order the adjustments were made."""
    return f"{conversion_sk}#A{sequence:04d}"


def call_conversions_pk(account_id: str, call_id: str) -> str:
    """The counted conversions of one call (gsi2): what a later rating's sale value restates."""
    return f"A#{account_id}#CALLC#{call_id}"


def call_rating_value(account_id: str, call_id: str) -> dict[str, str]:
    """The latest rating with a sale value of one call: what its conversions are worth,
    whenever they are decided."""
    return {PK: f"A#{account_id}#CALLR#{call_id}", SK: "LATEST"}


def rating_adjustment_id(rating_event_id: str, conversion_id: str) -> str:
    """The restatement a call rating makes of one of its call's conversions: one per
    (rating, conversion), so a redelivered rating finds its own earlier write."""
    return f"rating-{_digest(rating_event_id, conversion_id)}"


def ads_conversions_day_pk(account_id: str, day: str) -> str:
    """The counted conversions carrying an ad click id, of one account day (gsi3)."""
    return f"A#{account_id}#ADSC#{day}"


def ads_adjustments_day_pk(account_id: str, day: str) -> str:
    """The adjustments of conversions carrying an ad click id, by the account day they
    were made (gsi3)."""
    return f"A#{account_id}#ADSA#{day}"
