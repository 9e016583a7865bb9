"""Provider name → adapter class. Instances are built from settings, never mutated globals."""

from __future__ import annotations

from typing import Any

from llmgw.settings import Settings
from providers.base import Provider
from providers.gigachat import GigaChatProvider
from providers.yandexgpt import YandexGPTProvider

PROVIDERS: dict[str, type[YandexGPTProvider] | type[GigaChatProvider]] = {
    "yandexgpt": YandexGPTProvider,
    "gigachat": GigaChatProvider,
}


def build_provider(name: str, settings: Settings, *, redis: Any = None) -> Provider:
    """A new adapter for `name`; `redis` (optional) shares cached tokens across processes."""
    try:
        cls = PROVIDERS[name]
    except KeyError:
        raise KeyError(f"Unknown provider {name!r}; known: {sorted(PROVIDERS)}") from None
    return cls(settings, redis=redis)
