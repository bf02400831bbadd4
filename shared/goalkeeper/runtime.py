"""Per-process singletons of a Lambda: created on first use and reused while warm."""

from functools import lru_cache

from goalkeeper.auth import Principal, stored_key_lookup
from goalkeeper.settings import get_settings
from goalkeeper.storage import Store


@lru_cache(maxsize=1)
def store() -> Store:
    return Store(get_settings().table_name)


def key_lookup(digest: str) -> Principal | None:
    return stored_key_lookup(store())(digest)
