"""Personal data: caller phone numbers never reach the table in clear.

What de-duplication needs from a caller number is equality ("the same caller
as before"), so each account keeps a random secret and events store a keyed
hash of the number (HMAC-SHA256): equal within one account, unrelated across
accounts, and not reversible by enumerating the phone-number space without the
secret. People see a masked form ("+44*******567").

A tracking number is the business's own advertised number, not a person's,
so it stays in clear (reports group calls by it).
"""

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable


def new_account_secret() -> str:
    """256 random bits, hex; created with the account and never returned by any route."""
    return secrets.token_hex(32)


def caller_hash(secret: str, number: str) -> str:
    """HMAC-SHA256 (hex) of an E.164 number under the account's secret."""
    return hmac.new(bytes.fromhex(secret), number.encode(), hashlib.sha256).hexdigest()


def mask_number(number: str) -> str:
    """Enough to recognise a number, not to dial it: "+442071234567" -> "+44*******567"."""
    shown = 3 if len(number) >= 11 else 2  # E.164 is 8 to 16 characters with the '+'
    return number[:shown] + "*" * (len(number) - 2 * shown) + number[-shown:]


class AccountSecrets:
    """Each account's secret, kept for the life of a warm Lambda.

    An account's secret never changes, so a cached copy never goes stale: the
    ingest path reads it once per account per warm instance (a cold miss), not
    once per request or per event. Bounded, least recently used first out.
    """

    def __init__(self, load: Callable[[str], str], max_accounts: int = 10_000) -> None:
        self._load = load
        self._max = max_accounts
        self._secrets: OrderedDict[str, str] = OrderedDict()

    def get(self, account_id: str) -> str:
        secret = self._secrets.get(account_id)
        if secret is None:
            secret = self._load(account_id)
            self._secrets[account_id] = secret
            if len(self._secrets) > self._max:
                self._secrets.popitem(last=False)
        else:
            self._secrets.move_to_end(account_id)
        return secret
