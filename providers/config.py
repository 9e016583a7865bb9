"""Each provider's own configuration: what its adapter reads, and nothing else.

Decisions:
- One frozen pydantic model per provider, not the app's `Settings`: providers/ must not
  import the composition root (`llmgw`), and an adapter handed the whole settings object
  could read anything in it. `llmgw.provider_configs` maps the flat `LLMGW_*` settings
  onto these; tests build them directly.
- Pydantic rather than dataclasses for `SecretStr` (secrets never show in a repr or a
  log line) and for the same bounds the settings enforce, so a config built by hand is
  checked like one read from the environment. `extra="forbid"` turns a misspelt field
  into an error instead of a silently ignored value.
- Defaults equal the `Settings` defaults. `pool_size` is the connection-pool size of the
  adapter's session; the root sets it to the worker concurrency (one connection per
  concurrent call).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _ProviderConfig(BaseModel):
    """What every HTTP adapter needs: both timeouts on every call, and a pool size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=60.0, gt=0)
    pool_size: int = Field(default=100, ge=1)
    # Provider pacing (`workers.pacing`), per credential: calls in flight at once and calls
    # started per second, shared by every worker; 0 means no cap.
    max_in_flight: int = Field(default=0, ge=0)
    max_calls_per_second: int = Field(default=0, ge=0)

    @property
    def timeout(self) -> tuple[float, float]:
        """The `(connect, read)` pair `requests` takes as `timeout=`."""
        return (self.connect_timeout, self.read_timeout)


class YandexGPTConfig(_ProviderConfig):
    base_url: str = "https://llm.api.cloud.yandex.net"
    operations_url: str = "https://operation.api.cloud.yandex.net"
    iam_url: str = "https://iam.api.cloud.yandex.net"
    # Credentials, in order of precedence: API key, OAuth token (exchanged for refreshed IAM
    # tokens at `{iam_url}/iam/v1/tokens`), static IAM token.
    api_key: SecretStr | None = None
    oauth_token: SecretStr | None = None
    iam_token: SecretStr | None = None
    folder_id: str | None = None
    # `completionAsync` when prompt chars / 4 + max_tokens reaches this; None: always sync.
    async_threshold_tokens: int | None = Field(default=None, ge=0)
    async_poll_interval: float = Field(default=1.0, gt=0)
    async_deadline_seconds: float = Field(default=600.0, gt=0)
    # False sends `x-data-logging-enabled: false`.
    data_logging: bool = True

    @property
    def quota_holder(self) -> str:
        """What Yandex counts concurrent generations against: the folder (cloud), else the
        credential when the folder comes with the token."""
        secret = self.api_key or self.oauth_token or self.iam_token
        return self.folder_id or (secret.get_secret_value() if secret else "")


class GigaChatConfig(_ProviderConfig):
    base_url: str = "https://gigachat.devices.sberbank.ru/api/v1"
    auth_url: str = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
    credentials: SecretStr | None = None
    scope: str = "GIGACHAT_API_PERS"
    # A PEM bundle with the Russian Trusted Root CA, passed to `requests` as `verify=`.
    ca_bundle: Path | None = None

    @property
    def quota_holder(self) -> str:
        """GigaChat limits concurrent calls per authorization key (by its plan)."""
        return self.credentials.get_secret_value() if self.credentials else ""


# Any provider's config (what `providers.registry.build_provider` takes).
ProviderConfig = YandexGPTConfig | GigaChatConfig
