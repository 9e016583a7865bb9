"""The registry: a plain dict, and instances built from explicit settings."""

from __future__ import annotations

import fakeredis
import pytest

from providers.gigachat import GigaChatProvider
from providers.registry import PROVIDERS, build_provider
from providers.yandexgpt import YandexGPTProvider
from tests.unit.providers.conftest import make_settings


def test_registry_names_both_adapters():
    assert {"yandexgpt": YandexGPTProvider, "gigachat": GigaChatProvider} == PROVIDERS


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_build_provider_returns_independent_instances(name):
    settings = make_settings(yandexgpt_api_key="k")
    first = build_provider(name, settings, redis=fakeredis.FakeRedis())
    second = build_provider(name, settings)
    assert all(callable(getattr(first, m)) for m in ("complete", "count_tokens", "list_models"))
    assert first is not second
    assert first.name == name
    assert first.settings is settings


def test_unknown_provider():
    with pytest.raises(KeyError, match="openai"):
        build_provider("openai", make_settings())
