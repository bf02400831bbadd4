"""Data access, one door per aggregate: every read and write of the table goes
through this package.

`client` holds what every door shares (the boto3 client and its retry figures, the
one mapping of DynamoDB failures to domain errors, backoff, pagination, batched
gets, transactions); each other module owns one aggregate's items, both ways (to
an item, from an item), and answers with typed values or typed domain errors:

    accounts   accounts and their API keys (lookup items and account records)
    events     stored events and the indexes they carry (day, visit, contact, trace)
    goals      the goal library, its versions, its count and version on the account
    decisions  conversions, de-dup claims, completions, visitor markers (one write)
    counters   the report counters those writes keep, read back for reports
    funnels    funnel definitions, kept beside the goal library
    jobs       background jobs and the per-goal locks they hold
    touches    visitors' and contacts' ways in (read for crediting), contacts' visitors
    webhooks   webhook subscriptions, their deliveries, conversions put on the event bus
    integrations  phone systems connected to an account (Twilio's token and webhook URL)
    numbers    call tracking numbers, their pools, holds by visits, pool day counters
    ledger     adjustments of conversions' values, with the counters they move

Keys come from goalkeeper.keys, the one place keys are built.
"""

from dataclasses import dataclass
from typing import Any

from goalkeeper.dal.accounts import Accounts
from goalkeeper.dal.client import Table
from goalkeeper.dal.counters import Counters
from goalkeeper.dal.decisions import Decisions
from goalkeeper.dal.events import Events
from goalkeeper.dal.funnels import Funnels
from goalkeeper.dal.goals import Goals
from goalkeeper.dal.integrations import Integrations
from goalkeeper.dal.jobs import Jobs
from goalkeeper.dal.ledger import Ledger
from goalkeeper.dal.numbers import Numbers
from goalkeeper.dal.touches import Touches
from goalkeeper.dal.webhooks import Webhooks


@dataclass(frozen=True)
class Dal:
    """Every aggregate's door, sharing one table (and one client)."""

    table: Table
    accounts: Accounts
    events: Events
    goals: Goals
    decisions: Decisions
    counters: Counters
    jobs: Jobs
    touches: Touches
    webhooks: Webhooks
    funnels: Funnels
    integrations: Integrations
    numbers: Numbers
    ledger: Ledger

    @classmethod
    def open(cls, table_name: str, client: Any | None = None) -> "Dal":
        table = Table(table_name, client)
        return cls(
            table,
            Accounts(table),
            Events(table),
            Goals(table),
            Decisions(table),
            Counters(table),
            Jobs(table),
            Touches(table),
            Webhooks(table),
            Funnels(table),
            Integrations(table),
            Numbers(table),
            Ledger(table),
        )

    @property
    def client(self) -> Any:
        return self.table.client
