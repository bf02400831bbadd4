"""Configuration: every setting comes from the environment through this one model."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOALKEEPER_", extra="ignore")

    table_name: str = "goalkeeper"
    # SHA-256 (hex) of the admin key; the plaintext never reaches a Lambda.
    admin_key_sha256: str = ""
    # Daily goal counters are spread over this many partitions so one busy goal
    # cannot make a hot key. Changing it after data exists splits old counters.
    aggregate_shards: int = 4
    # An account's goal library holds at most this many goals, deactivated ones included
    # (reports keep them). It bounds what evaluation loads per account and the per-goal
    # counters of a day's items.
    max_goals_per_account: int = Field(default=1000, ge=1)
    # Raw events expire (DynamoDB TTL) after this many days; conversions and
    # aggregates are kept.
    event_retention_days: int = 400
    # A goal backfill decides the stored events of its range this many at a time, and
    # records its position and counts in the job item after each such page.
    backfill_page_events: int = Field(default=100, ge=1, le=1000)
    max_body_bytes: int = 256 * 1024
    # An ingestion request writes its events this many at a time (each a conditional
    # put): a 100-event batch waits for 13 round trips instead of 100.
    ingest_write_concurrency: int = Field(default=8, ge=1, le=10)
    # Goal-reached notifications (webhooks and the event bus). The queue that carries
    # deliveries (and their retries, delayed) and the bus: template.yaml sets both.
    delivery_queue_url: str = ""
    event_bus_name: str = ""
    max_webhooks_per_account: int = Field(default=20, ge=1)
    # The local stack only: http, and loopback hosts, are accepted for webhook URLs.
    webhooks_allow_local_http: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Retries: ~base * 2**(n-1) s after the n-th failure (jittered, at most max_delay),
    # given up on (dead) once the next attempt would fall `window` after the first.
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_max_delay_seconds: float = Field(default=4 * 3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    # The API's public base URL (https://calls.example.com), where it is not the one
    # API Gateway sees: behind a proxy or a tunnel. Phone systems' webhook URLs (Twilio's,
    # which Twilio signs as configured) start with it; unset, with the request's own.
    public_api_url: str = Field(default="", pattern=r"^(https?://[^/?#\s]+(/[^?#\s]*)?)?$")

    # Call tracking (issue 17): a pool number stays with a visit this long after the
    # tracker last renewed it (every half of it while the page is open), then it is free.
    number_hold_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
