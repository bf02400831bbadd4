"""Phone systems connected to an account: Twilio's Auth Token and webhook URL.

The token is a credential of the customer's Twilio account: it is read only to check
a callback's signature, and no route returns it (PUT answers the webhook URL alone).
Like every item it is encrypted at rest by the table's SSE; it is kept readable to us
because checking an HMAC signature needs the key itself (a keyed hash of it, as
goalkeeper.pii keeps of callers, could not sign anything).
"""

from dataclasses import dataclass

from goalkeeper import keys
from goalkeeper.attributes import to_attributes
from goalkeeper.dal.client import Table


@dataclass(frozen=True)
class TwilioRecord:
    account_id: str
    auth_token: str
    webhook_url: str  # as answered, so as pasted into Twilio: what Twilio signs
    connected_at: str


class Integrations:
    def __init__(self, table: Table) -> None:
        self._table = table

    def put_twilio(self, record: TwilioRecord) -> None:
        """Connect Twilio, or replace the connection (a new token, or a new URL)."""
        item = keys.twilio_integration(record.account_id) | {
            "kind": "twilio_integration",
            "account_id": record.account_id,
            "auth_token": record.auth_token,
            "webhook_url": record.webhook_url,
            "connected_at": record.connected_at,
        }
        self._table.call("put_item", TableName=self._table.name, Item=to_attributes(item))

    def twilio(self, account_id: str) -> TwilioRecord | None:
        """The account's Twilio connection (None: not connected, or no such account).
        Strongly consistent: a token just replaced is the one callbacks are checked with."""
        item = self._table.get(keys.twilio_integration(account_id), consistent=True)
        if item is None:
            return None
        return TwilioRecord(
            account_id, item["auth_token"], item["webhook_url"], item["connected_at"]
        )
