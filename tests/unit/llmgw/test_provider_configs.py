"""The root's mapping of the flat provider settings onto each provider's config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from llmgw.provider_configs import provider_configs
from llmgw.settings import Settings
from providers.config import GigaChatConfig, YandexGPTConfig
from providers.registry import PROVIDERS

SHARED = {
    "provider_connect_timeout": "connect_timeout",
    "provider_read_timeout": "read_timeout",
    "worker_concurrency": "pool_size",
}
PREFIXES = {"yandexgpt_": "yandexgpt", "gigachat_": "gigachat"}


@pytest.fixture(autouse=True)
def _no_llmgw_env(monkeypatch):
    """Settings must come from the test, not from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("LLMGW_"):
            monkeypatch.delenv(name)


def non_default_settings() -> Settings:
    """Every provider setting set to a value unlike its default, so a dropped one shows."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        yandexgpt_base_url="https://llm.example",
        yandexgpt_operations_url="https://ops.example",
        yandexgpt_iam_url="https://iam.example",
        yandexgpt_api_key=SecretStr("yc-key"),
        yandexgpt_iam_token=SecretStr("t1.iam"),
        yandexgpt_folder_id="b1gfolder",
        yandexgpt_oauth_token=SecretStr("y0_oauth"),
        yandexgpt_async_threshold_tokens=500,
        yandexgpt_async_poll_interval=0.5,
        yandexgpt_async_deadline_seconds=30.0,
        yandexgpt_data_logging=False,
        yandexgpt_max_in_flight=10,
        yandexgpt_max_calls_per_second=20,
        gigachat_base_url="https://giga.example/api/v1",
        gigachat_auth_url="https://auth.example/api/v2/oauth",
        gigachat_credentials=SecretStr("Z2lnYQ=="),
        gigachat_scope="GIGACHAT_API_B2B",
        gigachat_ca_bundle=Path("/etc/ca.pem"),
        gigachat_max_in_flight=3,
        gigachat_max_calls_per_second=5,
        provider_connect_timeout=1.5,
        provider_read_timeout=9.0,
        worker_concurrency=7,
    )


def provider_fields() -> list[str]:
    prefixes = (*PREFIXES, "provider_")
    return [name for name in Settings.model_fields if name.startswith(prefixes)]


def test_every_provider_setting_lands_in_its_config():
    settings = non_default_settings()
    configs = provider_configs(settings)
    covered = set()
    for name in [*provider_fields(), "worker_concurrency"]:
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        targets = [PREFIXES[prefix]] if prefix else list(configs)
        field = name.removeprefix(prefix) if prefix else SHARED[name]
        for provider in targets:
            assert getattr(configs[provider], field) == getattr(settings, name), (name, provider)
            covered.add((provider, field))
    every_field = {(p, f) for p, config in configs.items() for f in type(config).model_fields}
    assert covered == every_field  # and no config field is left to its default


def test_one_config_of_the_right_type_per_provider():
    configs = provider_configs(non_default_settings())
    assert set(configs) == set(PROVIDERS)
    assert isinstance(configs["yandexgpt"], YandexGPTConfig)
    assert isinstance(configs["gigachat"], GigaChatConfig)


def test_secrets_stay_secret():
    configs = provider_configs(non_default_settings())
    yandex, giga = configs["yandexgpt"], configs["gigachat"]
    for secret in (yandex.api_key, yandex.iam_token, yandex.oauth_token, giga.credentials):
        assert isinstance(secret, SecretStr)
    assert "yc-key" not in repr(yandex) and "Z2lnYQ==" not in repr(giga)


def test_defaults_match_the_settings_defaults():
    configs = provider_configs(Settings(_env_file=None))  # type: ignore[call-arg]
    assert configs == {"yandexgpt": YandexGPTConfig(), "gigachat": GigaChatConfig()}
