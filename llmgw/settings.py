"""One typed settings object, read once from `LLMGW_*` environment variables (and `.env`).

URLs stay `str` (the code passes them to clients as strings) but are checked at start-up:
Redis by scheme, the database by SQLAlchemy's own parser and the backends we test, provider
hosts as http(s) URLs. Messages never repeat the value (it may carry a password).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REDIS_SCHEMES = ("redis", "rediss", "unix")
DATABASE_BACKENDS = ("sqlite", "postgresql")
PROVIDER_URLS = (
    "yandexgpt_base_url",
    "yandexgpt_operations_url",
    "yandexgpt_iam_url",
    "gigachat_base_url",
    "gigachat_auth_url",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LLMGW_", env_file=".env", extra="ignore", strict=False, frozen=True
    )

    # Infrastructure. `redis_url` unset means `llmgw up` starts an embedded Redis.
    redis_url: str | None = None
    database_url: str = "sqlite:///var/llmgw.db"
    master_key: SecretStr | None = None
    # Seconds a `GET /v1/jobs/<id>?wait=` may hold a request.
    max_wait_seconds: float = Field(default=30.0, ge=0, le=120)
    # A request body larger than this many bytes is refused with 413 `request_too_large`.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=1024**3)

    # YandexGPT (Yandex Cloud AI Studio).
    yandexgpt_base_url: str = "https://llm.api.cloud.yandex.net"
    yandexgpt_operations_url: str = "https://operation.api.cloud.yandex.net"
    yandexgpt_iam_url: str = "https://iam.api.cloud.yandex.net"
    yandexgpt_api_key: SecretStr | None = None
    yandexgpt_iam_token: SecretStr | None = None
    yandexgpt_folder_id: str | None = None
    # An OAuth token exchanged at `{yandexgpt_iam_url}/iam/v1/tokens` for IAM tokens that are
    # refreshed before they expire (used when no API key is set; wins over a static IAM token).
    yandexgpt_oauth_token: SecretStr | None = None
    # Use `completionAsync` + operation polling when the request's estimated size (prompt
    # characters / 4 + max_tokens) reaches this many tokens; unset means always synchronous.
    yandexgpt_async_threshold_tokens: int | None = Field(default=None, ge=0)
    yandexgpt_async_poll_interval: float = Field(default=1.0, gt=0)
    # How long one async completion may take before the call fails with a timeout.
    yandexgpt_async_deadline_seconds: float = Field(default=600.0, gt=0)
    # False sends `x-data-logging-enabled: false`: Yandex then does not log prompts/answers.
    yandexgpt_data_logging: bool = True
    # Pacing per folder/credential (`workers.pacing`): Yandex allows 10 concurrent
    # generations per cloud by default; 0 means no cap.
    yandexgpt_max_in_flight: int = Field(default=0, ge=0)
    yandexgpt_max_calls_per_second: int = Field(default=0, ge=0)

    # GigaChat (Sber).
    gigachat_base_url: str = "https://gigachat.devices.sberbank.ru/api/v1"
    gigachat_auth_url: str = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
    gigachat_credentials: SecretStr | None = None
    gigachat_scope: str = "GIGACHAT_API_PERS"
    gigachat_ca_bundle: Path | None = None
    # Pacing per authorization key: GigaChat allows 1–10 concurrent calls by plan; 0: no cap.
    gigachat_max_in_flight: int = Field(default=0, ge=0)
    gigachat_max_calls_per_second: int = Field(default=0, ge=0)

    # Every outbound provider call has both timeouts (the threads pool has no time limit).
    provider_connect_timeout: float = Field(default=5.0, gt=0)
    provider_read_timeout: float = Field(default=60.0, gt=0)
    # The provider's tokenizer (`/v1/tokenize`, the context-window check, admission) is asked
    # with this connect and read timeout; past it the figure is characters / 4 (jobs.tokens).
    tokenizer_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Count a submission's prompt with the tokenizer (cached); off: the characters estimate.
    tokenizer_at_submit: bool = True

    # Worker and job lifecycle.
    worker_concurrency: int = Field(default=100, ge=1, le=2000)
    # Calls per candidate for retryable errors, then the plan's next candidate.
    job_max_attempts: int = Field(default=3, ge=1, le=10)
    # One budget per job across its whole fallback plan: calls, and wall time from submission.
    job_attempt_budget: int = Field(default=8, ge=1, le=50)
    job_deadline_seconds: float = Field(default=900.0, gt=0)
    # Finished jobs' prompts and results are erased after this many days (the rows stay).
    job_retention_days: float = Field(default=30.0, gt=0)
    # A `running` job untouched for this long is presumed orphaned (its worker died); a live
    # worker renews the lease of every call it makes every lease/4 (workers/heartbeat.py).
    job_lease_seconds: float = Field(default=45.0, gt=0)
    # A `queued` job untouched for this long is re-dispatched by the sweeper.
    job_requeue_after_seconds: float = Field(default=900.0, gt=0)
    sweeper_interval_seconds: float = Field(default=15.0, gt=0)
    # Batches (docs/batches.md): lines of one batch in flight at once, and how often the
    # beat's feeder run reconciles and refills them (it is also kicked when a batch is
    # created, and each batch is refilled as its lines end).
    batch_window: int = Field(default=200, ge=1, le=10_000)
    # Batch lines in flight across all batches; unset: half of `worker_concurrency`, so batch
    # lines never hold every worker thread and interactive jobs always find one free.
    batch_max_in_flight: int | None = Field(default=None, ge=1, le=100_000)
    batch_feeder_interval_seconds: float = Field(default=5.0, gt=0)
    # An Idempotency-Key claimed this long ago whose job was never written (its API process
    # died) is taken over by the next request with the key.
    idempotency_grace_seconds: float = Field(default=60.0, gt=0)
    # How long `POST /v1/chat/completions` waits for its job before answering 504.
    sync_timeout_seconds: float = Field(default=120.0, gt=0, le=600)
    # A non-streamed `POST /v1/chat/completions` job is run by the API thread that waits for
    # it (same claim, attempt log and lease as a worker's run; a retry or a fallback goes to
    # the queue): one process hop instead of three. False: every job goes through the queue.
    sync_inline: bool = True

    # Flower's basic auth, `user:password` (comma-separate several); `llmgw up` generates one
    # when unset, so its Flower never runs open.
    flower_basic_auth: SecretStr | None = None
    # Limits (docs/limits.md). Tokens reserved for the answer when a request sets no
    # max_tokens; how long a concurrency slot is held at most if its job never ends.
    limits_default_max_tokens: int = Field(default=2000, ge=0, le=128_000)
    limits_slot_lease_seconds: float = Field(default=3600.0, gt=0)

    # Completion callbacks (docs/api.md). The gateway's signing secret: each key's callback
    # secret is derived from it (jobs/signing.py); `llmgw up` generates one under var/ when
    # unset; without one, requests with a callback_url are refused with 503.
    callback_signing_secret: SecretStr | None = None
    # Callback URLs resolving to private, loopback, link-local, multicast or reserved
    # addresses are refused unless allowed: all of them, or only these CIDRs (comma-separated).
    callback_allow_private: bool = False
    callback_allowed_cidrs: str = ""
    # Retries: base * 2^(n-1) s after the n-th failure, at most max_delay, for `window` s.
    callback_backoff_base_seconds: float = Field(default=10.0, gt=0)
    callback_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    callback_retry_window_seconds: float = Field(default=86400.0, gt=0)
    # Connect and read timeout of one delivery, and how often beat runs the delivery task.
    callback_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    callback_interval_seconds: float = Field(default=5.0, gt=0)

    @field_validator("callback_signing_secret", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: object) -> object:
        return None if value == "" else value  # docker-compose passes unset as ""

    @field_validator("callback_signing_secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (llmgw up generates one)")
        return value

    @field_validator("callback_allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        from jobs.callback_url import parse_networks

        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(f"must be comma-separated CIDRs, e.g. 10.0.0.0/8: {exc}") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in REDIS_SCHEMES:
            raise ValueError("must be a Redis URL: redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(value).get_backend_name()
        except ArgumentError:
            raise ValueError("must be an SQLAlchemy URL, e.g. sqlite:///var/llmgw.db") from None
        if backend not in DATABASE_BACKENDS:
            raise ValueError(f"must be a sqlite or postgresql URL, not {backend}")
        return value

    @field_validator(*PROVIDER_URLS)
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL with a host")
        return value


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; explicit overrides win (tests pass them)."""
    return Settings(**overrides)  # type: ignore[arg-type]
