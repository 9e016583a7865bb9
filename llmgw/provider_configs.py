"""The flat `LLMGW_*` provider settings mapped onto each provider's own config.

Decisions:
- The environment keeps its flat names (`LLMGW_YANDEXGPT_API_KEY`, …); only the root
  knows them, and providers/ never imports `llmgw`.
- The mapping is written out field by field rather than derived from the `yandexgpt_`/
  `gigachat_` prefixes: a setting added under a prefix for something else must not
  break the provider, and a reader sees where each value goes. A unit test checks that
  every provider setting lands in a config.
- Shared by both providers: `provider_connect_timeout`/`provider_read_timeout`, and
  `worker_concurrency` as the connection-pool size (one connection per concurrent call).
- Pacing caps (`*_max_in_flight`, `*_max_calls_per_second`) live in each config because
  they belong to the credential; the root hands them to `workers.pacing.Pacer`.
- Values are handed over as they are, so secrets stay `SecretStr`.
"""

from __future__ import annotations

from llmgw.settings import Settings
from providers.config import GigaChatConfig, ProviderConfig, YandexGPTConfig


def provider_configs(settings: Settings) -> dict[str, ProviderConfig]:
    """Each provider's name → its config, read from `settings`."""
    return {"yandexgpt": yandexgpt_config(settings), "gigachat": gigachat_config(settings)}


def yandexgpt_config(s: Settings) -> YandexGPTConfig:
    return YandexGPTConfig(
        base_url=s.yandexgpt_base_url,
        operations_url=s.yandexgpt_operations_url,
        iam_url=s.yandexgpt_iam_url,
        api_key=s.yandexgpt_api_key,
        oauth_token=s.yandexgpt_oauth_token,
        iam_token=s.yandexgpt_iam_token,
        folder_id=s.yandexgpt_folder_id,
        async_threshold_tokens=s.yandexgpt_async_threshold_tokens,
        async_poll_interval=s.yandexgpt_async_poll_interval,
        async_deadline_seconds=s.yandexgpt_async_deadline_seconds,
        data_logging=s.yandexgpt_data_logging,
        max_in_flight=s.yandexgpt_max_in_flight,
        max_calls_per_second=s.yandexgpt_max_calls_per_second,
        connect_timeout=s.provider_connect_timeout,
        read_timeout=s.provider_read_timeout,
        pool_size=s.worker_concurrency,
    )


def gigachat_config(s: Settings) -> GigaChatConfig:
    return GigaChatConfig(
        base_url=s.gigachat_base_url,
        auth_url=s.gigachat_auth_url,
        credentials=s.gigachat_credentials,
        scope=s.gigachat_scope,
        ca_bundle=s.gigachat_ca_bundle,
        max_in_flight=s.gigachat_max_in_flight,
        max_calls_per_second=s.gigachat_max_calls_per_second,
        connect_timeout=s.provider_connect_timeout,
        read_timeout=s.provider_read_timeout,
        pool_size=s.worker_concurrency,
    )
